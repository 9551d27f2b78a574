import { ImageNotTrusted } from "./errors.ts";
import { parsePublicKey, parseSignature, signerId, verifyData, type PublicKey } from "./minisign.ts";

/**
 * Signed images: an image is trusted when its build manifest — which names
 * the root's digest and every artifact's sha256 — carries a minisign
 * signature by one of the trusted keys, and names the digest the caller is
 * about to install. The deployer checks it before it writes a disk, the
 * node before it takes over (the keys come from its config drive, never
 * from the store). No zod: the node agents link this.
 */
export interface TrustedKey {
  /** How people know the key: its .pub file, or a label. */
  name: string;
  key: PublicKey;
}

const describe = (k: TrustedKey) => `${k.name} (key ID ${k.key.id})`;

/** Keys from .pub texts; `names` label them in messages (the files they came from). */
export function trustedKeys(texts: string[], names: string[] = texts.map((_, i) => `trusted key ${i + 1}`)): TrustedKey[] {
  return texts.map((text, i) => ({ name: names[i]!, key: parsePublicKey(text, names[i]) }));
}

export interface ManifestCheck {
  /** The image as messages name it: NAME@sha256:… (or the reference the user gave). */
  image: string;
  /** The manifest exactly as stored: the signature is over these bytes. */
  manifestText: string;
  /** The .minisig stored with it; undefined when the image is not signed. */
  signatureText: string | undefined;
  keys: TrustedKey[];
  /** The root digest about to be installed: the manifest must name it. */
  digest?: string;
}

/** The trusted key that signed the manifest; throws ImageNotTrusted naming the image and the keys otherwise. */
export function checkManifestTrust(c: ManifestCheck): TrustedKey {
  const trusted = c.keys.map(describe).join(", ");
  if (!c.keys.length) throw new ImageNotTrusted(c.image, "no key is trusted to check it against");
  if (c.signatureText === undefined) throw new ImageNotTrusted(c.image, `its manifest is not signed; the keys trusted are ${trusted}`);
  const signature = parseSignature(c.signatureText, `the signature of ${c.image}`);
  const verdict = verifyData(Buffer.from(c.manifestText), signature, c.keys.map((k) => k.key));
  const named = verdict.key && c.keys.find((k) => k.key === verdict.key)!;
  if (!verdict.ok) {
    if (verdict.reason === "unknown-key")
      throw new ImageNotTrusted(c.image, `its manifest is signed by key ID ${signerId(signature)}, which is not trusted; the keys trusted are ${trusted}`);
    throw new ImageNotTrusted(
      c.image,
      verdict.reason === "bad-signature"
        ? `its manifest does not match its signature by ${describe(named!)}: it was changed after it was signed`
        : `the trusted comment of its signature by ${describe(named!)} does not verify: the signature was tampered with`,
    );
  }
  if (c.digest !== undefined) {
    let digest: unknown;
    try {
      digest = (JSON.parse(c.manifestText) as { digest?: unknown }).digest;
    } catch {
      throw new ImageNotTrusted(c.image, "its signed manifest is not JSON");
    }
    if (digest !== c.digest)
      throw new ImageNotTrusted(c.image, `its manifest, signed by ${describe(named!)}, names root ${String(digest)}, not ${c.digest}`);
  }
  return named!;
}
