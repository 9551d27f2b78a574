import { log } from "../../lib/log.ts";
import type { NodeMetadata } from "../../wire/metadata.ts";
import { Progress, progressUrl, type Progress as ProgressT } from "../../wire/progress.ts";

export type Report = ReturnType<typeof progressReporter>;

/** Report the takeover's progress to `to` to the metadata service; never fails the takeover. */
export function progressReporter(ctx: { metadata: NodeMetadata; token?: string }, to: string, started: number) {
  const url = progressUrl(ctx.metadata.ooo.signal_url);
  return async (phase: ProgressT["phase"], extra: Partial<ProgressT> = {}) => {
    const body = Progress.parse({ version: 1, node: ctx.metadata.ooo.node, to, phase, at: (performance.now() - started) / 1000, ...extra });
    log.info(`takeover: ${phase}${extra.bytes_done !== undefined ? ` ${extra.bytes_done}/${extra.bytes_total ?? "?"} bytes` : ""}${extra.message ? `: ${extra.message}` : ""}`);
    try {
      await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...(ctx.token ? { authorization: `Bearer ${ctx.token}` } : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
    } catch {}
  };
}
