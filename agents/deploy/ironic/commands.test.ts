import { expect, test } from "bun:test";
import { CommandServer } from "./commands.ts";
import type { CommandResult } from "./protocol.ts";

/**
 * The command API's rules, as Ironic's conductor meets them (the whole
 * sequence runs against a real Ironic in agent.test.ts): the token on
 * every command, one command at a time, errors with a `faultstring`.
 */
const TOKEN = "agent-token-from-the-lookup";

function server() {
  let release = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const finished: CommandResult[] = [];
  const s = new CommandServer(
    {
      "test.quick": { run: async (p) => ({ echo: p.value }) },
      "test.slow": { background: true, run: () => gate.then(() => "done") },
      "test.broken": { run: async () => Promise.reject(new Error("the disk is on fire")) },
    },
    () => TOKEN,
    (r) => finished.push(r),
  );
  const call = (method: string, path: string, body?: unknown) =>
    s.fetch(new Request(`http://agent${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: { "content-type": "application/json" } }));
  return { s, call, release, finished };
}

const post = (token: string | null, wait = false) => `/v1/commands/?wait=${wait}${token === null ? "" : `&agent_token=${token}`}`;

test("a command needs the lookup's token; the list does not (Ironic 21.4 reads it without one)", async () => {
  const { call } = server();
  for (const token of [null, "wrong", `${TOKEN}x`]) {
    const res = await call("POST", post(token), { name: "test.quick", params: {} });
    expect([token, res.status, ((await res.json()) as { faultstring: string }).faultstring]).toEqual([token, 401, "the agent token is missing or wrong"]);
  }
  expect(await (await call("GET", "/v1/commands/")).json()).toEqual({ commands: [] });
  const ok = await call("POST", post(TOKEN), { name: "test.quick", params: { value: 7 } });
  expect(ok.status).toBe(200);
  expect(await ok.json()).toMatchObject({ command_name: "quick", command_status: "SUCCEEDED", command_error: null, command_result: { echo: 7 } });
});

test("a long command answers RUNNING; another one meanwhile gets 409; its end is told and listed", async () => {
  const { call, release, finished } = server();
  const started = (await (await call("POST", post(TOKEN), { name: "test.slow", params: {} })).json()) as CommandResult;
  expect(started).toMatchObject({ command_name: "slow", command_status: "RUNNING" });
  const busy = await call("POST", post(TOKEN), { name: "test.quick", params: {} });
  expect([busy.status, ((await busy.json()) as { faultstring: string }).faultstring]).toEqual([409, "Agent is busy: slow is running"]);
  release();
  const joined = (await (await call("GET", `/v1/commands/${started.id}?wait=true`)).json()) as CommandResult;
  expect(joined).toMatchObject({ id: started.id, command_status: "SUCCEEDED", command_result: "done" });
  expect(finished.map((r) => r.command_name)).toEqual(["slow"]);
  const list = (await (await call("GET", "/v1/commands")).json()) as { commands: CommandResult[] };
  expect(list.commands.map((c) => [c.command_name, c.command_status])).toEqual([["slow", "SUCCEEDED"]]);
  // With wait=true even a long command answers at its end.
  const waited = (await (await call("POST", post(TOKEN, true), { name: "test.quick", params: {} })).json()) as CommandResult;
  expect(waited.command_status).toBe("SUCCEEDED");
});

test("a failing command is FAILED with its message; an unknown one is 404 naming it; a malformed one 400", async () => {
  const { call } = server();
  const failed = (await (await call("POST", post(TOKEN), { name: "test.broken", params: {} })).json()) as CommandResult;
  expect(failed).toMatchObject({ command_status: "FAILED", command_error: { message: "test.broken: the disk is on fire", code: 500 } });
  const unknown = await call("POST", post(TOKEN), { name: "rescue.finalize_rescue", params: {} });
  expect([unknown.status, ((await unknown.json()) as { faultstring: string }).faultstring]).toEqual([
    404,
    "ooo's agent has no command rescue.finalize_rescue (it has test.broken, test.quick, test.slow)",
  ]);
  for (const body of [{ params: {} }, { name: "no-dot", params: {} }, "not json"]) {
    const res = await call("POST", post(TOKEN), body);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { faultstring: string }).faultstring).toStartWith('a command is {"name": "extension.command"');
  }
  expect((await call("GET", "/v1/commands/no-such-id")).status).toBe(404);
  expect((await call("DELETE", "/v1/commands/")).status).toBe(405);
});
