import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { log } from "../../lib/log.ts";
import { parseWith } from "../../lib/validate.ts";
import { authorization } from "../../wire/metadata.ts";
import { CompletionSignal, SIGNAL_VERSION } from "../../wire/signal.ts";
import { nodeToken } from "../collectors/heat.ts";
import { nodeFetchTls } from "../trust.ts";
import { defaultConfigFiles, readConfigFiles } from "../collect/config.ts";
import { SignalFailed } from "../errors.ts";
import { debug } from "../log.ts";
import { isDict, type PyDict } from "../pyjson/value.ts";
import type { RefreshOutcome } from "./refresh.ts";

/**
 * The completion signal (wire/signal.ts): after every run, os-refresh-config
 * tells the metadata service how it went. Where to: --signal-url, else the
 * `ooo.signal_url` of the metadata the run applied. The token: the
 * --signal-token-file, else $OOO_SIGNAL_TOKEN (os-collect-config sets it to
 * the token its heat collector fetched the metadata with), else the [heat]
 * token or token_file of os-collect-config's default config files (for runs
 * by hand). (The original never signalled; heat-config hooks did, per
 * deployment.)
 */
export interface SignalTarget {
  url: string;
  token?: string;
  node: string;
  serial?: number;
}

export function tokenFromCollectConfig(): string | undefined {
  try {
    const { files, dirs } = defaultConfigFiles();
    const { data } = readConfigFiles(files, dirs);
    return nodeToken(Object.fromEntries(data.get("heat") ?? []));
  } catch (e) {
    debug(`no token from os-collect-config's config: ${(e as Error).message}`);
    return undefined;
  }
}

export function signalTarget(options: { url?: string; tokenFile?: string }, metadata: PyDict, env = process.env): SignalTarget | undefined {
  const ooo = metadata.get("ooo");
  const block = isDict(ooo) ? ooo : new Map();
  const fromMetadata = block.get("signal_url");
  const url = options.url ?? (typeof fromMetadata === "string" ? fromMetadata : undefined);
  if (!url) return undefined;
  const token = options.tokenFile
    ? readFileSync(options.tokenFile, "utf8").split("\n")[0]!.trim()
    : (env.OOO_SIGNAL_TOKEN ?? tokenFromCollectConfig());
  const node = block.get("node");
  const serial = block.get("serial");
  return {
    url,
    token,
    node: typeof node === "string" ? node : hostname(),
    serial: typeof serial === "bigint" ? Number(serial) : undefined,
  };
}

/**
 * What the node's upgrade agent (agents/takeover) left in /run/ooo for this
 * run to report: the root it runs, and the outcome of a takeover.
 */
function takeoverFacts(dir = process.env.OOO_RUN_DIR ?? "/run/ooo"): { node_state?: unknown; upgrade?: unknown } {
  const read = (name: string) => {
    try {
      return JSON.parse(readFileSync(`${dir}/${name}`, "utf8")) as unknown;
    } catch {
      return undefined;
    }
  };
  const node_state = read("node-state.json");
  const upgrade = read("upgrade.json");
  return { ...(node_state ? { node_state } : {}), ...(upgrade ? { upgrade } : {}) };
}

export function buildSignal(outcome: RefreshOutcome, target: SignalTarget): CompletionSignal {
  const timings = Object.fromEntries(outcome.scripts.map((s) => [s.id, Number(s.seconds.toFixed(3))]));
  const failed = outcome.failed;
  const reason = failed
    ? `${failed.script.id} failed with status ${failed.script.status}${outcome.timedOut ? " (timed out)" : ""}`
    : `configured: ${outcome.scripts.length} scripts in ${outcome.seconds.toFixed(1)}s`;
  return parseWith(
    CompletionSignal,
    {
      version: SIGNAL_VERSION,
      status: failed ? "FAILURE" : "SUCCESS",
      reason,
      data: {
        deploy_stdout: outcome.capture.stdout,
        deploy_stderr: outcome.capture.stderr,
        deploy_status_code: failed ? failed.script.status || 1 : 0,
        ...(failed ? { failed_script: failed.script.id, output_tail: failed.script.tail.join("\n") } : {}),
        timings,
        ...takeoverFacts(),
      },
      id: target.serial === undefined ? target.node : `${target.node}:${target.serial}`,
      ...(target.serial === undefined ? {} : { metadata_serial: target.serial }),
    },
    "completion signal",
  );
}

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);

/** POST the signal; retry on network errors and 429/5xx, with backoff (0.5 s doubling, 6 tries). */
export async function sendSignal(target: SignalTarget, body: CompletionSignal, options = { attempts: 6, backoffMs: 500, timeoutMs: 10_000 }): Promise<void> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (target.token) headers.authorization = authorization(target.token);
  let problem = "";
  for (let attempt = 1; attempt <= options.attempts; attempt++) {
    try {
      const r = await fetch(target.url, { method: "POST", headers, body: JSON.stringify(body), signal: AbortSignal.timeout(options.timeoutMs), ...nodeFetchTls() });
      if (r.ok) {
        log.info(`Signalled ${body.status} to ${target.url}`);
        return;
      }
      problem = `HTTP ${r.status} ${r.statusText}`;
      if (!RETRY_STATUSES.has(r.status)) break;
    } catch (e) {
      problem = (e as Error).message;
    }
    if (attempt < options.attempts) {
      debug(`signal attempt ${attempt} failed (${problem}); retrying`);
      await Bun.sleep(options.backoffMs * 2 ** (attempt - 1));
    }
  }
  throw new SignalFailed(target.url, problem);
}
