import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { treeHash } from "../../lib/tree-hash.ts";
import { InvalidElement } from "../errors.ts";
import type { Element } from "./element.ts";

/**
 * An element's content hash: its own files, plus any outside files its hooks
 * read, which the element lists in `cache-inputs` (ooo): one path per line,
 * relative to the element folder, `#` comments allowed. An element that
 * compiles code from elsewhere in the repository lists that code here, so a
 * change to it invalidates the cached layers after the element's hooks.
 * `exclude` leaves out paths relative to the element (its hook files, when
 * only its data is wanted).
 */
export function elementContentHash(element: Element, exclude: ReadonlySet<string> = new Set()): string {
  const h = createHash("sha256").update(treeHash(element.dir, exclude));
  const listFile = join(element.dir, "cache-inputs");
  if (!existsSync(listFile)) return h.digest("hex");
  const entries = readFileSync(listFile, "utf8")
    .split("\n")
    .map((l) => l.replace(/#.*$/, "").trim())
    .filter(Boolean);
  for (const entry of entries) {
    const path = resolve(element.dir, entry);
    if (!existsSync(path)) throw new InvalidElement(element.name, "cache-inputs", `${entry} does not exist`);
    const part = statSync(path).isDirectory()
      ? treeHash(path)
      : createHash("sha256").update(readFileSync(path)).digest("hex");
    h.update(`${entry}\0${part}\n`);
  }
  return h.digest("hex");
}
