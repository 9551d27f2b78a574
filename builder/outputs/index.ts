import { UnknownOutputType } from "../errors.ts";
import { qcow2Output } from "./qcow2.ts";
import { ramdiskOutput } from "./ramdisk.ts";
import { rawOutput } from "./raw.ts";
import { rootfsOutput } from "./rootfs.ts";
import { tarOutput } from "./tar.ts";
import type { OutputType } from "./types.ts";

/** Every -t type ooo can write. */
export const OUTPUT_TYPES: Map<string, OutputType> = new Map(
  [tarOutput, rootfsOutput, rawOutput, qcow2Output, ramdiskOutput].map((o) => [o.name, o]),
);

/** Validate a -t list (before any work starts). */
export function resolveOutputTypes(requested: string[]): OutputType[] {
  return [...new Set(requested)].map((name) => {
    const type = OUTPUT_TYPES.get(name);
    if (!type) throw new UnknownOutputType(name, [...OUTPUT_TYPES.keys()]);
    return type;
  });
}
