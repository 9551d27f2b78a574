import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { log } from "../../lib/log.ts";
import { SourceNotAvailable } from "../errors.ts";
import { debug } from "../log.ts";
import { parseJson } from "../pyjson/parse.ts";
import type { Collector, Output } from "./types.ts";

export const LOCAL_DEFAULT_PATHS = ["/var/lib/os-collect-config/local-data"];

/** Code point order, as Python sorts str under the C locale. */
const byCodePoint = (a: string, b: string) => {
  const x = [...a].map((c) => c.codePointAt(0)!);
  const y = [...b].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
};

/**
 * `local`: every JSON file in the configured folders is one output, named by
 * its file name (`a.json` is cached as `a.json.json`, as in the original),
 * sorted by name. Refused as a whole, like the original, when a folder is
 * someone else's or world-writable, or a file is world-writable or not JSON:
 * local data is trusted as root's.
 */
export const local: Collector = {
  name: "local",
  description: "JSON files in local folders",
  options: [{ name: "path", kind: "append", help: `folder to scan for metadata files (default: ${LOCAL_DEFAULT_PATHS.join(", ")})` }],
  splitsDeployments: false,
  timeoutSeconds: () => 10,
  async collect(ctx) {
    const paths = ctx.settings.path?.length ? ctx.settings.path : LOCAL_DEFAULT_PATHS;
    const uid = process.getuid?.() ?? 0;
    const found: Output[] = [];
    for (const dir of paths) {
      let st;
      try {
        st = statSync(dir);
      } catch {
        log.warn(`${dir} not found. Skipping`);
        continue;
      }
      if (st.uid !== uid) throw new SourceNotAvailable("local", `${dir} is owned by another user. This is a security risk.`);
      if (st.mode & 0o002) throw new SourceNotAvailable("local", `${dir} is world writable. This is a security risk.`);
      for (const name of readdirSync(dir)) {
        if (name.startsWith(".")) continue;
        const file = join(dir, name);
        let fst;
        try {
          fst = statSync(file);
        } catch {
          log.warn(`${file} cannot be read (a dangling symlink?). Skipping`);
          continue;
        }
        if (fst.isDirectory()) continue;
        if (fst.mode & 0o002) throw new SourceNotAvailable("local", `${file} is world writable. This is a security risk.`);
        try {
          found.push([name, parseJson(readFileSync(file, "utf8"))]);
        } catch (e) {
          throw new SourceNotAvailable("local", `${file} is not valid JSON (${(e as Error).message})`);
        }
      }
    }
    if (!found.length) debug(`No local metadata found (${paths.join(", ")})`);
    return found.sort((a, b) => byCodePoint(a[0], b[0]));
  },
};
