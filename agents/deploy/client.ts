import { log } from "../../lib/log.ts";
import {
  CommandV1,
  DEPLOY_VERSION,
  LookupAnswerV1,
  lookupUrl,
  ramdiskUrl,
  type Command,
  type Inventory,
  type Lookup,
  type LookupAnswer,
  type RamdiskProgress,
  type RamdiskResult,
} from "../../wire/deploy.ts";

/**
 * The ramdisk's side of wire/deploy.ts. The token the lookup returns lives
 * in this object only, and leaves it only in Authorization headers to the
 * metadata service's own origin: never in a log line, a file or an error.
 * With `ca` (the stack's CA, pinned by the kernel command line: pinned-ca.ts)
 * the service is verified against it; downloads from elsewhere (the store)
 * against the CA the deploy command names, else the system's.
 */

/** The service no longer accepts our token (the machine was disarmed, or armed again): look up again. */
export class TokenRejected extends Error {}

const sleep = (s: number) => Bun.sleep(s * 1000);

export class DeployClient {
  private token?: string;
  private readonly origin: string;
  private readonly tls: { tls?: { ca: string } };
  machine = "";
  pollInterval = 5;

  constructor(
    readonly base: string,
    options: { ca?: string; startedAt?: number } = {},
    private readonly startedAt = options.startedAt ?? performance.now(),
  ) {
    this.origin = new URL(base).origin;
    this.tls = options.ca ? { tls: { ca: options.ca } } : {};
  }

  /** Seconds since the agent started, for progress reports. */
  at() {
    return Number(((performance.now() - this.startedAt) / 1000).toFixed(1));
  }

  /**
   * Until the service knows this machine: it answers only a machine it
   * armed (powered on for a deploy, or enrolled into standby), once per
   * arming. Anything else — not armed yet, no network yet, the service
   * restarting — is waited out, with backoff up to 15 s.
   */
  async lookup(body: Lookup): Promise<LookupAnswer> {
    let delay = 1;
    let said = "";
    for (;;) {
      let why: string;
      try {
        const res = await fetch(lookupUrl(this.base), {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(15_000),
          ...this.tls,
        });
        if (res.ok) {
          const answer = LookupAnswerV1.parse(await res.json());
          this.token = answer.token;
          this.machine = answer.machine;
          this.pollInterval = answer.poll_interval;
          return answer;
        }
        why = `the metadata service answered ${res.status}: ${(await res.text()).slice(0, 200).trim() || res.statusText}`;
      } catch (e) {
        why = `the metadata service is not reachable: ${(e as Error).message}`;
      }
      // Said once, not at every retry: a machine may wait here a long time.
      if (why !== said) log.info(`lookup of ${body.macs.join(", ")}: ${why}; trying again`);
      said = why;
      await sleep(delay);
      delay = Math.min(delay * 2, 15);
    }
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    if (!this.token) throw new TokenRejected("no token: the machine has not been looked up");
    return { authorization: `Bearer ${this.token}`, ...extra };
  }

  private async send(what: "inventory" | "progress" | "result", body: unknown, timeoutMs: number): Promise<void> {
    const res = await fetch(ramdiskUrl(this.base, this.machine, what), {
      method: "POST",
      headers: this.headers({ "content-type": "application/json" }),
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
      ...this.tls,
    });
    if (res.status === 401 || res.status === 403) throw new TokenRejected(`the metadata service refused our token (${res.status})`);
    if (!res.ok) throw new Error(`POST ${what}: ${res.status} ${(await res.text()).slice(0, 200).trim()}`);
  }

  /** Retried a few times: the deployer needs the inventory and the result. */
  private async sendSurely(what: "inventory" | "result", body: unknown) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.send(what, body, 30_000);
      } catch (e) {
        if (e instanceof TokenRejected || attempt >= 5) throw e;
        log.warn(`sending the ${what} failed (${(e as Error).message}); trying again`);
        await sleep(attempt * 2);
      }
    }
  }

  inventory(inventory: Inventory) {
    return this.sendSurely("inventory", inventory);
  }

  result(result: Omit<RamdiskResult, "version">) {
    return this.sendSurely("result", { version: DEPLOY_VERSION, ...result });
  }

  /** Best effort: a lost progress report costs the timeline a point, not the deploy. */
  async progress(p: Omit<RamdiskProgress, "version" | "at">) {
    try {
      await this.send("progress", { version: DEPLOY_VERSION, at: this.at(), ...p }, 10_000);
    } catch (e) {
      if (e instanceof TokenRejected) throw e;
      log.warn(`progress report (${p.phase}) not delivered: ${(e as Error).message}`);
    }
  }

  /**
   * The deployer's current command. With the ETag of the last one, the
   * service holds the request until it changes (up to `waitSeconds`) and
   * answers 304 if it did not.
   */
  async command(etag: string | undefined, waitSeconds: number): Promise<{ command: Command; etag?: string } | "unchanged"> {
    const url = `${ramdiskUrl(this.base, this.machine, "command")}?wait=${waitSeconds}`;
    const res = await fetch(url, {
      headers: this.headers(etag ? { "if-none-match": etag } : {}),
      signal: AbortSignal.timeout((waitSeconds + 15) * 1000),
      ...this.tls,
    });
    if (res.status === 304) return "unchanged";
    if (res.status === 401 || res.status === 403) throw new TokenRejected(`the metadata service refused our token (${res.status})`);
    if (!res.ok) throw new Error(`GET command: ${res.status} ${(await res.text()).slice(0, 200).trim()}`);
    const command = CommandV1.parse(await res.json());
    return { command, etag: res.headers.get("etag") ?? undefined };
  }

  /**
   * GET a download (the golden disk or a range of it, its map, the config
   * drive). The ramdisk's own token goes only to the metadata service's
   * origin; the store gets its own read token, if the deployer gave one, as
   * the store reads it (X-Auth-Token, Glance's header), and is verified
   * against the store's CA when the deployer named one.
   */
  async download(url: string, storeToken: string | undefined, signal: AbortSignal, o: { headers?: Record<string, string>; storeCa?: string } = {}): Promise<Response> {
    const sameOrigin = new URL(url).origin === this.origin;
    const auth: Record<string, string> = storeToken ? { "x-auth-token": storeToken } : sameOrigin ? { authorization: this.headers().authorization! } : {};
    const tls = sameOrigin ? this.tls : o.storeCa ? { tls: { ca: o.storeCa } } : {};
    const res = await fetch(url, { headers: { ...o.headers, ...auth }, signal, ...tls });
    if (!res.ok || !res.body) throw new Error(`GET ${url}: ${res.status} ${res.ok ? "without a body" : (await res.text()).slice(0, 200).trim()}`);
    return res;
  }
}
