import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseJson } from "../pyjson/parse.ts";
import { loadConfig } from "./config.ts";
import { nextSleep, pollLoop, type LoopSignals } from "./loop.ts";

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "occ-"));
  mkdirSync(join(work, "local"), { mode: 0o755 });
  chmodSync(join(work, "local"), 0o755);
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

const servers: { stop(force?: boolean): void }[] = [];
afterAll(() => servers.forEach((s) => s.stop(true)));

const signals = (): LoopSignals => ({ stop: new AbortController().signal, hup: { pending: false, wake: new AbortController() } });

/** One poll of os-collect-config --one-time with a command that logs its calls and exits with the status in `status`. */
async function poll(...extra: string[]): Promise<number> {
  const command = `echo "$OS_CONFIG_FILES" >> ${work}/calls; exit $(cat ${work}/status 2>/dev/null || echo 0)`;
  const config = loadConfig([
    "--config-file", "/dev/null",
    "--cachedir", join(work, "cache"),
    "--backup-cachedir", join(work, "backup"),
    "--local-path", join(work, "local"),
    "--one-time",
    "-c", command,
    ...extra,
  ]);
  const end = await pollLoop(config, signals());
  if (end === "reload") throw new Error("unexpected reload");
  return end;
}
const calls = () => (existsSync(join(work, "calls")) ? readFileSync(join(work, "calls"), "utf8").trim().split("\n") : []);
const local = (name: string, value: unknown) => writeFileSync(join(work, "local", name), JSON.stringify(value), { mode: 0o644 });

describe("running the command on change", () => {
  test("changed metadata runs the command, unchanged metadata does not", async () => {
    local("a", { v: 1 });
    expect(await poll("local")).toBe(0);
    expect(await poll("local")).toBe(0);
    expect(calls()).toEqual([`${work}/cache/a.json`]);
    local("a", { v: 2 });
    await poll("local");
    expect(calls().length).toBe(2);
    writeFileSync(join(work, "local", "a"), '{"v": 2.0}', { mode: 0o644 }); // Python equality: 2 == 2.0, no change
    await poll("local");
    expect(calls().length).toBe(2);
    await poll("local", "--force");
    expect(calls().length).toBe(3);
  });

  test("a failing command leaves the cache uncommitted, so the next poll runs it again", async () => {
    local("a", { v: 1 });
    writeFileSync(join(work, "status"), "3");
    expect(await poll("local")).toBe(3);
    expect(existsSync(join(work, "cache/a.json.last"))).toBe(false);
    writeFileSync(join(work, "status"), "0");
    expect(await poll("local")).toBe(0);
    expect(existsSync(join(work, "cache/a.json.last"))).toBe(true);
    await poll("local");
    expect(calls().length).toBe(2);
  });

  test("OS_CONFIG_FILES lists every output in precedence order, deployments after their source", async () => {
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: () =>
        Response.json({
          k: 1,
          deployments: [
            { name: "d-oac", group: "os-apply-config", config: { x: 1 } },
            { name: "d-script", group: "script", config: "#!/bin/sh" },
            { name: "d-default", config: { y: 2 } },
          ],
        }),
    });
    servers.push(server);
    local("z", {});
    local("a", {});
    await poll("request,local", "--request-metadata-url", `http://127.0.0.1:${server.port}/md`);
    const files = calls()[0]!.split(":").map((p) => p.slice(`${work}/cache/`.length));
    expect(files).toEqual(["request.json", "d-oac.json", "d-default.json", "a.json", "z.json"]);
    expect(readFileSync(join(work, "cache/os_config_files.json"), "utf8")).toBe(
      JSON.stringify(files.map((f) => `${work}/cache/${f}`)).replaceAll('","', '", "'),
    );
  });
});

describe("the cache, as os-collect-config writes it", () => {
  test("NAME.json (Python json indent=1), .orig once, .last on commit, os_config_files.json, a backup copy", async () => {
    writeFileSync(join(work, "local", "m"), '{"b": [1, 2.0, "é"], "a": {}}', { mode: 0o644 });
    await poll("local");
    // json.dumps(json.loads(...), indent=1) in Python 3.11:
    const expected = '{\n "b": [\n  1,\n  2.0,\n  "\\u00e9"\n ],\n "a": {}\n}';
    expect(readFileSync(join(work, "cache/m.json"), "utf8")).toBe(expected);
    expect(readFileSync(join(work, "cache/m.json.orig"), "utf8")).toBe(expected);
    expect(readFileSync(join(work, "cache/m.json.last"), "utf8")).toBe(expected);
    expect(readdirSync(join(work, "backup")).sort()).toEqual(["m.json", "m.json.orig", "os_config_files.json"]);
    writeFileSync(join(work, "local", "m"), '{"b": 3}', { mode: 0o644 });
    await poll("local");
    expect(readFileSync(join(work, "cache/m.json.orig"), "utf8")).toBe(expected);
    expect(readFileSync(join(work, "cache/m.json.last"), "utf8")).toBe('{\n "b": 3\n}');
    // The backup is taken before the command runs: it holds the previous commit.
    expect(readFileSync(join(work, "backup/m.json.last"), "utf8")).toBe(expected);
  });
});

describe("sources that fail", () => {
  test("a collector that times out does not lose the others' data, and keeps its own last data", async () => {
    let slow = false;
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async () => {
        if (slow) await Bun.sleep(3000);
        return Response.json({ from: "request" });
      },
    });
    servers.push(server);
    const url = `http://127.0.0.1:${server.port}/md`;
    local("a", { v: 1 });
    await poll("request", "local", "--request-metadata-url", url, "--request-timeout", "0.5");
    slow = true;
    local("a", { v: 2 });
    const t0 = performance.now();
    await poll("request", "local", "--request-metadata-url", url, "--request-timeout", "0.5");
    expect(performance.now() - t0).toBeLessThan(2500);
    expect(calls()).toEqual([`${work}/cache/request.json:${work}/cache/a.json`, `${work}/cache/request.json:${work}/cache/a.json`]);
    expect(parseJson(readFileSync(join(work, "cache/a.json"), "utf8"))).toEqual(new Map([["v", 2n]]));
  });

  test("a source that never answered is left out; the others still run the command", async () => {
    local("a", { v: 1 });
    await poll("request", "local", "--request-metadata-url", "http://127.0.0.1:9/unreachable");
    expect(calls()).toEqual([`${work}/cache/a.json`]);
  });
});

describe("collector lists", () => {
  test.each([
    [["local"], ["local"]],
    [["heat,local"], ["heat", "local"]],
    [['["heat", "local"]'], ["heat", "local"]],
    [["heat", "local"], ["heat", "local"]],
    [[], ["heat_local", "config-drive", "ec2", "heat", "request", "local"]],
  ])("%j", (positional, expected) => {
    expect(loadConfig(["--config-file", "/dev/null", ...positional]).settings.collectors).toEqual(expected);
  });

  test("from the config file, one line each or comma-separated", () => {
    const file = join(work, "occ.conf");
    writeFileSync(file, "[DEFAULT]\ncollectors = config-drive\ncollectors = heat, local\npolling_interval = 5\ncommand = os-refresh-config\n\n[heat]\nmetadata_url = http://x:1\nnode = n1\n");
    const c = loadConfig(["--config-file", file]);
    expect(c.settings.collectors).toEqual(["config-drive", "heat", "local"]);
    expect(c.settings.polling_interval).toBe(5);
    expect(c.settings.command).toBe("os-refresh-config");
    expect(c.groups.get("heat")).toEqual({ metadata_url: ["http://x:1"], node: ["n1"] });
  });

  test("unknown collectors are named, with the valid ones", () => {
    expect(() => loadConfig(["--config-file", "/dev/null", "local,cfn"])).toThrow(/Unknown collectors 'cfn'. Valid collectors are: heat_local, config-drive/);
  });
});

describe("first boot: collector settings from the collected data", () => {
  function metadataService(tag: string) {
    const requests: string[] = [];
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (req) => {
        requests.push(`${new URL(req.url).pathname} ${req.headers.get("authorization")}`);
        const ooo = { version: 1, node: "web-0", role: "web", serial: 1, image: { name: "web", digest: `sha256:${"1".repeat(64)}` }, signal_url: "http://127.0.0.1:9/x" };
        return Response.json({ served_by: tag, ooo });
      },
    });
    servers.push(server);
    return { url: `http://127.0.0.1:${server.port}`, requests };
  }

  test("a listed collector the config leaves unconfigured is configured from os-collect-config and polled before the one command run", async () => {
    const service = metadataService("drive");
    local("drive", { "os-collect-config": { heat: { metadata_url: service.url, node: "web-0", token: "node-token-1234", timeout: 5, unknown_key: "x" } } });
    expect(await poll("local", "heat")).toBe(0);
    expect(calls()).toEqual([`${work}/cache/drive.json:${work}/cache/heat.json`]);
    expect(service.requests).toEqual(["/v1/nodes/web-0/metadata Bearer node-token-1234"]);
    expect(readFileSync(join(work, "cache/heat.json"), "utf8")).toContain('"served_by": "drive"');
  });

  test("settings from the config file or the command line win over collected ones", async () => {
    const collected = metadataService("drive");
    const configured = metadataService("flag");
    local("drive", { "os-collect-config": { heat: { metadata_url: collected.url, node: "web-0" } } });
    expect(await poll("local", "heat", "--heat-metadata-url", configured.url, "--heat-node", "web-0")).toBe(0);
    expect(collected.requests).toEqual([]);
    expect(configured.requests.length).toBe(1);
    expect(calls().length).toBe(1);
  });

  test("a collector that is not listed is not configured from the data", async () => {
    const service = metadataService("drive");
    local("drive", { "os-collect-config": { heat: { metadata_url: service.url, node: "web-0" } } });
    expect(await poll("local")).toBe(0);
    expect(service.requests).toEqual([]);
    expect(calls()).toEqual([`${work}/cache/drive.json`]);
  });
});

describe("printing", () => {
  test("without a command, the collected data is printed as one JSON object and nothing is stored", async () => {
    writeFileSync(join(work, "local", "a"), '{"v": 1.0}', { mode: 0o644 });
    const config = loadConfig(["--config-file", "/dev/null", "--cachedir", join(work, "cache"), "--local-path", join(work, "local"), "local"]);
    const chunks: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => (chunks.push(String(s)), true)) as typeof process.stdout.write;
    try {
      expect(await pollLoop(config, signals())).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    expect(chunks.join("")).toBe('{\n "a": {\n  "v": 1.0\n }\n}\n');
    expect(existsSync(join(work, "cache"))).toBe(false);
  });
});

describe("the polling loop", () => {
  test("pauses start at min_polling_interval and double up to polling_interval", () => {
    const pauses = [1];
    for (let i = 0; i < 6; i++) pauses.push(nextSleep(pauses.at(-1)!, 30));
    expect(pauses).toEqual([1, 2, 4, 8, 16, 30, 30]);
  });

  test("SIGHUP (or changed config files) ends the loop with a reload; stop ends it", async () => {
    local("a", { v: 1 });
    const config = loadConfig([
      "--config-file", "/dev/null", "--cachedir", join(work, "cache"), "--backup-cachedir", join(work, "backup"),
      "--local-path", join(work, "local"), "--polling-interval", "60", "--min-polling-interval", "60",
      "-c", `echo run >> ${work}/calls`, "local",
    ]);
    const s = signals();
    const ended = pollLoop(config, s);
    while (calls().length === 0) await Bun.sleep(10);
    s.hup.pending = true;
    s.hup.wake.abort();
    expect(await ended).toBe("reload");

    const stopper = new AbortController();
    const again = pollLoop(config, { ...signals(), stop: stopper.signal });
    await Bun.sleep(100);
    stopper.abort();
    expect(await again).toBe(0);
  });
});
