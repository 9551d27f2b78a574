import { randomUUID, timingSafeEqual } from "node:crypto";
import { log } from "../../../lib/log.ts";
import { CommandRequest, type CommandResult } from "./protocol.ts";

/**
 * The agent's command API, which Ironic's conductor calls on the callback
 * URL the heartbeats advertise: POST /v1/commands/ runs a command (at once
 * for a quick one; in the background for a long one, answering RUNNING,
 * unless `wait=true`), GET /v1/commands/ lists what ran. A command must
 * carry the agent token from the lookup (`agent_token=` in the query, as
 * Ironic sends it); the list needs none, as in ironic-python-agent — Ironic
 * 21.4 sends no token when it reads it — so no result holds a secret. A new command while one runs gets 409 "Agent is busy"
 * (Ironic tries again at the next heartbeat); a command ooo's agent does
 * not have gets 404 naming it. When a command ends, `finished` is told:
 * the agent heartbeats at once, and Ironic moves on.
 */
export interface CommandHandler {
  /** Long commands run in the background: the POST answers RUNNING, GET /v1/commands/ shows the end. */
  background?: boolean;
  run(params: Record<string, unknown>): Promise<unknown>;
}

const json = (status: number, body: unknown) => Response.json(body, { status });
/** Ironic reads `faultstring` from every error answer (and fails on one without it). */
const fault = (status: number, message: string) => json(status, { faultcode: status < 500 ? "Client" : "Server", faultstring: message, code: status, message });

export class CommandServer {
  readonly results: CommandResult[] = [];
  private readonly running = new Map<string, Promise<void>>();

  constructor(
    private readonly handlers: Record<string, CommandHandler>,
    /** The token from the lookup (undefined until then: every call is refused). */
    private readonly token: () => string | undefined,
    private readonly finished: (result: CommandResult) => void = () => {},
  ) {}

  private tokenOk(url: URL): boolean {
    const want = this.token();
    const got = url.searchParams.get("agent_token") ?? "";
    if (!want || got.length !== want.length) return false;
    return timingSafeEqual(Buffer.from(got), Buffer.from(want));
  }

  private get busy(): CommandResult | undefined {
    const last = this.results.at(-1);
    return last?.command_status === "RUNNING" ? last : undefined;
  }

  readonly fetch = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const path = url.pathname.replace(/\/+$/, "") || "/";
    if (req.method === "GET" && path === "/") return json(200, { name: "ooo-agent", versions: [{ id: "v1" }] });
    if (req.method === "GET" && path === "/v1") return json(200, { id: "v1", name: "ooo-agent" });
    if (!path.startsWith("/v1/commands")) return fault(404, `no such resource: ${url.pathname}`);
    const wait = url.searchParams.get("wait") === "true";
    if (req.method === "GET" && path === "/v1/commands") return json(200, { commands: this.results });
    const one = /^\/v1\/commands\/([\w-]+)$/.exec(path);
    if (req.method === "GET" && one) {
      const result = this.results.find((r) => r.id === one[1]);
      if (!result) return fault(404, `no command ${one[1]}`);
      if (wait) await this.running.get(result.id);
      return json(200, result);
    }
    if (req.method === "POST" && path === "/v1/commands") {
      if (!this.tokenOk(url)) return fault(401, "the agent token is missing or wrong");
      return this.post(req, wait);
    }
    return fault(405, `${req.method} ${url.pathname} is not allowed`);
  };

  private async post(req: Request, wait: boolean): Promise<Response> {
    const parsed = CommandRequest.safeParse(await req.json().catch(() => undefined));
    if (!parsed.success) return fault(400, `a command is {"name": "extension.command", "params": {…}}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}`);
    const { name, params } = parsed.data;
    const handler = this.handlers[name];
    if (!handler) return fault(404, `ooo's agent has no command ${name} (it has ${Object.keys(this.handlers).sort().join(", ")})`);
    const busy = this.busy;
    if (busy) return fault(409, `Agent is busy: ${busy.command_name} is running`);
    const result: CommandResult = { id: randomUUID(), command_name: name.split(".")[1]!, command_status: "RUNNING", command_error: null, command_result: null };
    this.results.push(result);
    log.info(`Ironic: ${name}${handler.background ? " (in the background)" : ""}`);
    const done = this.execute(name, handler, params, result);
    this.running.set(result.id, done);
    if (!handler.background || wait) await done;
    return json(200, result);
  }

  private async execute(name: string, handler: CommandHandler, params: Record<string, unknown>, result: CommandResult): Promise<void> {
    const started = performance.now();
    try {
      result.command_result = (await handler.run(params)) ?? null;
      result.command_status = "SUCCEEDED";
    } catch (e) {
      const message = (e as Error).message;
      result.command_error = { type: (e as Error).name || "Error", code: 500, message: `${name}: ${message}`, details: message };
      result.command_status = "FAILED";
    }
    this.running.delete(result.id);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (result.command_status === "FAILED") log.error(`Ironic: ${name} failed after ${seconds} s: ${result.command_error!.details}`);
    else log.info(`Ironic: ${name} done in ${seconds} s`);
    this.finished(result);
  }
}
