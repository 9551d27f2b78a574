import { readFileSync } from "node:fs";
import { parseWith } from "../../lib/validate.ts";
import { authorization, metadataUrl, NodeMetadata } from "../../wire/metadata.ts";
import { splitDeployments } from "../collect/deployments.ts";
import { SourceNotAvailable, SourceNotConfigured } from "../errors.ts";
import { isDict, toPlain } from "../pyjson/value.ts";
import { nodeFetchTls } from "../trust.ts";
import { getJson } from "./http.ts";
import { setting, timeoutSetting, type Collector } from "./types.ts";

/** The node's token: `token`, else the first line of `token_file`. */
export function nodeToken(settings: Record<string, string[]>): string | undefined {
  const token = setting({ settings }, "token");
  if (token) return token;
  const file = setting({ settings }, "token_file");
  if (!file) return undefined;
  try {
    return readFileSync(file, "utf8").split("\n")[0]!.trim() || undefined;
  } catch (e) {
    throw new SourceNotAvailable("heat", `cannot read token_file ${file}: ${(e as Error).message}`);
  }
}

/**
 * `heat`: Heat-style metadata from ooo's deployer (wire/metadata.ts):
 * GET <metadata_url>/v1/nodes/<node>/metadata with the node's bearer token.
 * The answer must be valid node metadata — a broken answer is "unavailable"
 * (the last good copy stays in use), never half-applied. Deployments are
 * split out as Heat's are. (The original `heat` collector spoke Keystone +
 * Heat's API; ooo's deployer is the Heat here.)
 */
export const heat: Collector = {
  name: "heat",
  description: "node metadata from ooo's metadata service",
  options: [
    { name: "metadata-url", kind: "value", help: "base URL of the metadata service (http://HOST:PORT)" },
    { name: "node", kind: "value", help: "this node's name" },
    { name: "token", kind: "value", help: "this node's bearer token" },
    { name: "token-file", kind: "value", help: "file holding the token (first line)" },
    { name: "timeout", kind: "value", help: "seconds to wait for the service (default 10)" },
  ],
  splitsDeployments: true,
  timeoutSeconds: (s) => timeoutSetting(s),
  async collect(ctx) {
    const base = setting(ctx, "metadata_url");
    const node = setting(ctx, "node");
    if (!base || !node) throw new SourceNotConfigured("heat", "metadata_url and node are not both configured");
    const token = nodeToken(ctx.settings);
    const url = metadataUrl(base, node);
    const content = await getJson("heat", url, {
      headers: token ? { authorization: authorization(token) } : {},
      signal: ctx.signal,
      memo: ctx.memo,
      // https: the stack's CA from the config drive (agents/trust.ts), besides the system's.
      ...nodeFetchTls(),
    });
    if (!isDict(content)) throw new SourceNotAvailable("heat", `${url}: the metadata is not a JSON object`);
    try {
      parseWith(NodeMetadata, toPlain(content), `${url} is not valid node metadata`);
    } catch (e) {
      throw new SourceNotAvailable("heat", (e as Error).message);
    }
    return splitDeployments("heat", content, ctx.deploymentKeys);
  },
};
