import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { debug } from "../log.ts";
import { parseJson } from "../pyjson/parse.ts";
import { truthy, type PyDict, type PyValue } from "../pyjson/value.ts";
import { findDrive, readFromDrive } from "./config-drive.ts";
import { getText } from "./http.ts";
import { setting, timeoutSetting, type Collector } from "./types.ts";

export const EC2_METADATA_URL = "http://169.254.169.254/latest/meta-data";

/**
 * The EC2 metadata layout: a directory listing per level, one name a line;
 * `name/` is a directory, `N=name` names directory N (public-keys); anything
 * else is a leaf read as text.
 */
export async function crawl(url: string, signal: AbortSignal): Promise<PyValue> {
  const text = await getText("ec2", url, signal);
  if (!url.endsWith("/")) return text;
  const out: PyDict = new Map();
  for (let entry of text.split("\n")) {
    if (!entry) continue;
    if (entry.includes("=")) entry = entry.slice(0, entry.indexOf("=")) + "/";
    const child = url + entry;
    out.set(entry.endsWith("/") ? entry.slice(0, -1) : entry, await crawl(child, signal));
  }
  return out;
}

/**
 * `ec2`: Nova's EC2-compatible metadata. Once fetched it is never fetched
 * again (its cache is reused: the data does not change for an instance and
 * polling loaded nova-api, LP#1619072); before the network, a config drive's
 * ec2/latest/meta-data.json is used.
 */
export const ec2: Collector = {
  name: "ec2",
  description: "EC2-style instance metadata",
  options: [
    { name: "metadata-url", kind: "value", help: `URL of the EC2 metadata (default ${EC2_METADATA_URL})` },
    { name: "timeout", kind: "value", help: "seconds to wait for the source (default 10)" },
  ],
  splitsDeployments: false,
  timeoutSeconds: (s) => timeoutSetting(s),
  async collect(ctx) {
    const cached = join(ctx.cachedir, "ec2.json");
    if (existsSync(cached)) {
      try {
        const value = parseJson(readFileSync(cached, "utf8"));
        if (truthy(value)) return [["ec2", value]];
      } catch (e) {
        debug(`ec2: ignoring unreadable cache ${cached}: ${(e as Error).message}`);
      }
    }
    const drive = await findDrive("config-2", ctx.signal).catch(() => undefined);
    if (drive?.devname) {
      const md = await readFromDrive(drive.devname, "ec2/latest/meta-data.json", "ec2", ctx.signal, drive.type).catch(() => undefined);
      if (md !== undefined && truthy(md)) return [["ec2", md]];
    }
    const base = setting(ctx, "metadata_url") ?? EC2_METADATA_URL;
    return [["ec2", await crawl(`${base}/`, ctx.signal)]];
  },
};
