import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";

/**
 * A content hash of a small source tree (an element, a fixture): relative
 * paths, types, permission bits, symlink targets and file bytes — not owners
 * or times, so a fresh clone hashes the same as the working copy. Python
 * caches are ignored, and so are the relative paths in `exclude`.
 */
export function treeHash(root: string, exclude: ReadonlySet<string> = new Set()): string {
  const h = createHash("sha256");
  const walk = (dir: string, rel: string) => {
    const names = readdirSync(dir)
      .filter((n) => n !== "__pycache__" && !n.endsWith(".pyc"))
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const path = join(dir, name);
      const relPath = rel ? `${rel}/${name}` : name;
      if (exclude.has(relPath)) continue;
      const st = lstatSync(path);
      if (st.isSymbolicLink()) h.update(`l ${relPath} ${readlinkSync(path)}\n`);
      else if (st.isDirectory()) {
        h.update(`d ${relPath}\n`);
        walk(path, relPath);
      } else if (st.isFile()) {
        const content = createHash("sha256").update(readFileSync(path)).digest("hex");
        h.update(`f ${relPath} ${(st.mode & 0o111) !== 0 ? "x" : "-"} ${content}\n`);
      }
    }
  };
  walk(root, "");
  return h.digest("hex");
}
