import { closeSync, openSync, readSync, statSync } from "node:fs";
import { canonicalTar } from "../../lib/tar/canonical.ts";

/**
 * Where a node's old bytes come from when it fetches a new image: an older
 * canonical tar, any file, a block device (its current root partition), or
 * a directory tree — its running root — streamed through the canonical tar
 * form (lib/tar/canonical.ts) so that unchanged files give the very chunks
 * the publisher cut. Like casync's --seed.
 */
export interface Seed {
  path: string;
  kind: "file" | "block device" | "directory";
  stream(): AsyncIterable<Uint8Array>;
}

const READ_BYTES = 4 << 20;

async function* readSequentially(path: string): AsyncGenerator<Uint8Array> {
  const fd = openSync(path, "r");
  try {
    for (let at = 0; ; ) {
      // A fresh buffer each time: the chunker may keep views of it.
      const buf = Buffer.allocUnsafe(READ_BYTES);
      const n = readSync(fd, buf, 0, READ_BYTES, at);
      if (n <= 0) return;
      at += n;
      yield buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

export function openSeed(path: string, options: { sourceDateEpoch: number }): Seed {
  const st = statSync(path);
  if (st.isDirectory()) return { path, kind: "directory", stream: () => canonicalTar(path, options) };
  if (st.isFile() || st.isBlockDevice()) return { path, kind: st.isFile() ? "file" : "block device", stream: () => readSequentially(path) };
  throw new Error(`${path} is neither a file, a block device nor a directory`);
}
