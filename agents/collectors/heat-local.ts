import { existsSync, readFileSync } from "node:fs";
import { log } from "../../lib/log.ts";
import { SourceNotAvailable } from "../errors.ts";
import { parseJson } from "../pyjson/parse.ts";
import { isDict, type PyDict } from "../pyjson/value.ts";
import type { Collector } from "./types.ts";

export const HEAT_LOCAL_DEFAULT_PATHS = ["/var/lib/heat-cfntools/cfn-init-data"];

/**
 * `heat_local`: metadata files left by heat-cfntools/cloud-init, merged key
 * by key (shallowly, later files win); files that are missing or not JSON
 * objects are skipped. Kept for compatibility with existing images.
 */
export const heatLocal: Collector = {
  name: "heat_local",
  description: "heat-cfntools metadata files",
  options: [{ name: "path", kind: "append", help: `file(s) to read (default: ${HEAT_LOCAL_DEFAULT_PATHS.join(", ")})` }],
  splitsDeployments: false,
  timeoutSeconds: () => 10,
  async collect(ctx) {
    const paths = ctx.settings.path?.length ? ctx.settings.path : HEAT_LOCAL_DEFAULT_PATHS;
    let merged: PyDict | undefined;
    for (const path of paths) {
      if (!existsSync(path)) continue;
      let value;
      try {
        value = parseJson(readFileSync(path, "utf8"));
      } catch (e) {
        log.info(`${path} is not valid JSON (${(e as Error).message})`);
        continue;
      }
      if (!isDict(value)) {
        log.info(`${path} does not hold a JSON object; skipped`);
        continue;
      }
      merged = merged?.size ? new Map([...merged, ...value]) : value;
    }
    if (!merged?.size) throw new SourceNotAvailable("heat_local", `Local metadata not found (${paths.join(", ")})`);
    return [["heat_local", merged]];
  },
};
