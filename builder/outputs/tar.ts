import { openSync, closeSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import { publishAtomically } from "../../lib/atomic.ts";
import { canonicalTar } from "../../lib/tar/canonical.ts";
import type { OutputType } from "./types.ts";

/**
 * `-t tar`: the root in its canonical form (see lib/tar/canonical.ts), so the
 * file's sha256 is the image's content address. Streamed: never held in
 * memory whole.
 */
export const tarOutput: OutputType = {
  name: "tar",
  description: "root tree as a deterministic tar (its sha256 is the image digest)",
  async produce(ctx) {
    const path = `${ctx.base}.tar`;
    const hash = createHash("sha256");
    let size = 0;
    await publishAtomically(path, async (target) => {
      const fd = openSync(target, "w");
      try {
        for await (const chunk of canonicalTar(ctx.root, { sourceDateEpoch: ctx.options.sourceDateEpoch })) {
          hash.update(chunk);
          writeSync(fd, chunk);
          size += chunk.length;
        }
      } finally {
        closeSync(fd);
      }
    });
    return { type: "tar", path, sha256: hash.digest("hex"), size };
  },
};
