import { createReadStream, writeFileSync } from "node:fs";
import { EntryIndexer } from "../../lib/tar/entries.ts";
import { entriesText, entryTuples, TAR_ENTRIES_ARTIFACT } from "../../wire/chunk-index.ts";
import { canonical } from "./steps.ts";
import type { OutputType } from "./types.ts";

/**
 * `-t tar`: the root in its canonical form (lib/tar/canonical.ts) — sorted,
 * numeric owners, xattrs kept, mtimes clamped — so its sha256 is the image's
 * content address; beside it its entries (`NAME.entries.json`, the
 * `tar-entries` artifact of wire/chunk-index.ts), which a signed manifest
 * thereby vouches for, so that nodes can upgrade by them without hashing
 * their whole root.
 */
export const tarOutput: OutputType = {
  name: "tar",
  description: "the root as a deterministic tar; its sha256 is the image digest",
  files: ["tar", "entries.json"],
  async produce(work) {
    const c = await canonical(work);
    await work.emit("tar", "tar", c.file);
    const entries = await work.once("list the tar's entries", async () => {
      const indexer = new EntryIndexer();
      for await (const data of createReadStream(c.file, { highWaterMark: 1 << 20 })) indexer.push(data as Buffer);
      const file = work.scratchPath("entries.json");
      writeFileSync(file, entriesText(entryTuples(indexer.finish())));
      return file;
    });
    await work.emit(TAR_ENTRIES_ARTIFACT, "entries.json", entries);
  },
};
