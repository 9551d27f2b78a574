import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { Sha256Pipe } from "./sha256-pipe.ts";

/** sha256sum through a pipe: the same digest as node:crypto, however the bytes come; a buffer may be reused at once. */
test("the digest of many writes, more than the pipe holds, reusing one buffer", async () => {
  const hash = new Sha256Pipe();
  const reference = createHash("sha256");
  const buffer = Buffer.alloc(300_000);
  for (let i = 0; i < 20; i++) {
    buffer.fill(i * 7 + 1);
    buffer.writeUInt32BE(i, 12_345);
    hash.put(buffer);
    reference.update(buffer);
  }
  hash.put(new Uint8Array(0));
  expect(await hash.digest()).toBe(`sha256:${reference.digest("hex")}`);
  expect(() => hash.put(buffer)).toThrow(/after digest/);
});

test("abort ends sha256sum; the pipe takes nothing more", async () => {
  const hash = new Sha256Pipe();
  hash.put(Buffer.from("partial"));
  hash.abort();
  expect(() => hash.put(Buffer.from("more"))).toThrow(/after digest\(\) or abort\(\)/);
});
