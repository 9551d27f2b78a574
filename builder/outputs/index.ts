import { UnknownOutputType } from "../errors.ts";
import { tarOutput } from "./tar.ts";
import type { OutputType } from "./types.ts";

/** Every -t type ooo can write. */
export const OUTPUT_TYPES: Map<string, OutputType> = new Map([tarOutput].map((o) => [o.name, o]));

/** Validate a -t list and order it so that each type comes after what it needs. */
export function resolveOutputTypes(requested: string[]): OutputType[] {
  const ordered: OutputType[] = [];
  const visit = (name: string) => {
    const type = OUTPUT_TYPES.get(name);
    if (!type) throw new UnknownOutputType(name, [...OUTPUT_TYPES.keys()]);
    if (ordered.includes(type)) return;
    for (const need of type.needs ?? []) visit(need);
    ordered.push(type);
  };
  for (const name of requested) visit(name);
  return ordered;
}
