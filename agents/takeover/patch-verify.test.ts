import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalTar } from "../../lib/tar/canonical.ts";
import { indexStream } from "../../store/client/indexer.ts";
import { entriesText, TAR_ENTRIES_ARTIFACT, type ChunkIndex } from "../../wire/chunk-index.ts";
import { ManifestV1, type Manifest } from "../../wire/manifest.ts";
import { UntrustedImage } from "../errors.ts";
import { entriesSigned } from "./patch-verify.ts";

async function indexOf(files: Record<string, string>): Promise<ChunkIndex> {
  const root = mkdtempSync(join(tmpdir(), "ooo-entries-"));
  try {
    mkdirSync(join(root, "etc"));
    for (const [path, text] of Object.entries(files)) writeFileSync(join(root, path), text);
    return await indexStream(canonicalTar(root, { sourceDateEpoch: 1704067200 }), undefined, undefined, { entries: true });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const manifestFor = (index: ChunkIndex, entries?: string): Manifest =>
  ManifestV1.parse({
    version: 1,
    name: "t",
    digest: index.digest,
    arch: "amd64",
    sourceDateEpoch: 1704067200,
    builder: { name: "ooo", version: "0.1.0" },
    elements: [],
    packages: [],
    artifacts: [
      { type: "tar", file: "t.tar", sha256: index.digest.slice(7), size: index.size },
      ...(entries === undefined ? [] : [{ type: TAR_ENTRIES_ARTIFACT, file: "t.entries.json", sha256: createHash("sha256").update(entries).digest("hex"), size: entries.length }]),
    ],
    sizes: { rootBytes: index.size },
    timings: { totalSeconds: 0, phases: {} },
  });

describe("entriesSigned: the store's index lists the entries the signed manifest names", () => {
  test("the same entries: true; a manifest that names none (an older build): false, the root is hashed whole", async () => {
    const index = await indexOf({ "etc/a": "one", "etc/b": "two" });
    expect(entriesSigned(index, manifestFor(index, entriesText(index.entries!)), "t v1")).toBe(true);
    expect(entriesSigned(index, manifestFor(index), "t v1")).toBe(false);
  });

  test("a store that lists other entries (a file's hash changed, one left out) is refused, naming the image", async () => {
    const index = await indexOf({ "etc/a": "one", "etc/b": "two" });
    const signed = manifestFor(index, entriesText(index.entries!));
    const changed = structuredClone(index);
    changed.entries![1]![2] = "0".repeat(64);
    expect(() => entriesSigned(changed, signed, "t v1 sha256:abc")).toThrow(UntrustedImage);
    expect(() => entriesSigned(changed, signed, "t v1 sha256:abc")).toThrow(/chunk index for t v1 sha256:abc lists other tar entries than its signed manifest names/);
    const fewer = { ...index, entries: index.entries!.slice(0, -1) };
    expect(() => entriesSigned(fewer, signed, "t v1")).toThrow(UntrustedImage);
  });

  test("the index of another image than the signed manifest names is refused", async () => {
    const index = await indexOf({ "etc/a": "one" });
    const other = await indexOf({ "etc/a": "other" });
    expect(() => entriesSigned(other, manifestFor(index, entriesText(index.entries!)), "t v2")).toThrow(/is of sha256:.*, not of sha256:/);
  });
});
