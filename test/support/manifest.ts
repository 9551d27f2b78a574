import { createHash } from "node:crypto";
import { closeSync, openSync, readSync, statSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { type Manifest, ManifestV1 } from "../../wire/manifest.ts";

/**
 * A build manifest for artifacts that exist beside `output` (OUTPUT.tar,
 * OUTPUT.qcow2 …), valid against wire/manifest.ts — for tests that publish
 * a tar the builder made, or a synthetic one, without a full build.
 */
export function sha256File(path: string): string {
  const h = createHash("sha256");
  const fd = openSync(path, "r");
  const buf = Buffer.allocUnsafe(4 << 20);
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

export function writeManifest(
  output: string,
  options: { name?: string; artifacts?: { type: string; file: string }[]; sourceDateEpoch?: number } = {},
): Manifest {
  const artifacts = (options.artifacts ?? [{ type: "tar", file: `${basename(output)}.tar` }]).map((a) => {
    const path = `${output.slice(0, output.length - basename(output).length)}${a.file}`;
    return { ...a, sha256: sha256File(path), size: statSync(path).size };
  });
  const tar = artifacts.find((a) => a.type === "tar")!;
  const manifest = ManifestV1.parse({
    version: 1,
    name: options.name ?? basename(output),
    digest: `sha256:${tar.sha256}`,
    arch: "amd64",
    sourceDateEpoch: options.sourceDateEpoch ?? 1704067200,
    builder: { name: "ooo", version: "0.1.0" },
    elements: [],
    packages: [],
    artifacts,
    sizes: { rootBytes: tar.size },
    timings: { totalSeconds: 0, phases: {} },
  });
  writeFileSync(`${output}.manifest.json`, JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}
