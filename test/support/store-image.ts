import { createHash } from "node:crypto";
import type { Store } from "../../store/store.ts";

/**
 * An image as ooo publishes one, into a Store through its API: data, a
 * raw disk (a few bytes, or the one given) and a kernel as blobs, and a
 * manifest listing both. Images made with the same `kernel` share that
 * blob, as two builds of one element set share their kernel.
 */
export const sha256Hex = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

export type StoreCall = (method: string, path: string, body?: string | Uint8Array) => Promise<Response>;

/** `more`: further artifacts (type and bytes), such as the disk's map. */
export async function publishTestImage(
  store: Store,
  call: StoreCall,
  name: string,
  seed: string,
  kernel: Uint8Array,
  disk = new TextEncoder().encode(`disk of ${seed}`),
  more: { type: string; bytes: Uint8Array }[] = [],
) {
  const data = new TextEncoder().encode(`root of ${seed}`);
  const image = await store.create({ name, disk_format: "raw", container_format: "bare" });
  await store.upload(image.id, [data]);
  for (const b of [disk, kernel, ...more.map((m) => m.bytes)]) {
    const res = await call("PUT", `/v2/ooo/blobs/sha256:${sha256Hex(b)}`, b);
    if (res.status >= 300) throw new Error(`PUT blob: ${res.status} ${await res.text()}`);
  }
  const manifest = {
    version: 1, name, digest: `sha256:${sha256Hex(data)}`, arch: "amd64", sourceDateEpoch: 0,
    builder: { name: "ooo", version: "0" }, elements: [], packages: [],
    artifacts: [
      { type: "raw", file: `${name}.raw`, sha256: sha256Hex(disk), size: disk.length },
      { type: "vmlinuz", file: `${name}.vmlinuz`, sha256: sha256Hex(kernel), size: kernel.length },
      ...more.map((m) => ({ type: m.type, file: `${name}.${m.type}`, sha256: sha256Hex(m.bytes), size: m.bytes.length })),
    ],
    sizes: { rootBytes: data.length }, timings: { totalSeconds: 0, phases: {} },
  };
  const put = await call("PUT", `/v2/images/${image.id}/manifest`, JSON.stringify(manifest));
  if (put.status !== 200) throw new Error(`PUT manifest: ${put.status} ${await put.text()}`);
  return { id: image.id, data: sha256Hex(data), disk: sha256Hex(disk), diskBytes: disk, manifest: store.get(image.id).properties.ooo_manifest! };
}
