import { checkManifestTrust, type TrustedKey } from "../../lib/image-trust.ts";
import { Manifest } from "../../wire/manifest.ts";
import type { StoreClient } from "./client.ts";
import type { GlanceImage } from "./image.ts";

/**
 * An image's manifest exactly as stored, its signature (when signed), and
 * the check of both against trusted keys (lib/image-trust.ts): what `ooo
 * store verify` and the deployer ask before they trust an image.
 */
export interface SignedManifest {
  text: string;
  manifest: Manifest;
  signature?: string;
}

/** The image as messages name it. */
export const imageLabel = (image: GlanceImage) => `${image.name ?? image.id}${image.ooo_version ? ` ${image.ooo_version}` : ""} (${image.ooo_digest ?? `image ${image.id}`})`;

export async function signedManifest(client: StoreClient, image: GlanceImage): Promise<SignedManifest> {
  const [text, signature] = await Promise.all([
    client.getManifestText(image.id),
    image.ooo_manifest_signature ? client.getManifestSignature(image.id) : undefined,
  ]);
  return { text, manifest: Manifest.parse(JSON.parse(text)), signature };
}

/**
 * The trusted key that signed the image's manifest; the manifest must name
 * the image's own data as its root. Throws ImageNotTrusted otherwise.
 */
export function checkImage(image: GlanceImage, signed: SignedManifest, keys: TrustedKey[]): TrustedKey {
  const data = image.os_hash_value ? `sha256:${image.os_hash_value}` : image.ooo_digest;
  return checkManifestTrust({ image: imageLabel(image), manifestText: signed.text, signatureText: signed.signature, keys, digest: data });
}
