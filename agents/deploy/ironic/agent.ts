import { log } from "../../../lib/log.ts";
import { IronicAgentApi } from "./api.ts";
import { CommandServer } from "./commands.ts";
import { ironicHandlers, type IronicMachine } from "./handlers.ts";
import { AGENT_VERSION } from "./protocol.ts";

/**
 * ooo's deploy ramdisk as an Ironic agent: looks the machine up by its MACs,
 * serves the command API on `listen`, and heartbeats with the callback URL
 * Ironic reaches it by — at Ironic's pace (its heartbeat_timeout × 0.3–0.6,
 * as ironic-python-agent does), and at once whenever a command ends, since
 * the conductor moves a deploy on only when a heartbeat comes.
 */
export interface IronicAgentOptions {
  /** Ironic's API (`ipa-api-url`). */
  apiUrl: string;
  /** The CA of an https Ironic. */
  apiCa?: string;
  macs: string[];
  /** Where the command API listens (ironic-python-agent: 0.0.0.0:9999). */
  listen: { hostname: string; port: number };
  /** The callback URL for the port it got (the machine's address, or a forward to it). */
  advertise: (port: number) => string;
  machine: IronicMachine;
  /** Ends the agent (tests; the ramdisk runs until it is powered off). */
  signal?: AbortSignal;
}

/** A heartbeat that failed or found the node busy is tried again this soon (seconds). */
const RETRY_SECONDS = { busy: 1, failed: 5 };

export async function runIronicAgent(o: IronicAgentOptions): Promise<void> {
  const api = new IronicAgentApi(o.apiUrl, { ca: o.apiCa });
  const found = await api.lookup(o.macs, { signal: o.signal });
  const node = found.node.uuid;
  const token = found.config.agent_token!;
  log.info(`Ironic knows this machine as node ${node}; heartbeats at least every ${Math.round(found.config.heartbeat_timeout * 0.6)} s`);

  let poke: () => void = () => {};
  const commands = new CommandServer(ironicHandlers(o.machine), () => token, () => poke());
  const server = Bun.serve({ hostname: o.listen.hostname, port: o.listen.port, fetch: commands.fetch, idleTimeout: 0 });
  const callback = o.advertise(server.port!);
  log.info(`command API on ${o.listen.hostname}:${server.port}, advertised as ${callback}`);
  try {
    while (!o.signal?.aborted) {
      let wait = found.config.heartbeat_timeout * (0.3 + Math.random() * 0.3);
      try {
        if (!(await api.heartbeat(node, { callback_url: callback, agent_token: token, agent_version: AGENT_VERSION }))) wait = RETRY_SECONDS.busy;
      } catch (e) {
        log.warn(`${(e as Error).message}; trying again in ${RETRY_SECONDS.failed} s`);
        wait = RETRY_SECONDS.failed;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait * 1000);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        poke = done;
        o.signal?.addEventListener("abort", done, { once: true });
      });
    }
  } finally {
    await server.stop(true);
  }
}
