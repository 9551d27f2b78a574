import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chunkId, chunkStream, DEFAULT_CHUNKER, ALGORITHM } from "../../lib/chunking.ts";
import type { ChunkIndex } from "../../wire/chunk-index.ts";
import { planStream, streamInto } from "./stream-install.ts";

async function indexOf(data: Uint8Array): Promise<{ index: ChunkIndex; chunks: Map<string, Uint8Array> }> {
  const chunks = new Map<string, Uint8Array>();
  const list: [string, number][] = [];
  async function* once() {
    yield data;
  }
  for await (const c of chunkStream(once(), DEFAULT_CHUNKER)) {
    const id = chunkId(c);
    chunks.set(id, c);
    list.push([id, c.length]);
  }
  const digest = `sha256:${new Bun.CryptoHasher("sha256").update(data).digest("hex")}`;
  return { index: { version: 1, digest, size: data.length, chunker: { algorithm: ALGORITHM, ...DEFAULT_CHUNKER }, chunks: list } as unknown as ChunkIndex, chunks };
}

function random(n: number, seed: number) {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe("streamed install plan", () => {
  test("shared chunks come from the old stream in order; inserted data is fetched; repeats are kept", async () => {
    const a = random(3 << 20, 1);
    const zeros = new Uint8Array(300_000);
    const old = Buffer.concat([a.subarray(0, 1 << 20), zeros, a.subarray(1 << 20)]);
    const neu = Buffer.concat([a.subarray(0, 1 << 20), random(200_000, 9), zeros, a.subarray(1 << 20), zeros]);
    const [o, n] = await Promise.all([indexOf(old), indexOf(neu)]);
    const plan = planStream(n.index, o.index);
    const kinds = plan.entries.map((e) => e.source.kind);
    expect(kinds).toContain("old");
    expect(kinds).toContain("fetch");
    expect(plan.reused).toBeGreaterThan(neu.length * 0.7); // all but the insertion and the re-cut zeros
    // Offsets of old chunks never go backwards.
    const offsets = plan.entries.flatMap((e) => (e.source.kind === "old" ? [e.source.offset] : []));
    expect(offsets).toEqual([...offsets].sort((x, y) => x - y));
  });

  test("repeated chunks are kept; chunks only behind the single pass are fetched", () => {
    const idx = (chunks: [string, number][]) => ({ version: 1, digest: "sha256:x", size: chunks.reduce((a, [, n]) => a + n, 0), chunks }) as unknown as ChunkIndex;
    const current = idx([["a", 10], ["b", 10], ["c", 10]]);
    const wanted = idx([["c", 10], ["a", 10], ["a", 10], ["d", 10]]);
    const plan = planStream(wanted, current);
    expect(plan.entries.map((e) => [e.id, e.source.kind])).toEqual([
      ["c", "old"],
      ["a", "fetch"], // "a" lies before "c" in the running root: the pass is past it
      ["a", "repeat"],
      ["d", "fetch"],
    ]);
    expect([...plan.keep]).toEqual(["a"]);
    expect([...plan.fetch.keys()]).toEqual(["a", "d"]);
  });

  test("the stream it makes is the new image, byte for byte, into tar -x", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ooo-stream-"));
    try {
      const src = join(dir, "src");
      await Bun.$`mkdir -p ${src}/a ${src}/b && head -c 2000000 /dev/urandom > ${src}/a/big && echo one > ${src}/b/x`.quiet();
      const oldTar = new Uint8Array(await Bun.$`tar --sort=name -cf - -C ${src} .`.arrayBuffer());
      await Bun.$`echo two > ${src}/b/y && head -c 100000 /dev/urandom > ${src}/a/new`.quiet();
      const newTar = new Uint8Array(await Bun.$`tar --sort=name -cf - -C ${src} .`.arrayBuffer());
      const [o, n] = await Promise.all([indexOf(oldTar), indexOf(newTar)]);
      const plan = planStream(n.index, o.index);
      const fetched = new Map([...plan.fetch.keys()].map((id) => [id, n.chunks.get(id)!]));
      async function* oldStream() {
        for (let i = 0; i < oldTar.length; i += 100_000) yield oldTar.subarray(i, i + 100_000);
      }
      const out = join(dir, "out");
      await Bun.$`mkdir -p ${out}`;
      const result = await streamInto({ plan, fetched, oldStream: oldStream(), target: out });
      expect(result.digest).toBe(n.index.digest);
      expect(readFileSync(join(out, "b/y"), "utf8")).toBe("two\n");
      expect(readFileSync(join(out, "a/big")).equals(readFileSync(join(src, "a/big")))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
