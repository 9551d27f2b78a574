import { log } from "../../../lib/log.ts";
import { AGENT_API_VERSION, LookupAnswer } from "./protocol.ts";

/**
 * The agent's calls to Ironic's API (`ipa-api-url`): lookup by MAC and
 * heartbeats. Neither needs a login; the agent token Ironic hands out at
 * the first lookup is kept in memory only, and leaves it only in
 * heartbeats to Ironic (and is compared with what Ironic sends back).
 */
const headers = { "content-type": "application/json", accept: "application/json", "X-OpenStack-Ironic-API-Version": AGENT_API_VERSION };

/** Ironic's error text, from its `{"error_message": "<JSON>"}`. */
async function message(res: Response): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const outer = JSON.parse(text) as { error_message?: string };
    return (JSON.parse(outer.error_message ?? "") as { faultstring?: string }).faultstring ?? text;
  } catch {
    return text.trim().slice(0, 300) || res.statusText;
  }
}

export class IronicAgentApi {
  private readonly tls: { tls?: { ca: string } };

  constructor(
    readonly apiUrl: string,
    options: { ca?: string } = {},
  ) {
    this.tls = options.ca ? { tls: { ca: options.ca } } : {};
  }

  private url(path: string) {
    return `${this.apiUrl.replace(/\/+$/, "")}${path}`;
  }

  /**
   * Until Ironic knows the machine: it answers a lookup only while the node
   * is being deployed (or cleaned, inspected, rescued), so a machine that
   * came up early waits, with backoff up to 15 s; each reason is said once.
   */
  async lookup(macs: string[], options: { nodeUuid?: string; signal?: AbortSignal } = {}): Promise<LookupAnswer> {
    const q = new URLSearchParams({ addresses: macs.join(",") });
    if (options.nodeUuid) q.set("node_uuid", options.nodeUuid);
    let delay = 1;
    let said = "";
    for (;;) {
      options.signal?.throwIfAborted();
      let why: string;
      try {
        const res = await fetch(this.url(`/v1/lookup?${q}`), { headers, signal: AbortSignal.timeout(15_000), ...this.tls });
        if (res.ok) {
          const answer = LookupAnswer.parse(await res.json());
          if (!answer.config.agent_token || /^\*+$/.test(answer.config.agent_token))
            throw new Error(`Ironic gave node ${answer.node.uuid} no agent token (it gives one at the first lookup only: another agent looked it up, or this one started again)`);
          return answer;
        }
        why = `Ironic answered ${res.status}: ${await message(res)}`;
      } catch (e) {
        if (e instanceof Error && e.message.startsWith("Ironic gave node")) throw e;
        why = `Ironic is not reachable: ${(e as Error).message}`;
      }
      if (why !== said) log.info(`lookup of ${macs.join(", ")}: ${why}; trying again`);
      said = why;
      await Bun.sleep(delay * 1000);
      delay = Math.min(delay * 2, 15);
    }
  }

  /** One heartbeat: true when Ironic took it, false when the node was busy (locked) and it should come again soon. */
  async heartbeat(node: string, body: { callback_url: string; agent_token: string; agent_version: string }): Promise<boolean> {
    const res = await fetch(this.url(`/v1/heartbeat/${encodeURIComponent(node)}`), {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
      ...this.tls,
    });
    if (res.status === 202 || res.status === 204) return true;
    if (res.status === 409) return false;
    throw new Error(`heartbeat: Ironic answered ${res.status}: ${await message(res)}`);
  }
}
