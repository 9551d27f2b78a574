import { canonical } from "./steps.ts";
import type { OutputType } from "./types.ts";

/**
 * `-t tar`: the root in its canonical form (lib/tar/canonical.ts) — sorted,
 * numeric owners, xattrs kept, mtimes clamped — so its sha256 is the image's
 * content address.
 */
export const tarOutput: OutputType = {
  name: "tar",
  description: "the root as a deterministic tar; its sha256 is the image digest",
  async produce(work) {
    const c = await canonical(work);
    await work.emit("tar", "tar", c.file);
  },
};
