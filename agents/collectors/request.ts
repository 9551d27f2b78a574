import { SourceNotAvailable, SourceNotConfigured } from "../errors.ts";
import { isDict } from "../pyjson/value.ts";
import { splitDeployments } from "../collect/deployments.ts";
import { getJson } from "./http.ts";
import { setting, timeoutSetting, type Collector } from "./types.ts";

/**
 * `request`: a plain HTTP(S) URL serving a JSON object (Heat's
 * POLL_TEMP_URL transport: a Swift temp URL). Deployments are split out.
 * Conditional requests replace the original's HEAD-then-GET.
 */
export const request: Collector = {
  name: "request",
  description: "a JSON object at a URL",
  options: [
    { name: "metadata-url", kind: "value", help: "URL to query for metadata" },
    { name: "timeout", kind: "value", help: "seconds to wait for the source (default 10)" },
  ],
  splitsDeployments: true,
  timeoutSeconds: (s) => timeoutSetting(s),
  async collect(ctx) {
    const url = setting(ctx, "metadata_url");
    if (!url) throw new SourceNotConfigured("request", "No metadata_url configured.");
    const content = await getJson("request", url, { signal: ctx.signal, memo: ctx.memo });
    if (!isDict(content)) throw new SourceNotAvailable("request", `${url}: the metadata is not a JSON object`);
    return splitDeployments("request", content, ctx.deploymentKeys);
  },
};
