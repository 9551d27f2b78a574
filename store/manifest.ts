import { SignatureMalformed } from "../lib/errors.ts";
import { parseSignature } from "../lib/minisign.ts";
import { Manifest } from "../wire/manifest.ts";
import { blobBytes } from "./blobs.ts";
import { BadRequest, Conflict, DigestMismatch, NotFound } from "./errors.ts";
import type { ImageRecord } from "./image.ts";
import { ingest } from "./ingest.ts";
import type { Store } from "./store.ts";

/**
 * The build manifest stored with an image (`PUT/GET /v2/images/{id}/manifest`,
 * property `ooo_manifest`). It must describe this image — its digest is the
 * image data's — and every artifact it lists must already be a blob, so a
 * node that reads a manifest can fetch everything it names.
 */
export const MAX_MANIFEST_BYTES = 16 << 20;

export async function attachManifest(store: Store, id: string, text: string): Promise<ImageRecord> {
  if (text.length > MAX_MANIFEST_BYTES) throw new BadRequest("The manifest is too large");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BadRequest("The manifest is not valid JSON");
  }
  const parsed = Manifest.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BadRequest(`Invalid manifest at ${issue.path.join(".") || "top"}: ${issue.message}`);
  }
  const manifest = parsed.data;
  const r = store.get(id);
  if (r.status !== "active") throw new Conflict(`Image ${id} is ${r.status}; upload its data before its manifest`);
  const data = `sha256:${r.os_hash_value}`;
  if (manifest.digest !== data) throw new DigestMismatch("manifest digest", data, manifest.digest);
  const missing: string[] = [];
  for (const a of manifest.artifacts) {
    const size = await store.backend.stat(a.sha256);
    if (size === undefined) missing.push(a.file);
    else if (size !== a.size) throw new DigestMismatch(`artifact ${a.file} size`, String(a.size), String(size));
  }
  if (missing.length) throw new BadRequest(`Artifacts not in the store: ${missing.join(", ")}; upload them as blobs first`);
  const blob = await ingest(store.backend, [Buffer.from(text)], { maxSize: MAX_MANIFEST_BYTES });
  await store.backend.flush();
  const digest = `sha256:${blob.hex}`;
  // A signature is of the manifest's bytes: another manifest is unsigned until it is signed.
  const stale = r.properties.ooo_manifest !== digest ? ["ooo_manifest_signature"] : [];
  return store.setServerProperties(id, { ooo_manifest: digest }, stale);
}

/**
 * The manifest's minisign signature (`PUT/GET /v2/images/{id}/manifest.minisig`,
 * property `ooo_manifest_signature`), as `ooo publish --sign` makes it. The
 * store keeps it beside the manifest and checks only that it is one: it
 * knows no keys. Whoever installs the image checks it against the keys it
 * trusts (lib/image-trust.ts).
 */
export const MAX_SIGNATURE_BYTES = 4096;

export async function attachSignature(store: Store, id: string, text: string): Promise<ImageRecord> {
  try {
    parseSignature(text, "the body");
  } catch (e) {
    if (e instanceof SignatureMalformed) throw new BadRequest(e.message);
    throw e;
  }
  const r = store.get(id);
  if (!r.properties.ooo_manifest) throw new Conflict(`Image ${id} has no manifest to sign; upload its manifest first`);
  const blob = await ingest(store.backend, [Buffer.from(text)], { maxSize: MAX_SIGNATURE_BYTES });
  await store.backend.flush();
  return store.setServerProperties(id, { ooo_manifest_signature: `sha256:${blob.hex}` });
}

export async function readSignature(store: Store, id: string): Promise<Uint8Array> {
  const r = store.get(id);
  store.checkDownloadable(r);
  const digest = r.properties.ooo_manifest_signature;
  if (!digest) throw new NotFound(`Image ${id}'s manifest is not signed`);
  return blobBytes(store, digest.slice(7));
}

export async function readManifest(store: Store, id: string): Promise<Uint8Array> {
  const r = store.get(id);
  store.checkDownloadable(r);
  const digest = r.properties.ooo_manifest;
  if (!digest) throw new NotFound(`Image ${id} has no manifest`);
  return blobBytes(store, digest.slice(7));
}
