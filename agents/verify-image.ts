import { checkManifestTrust, trustedKeys, type TrustedKey } from "../lib/image-trust.ts";
import type { StoreClient } from "../store/client/client.ts";
import type { GlanceImage } from "../store/client/image.ts";
import { signedManifest, type SignedManifest } from "../store/client/signed.ts";
import type { NodeTrust } from "../wire/trust.ts";
import { readNodeTrust } from "./trust.ts";

/**
 * The node's own check of a new image, before it writes a byte of it: when
 * its config drive names trusted keys, the image's manifest must be signed
 * by one of them and name `digest` — the digest the node's metadata names,
 * its root of trust. The takeover calls this right after it resolved the
 * image, before the target slot is touched; ImageNotTrusted (lib/errors.ts)
 * says which image and which keys. Without keys on the drive, unsigned
 * images are taken (as the stack allows them), and nothing is fetched.
 */
export interface NodeImageCheck {
  /** The key that signed it; undefined: the drive names no keys. */
  signer?: TrustedKey;
  /** The manifest, fetched and checked (undefined when nothing was checked). */
  signed?: SignedManifest;
}

export async function verifyNodeImage(client: StoreClient, image: GlanceImage, digest: string, trust: NodeTrust | undefined = readNodeTrust()): Promise<NodeImageCheck> {
  if (!trust?.keys.length) return {};
  const signed = await signedManifest(client, image);
  const signer = checkManifestTrust({
    image: `${image.name ?? image.id} ${digest}`,
    manifestText: signed.text,
    signatureText: signed.signature,
    keys: trustedKeys(trust.keys, trust.keys.map((_, i) => `the config drive's key ${i + 1}`)),
    digest,
  });
  return { signer, signed };
}
