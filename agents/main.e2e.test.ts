import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { requireCommand } from "../test/support/require.ts";
import { CompletionSignal } from "../wire/signal.ts";

/**
 * The node agents end to end on this host, as the image runs them: the
 * compiled ooo-agent (built once here, called by its three names) polls a
 * metadata service on 127.0.0.1 with the node's token, os-refresh-config
 * runs, its configure.d renders a file with os-apply-config and runs a
 * script that uses it, and the completion signal arrives at the service.
 */
const REPO = resolve(import.meta.dir, "..");
let work: string;
let bin: string;
let server: ReturnType<typeof Bun.serve>;
const signals: CompletionSignal[] = [];
const metadataRequests: { auth: string | null; inm: string | null }[] = [];
let metadata: Record<string, unknown>;
let etag = 0;

function nodeMetadata(serial: number, extra: Record<string, unknown>) {
  return {
    ooo: {
      version: 1,
      node: "web-0",
      role: "web",
      serial,
      image: { name: "web", digest: `sha256:${"c".repeat(64)}` },
      signal_url: `http://127.0.0.1:${server.port}/v1/nodes/web-0/signal`,
    },
    ...extra,
  };
}

beforeAll(async () => {
  requireCommand("bun");
  work = mkdtempSync(join(tmpdir(), "agents-e2e-"));
  bin = join(work, "bin");
  mkdirSync(bin);
  const build = Bun.spawnSync(["bun", "build", "--compile", "--minify", "--bytecode", "agents/main.ts", "--outfile", join(bin, "ooo-agent")], { cwd: REPO });
  if (build.exitCode !== 0) throw new Error(`bun build --compile failed:\n${build.stderr}`);
  for (const name of ["os-collect-config", "os-apply-config", "os-refresh-config"]) symlinkSync("ooo-agent", join(bin, name));

  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      if (req.headers.get("authorization") !== "Bearer node-secret") return new Response("who are you?", { status: 401 });
      if (req.method === "GET" && url.pathname === "/v1/nodes/web-0/metadata") {
        metadataRequests.push({ auth: req.headers.get("authorization"), inm: req.headers.get("if-none-match") });
        const tag = `"${etag}"`;
        if (req.headers.get("if-none-match") === tag) return new Response(null, { status: 304 });
        return Response.json(metadata, { headers: { etag: tag } });
      }
      if (req.method === "POST" && url.pathname === "/v1/nodes/web-0/signal") {
        signals.push(CompletionSignal.parse(await req.json()));
        return new Response(null, { status: 204 });
      }
      return new Response("not found", { status: 404 });
    },
  });

  // The node's files, as the elements lay them out (rooted in `work`).
  const root = join(work, "root");
  const templates = join(work, "templates");
  const base = join(work, "refresh");
  mkdirSync(join(templates, "etc"), { recursive: true });
  writeFileSync(join(templates, "etc/motd"), "{{motd}}\nnode {{ooo.node}} serial {{ooo.serial}}\n{{#services}}\nservice {{name}} on port {{port}}\n{{/services}}\n");
  writeFileSync(join(templates, "etc/motd.oac"), "mode: 0640\n");
  mkdirSync(join(base, "configure.d"), { recursive: true });
  writeFileSync(join(base, "configure.d/20-os-apply-config"), `#!/bin/sh\nset -eu\nexec os-apply-config -t ${templates} -o ${root}\n`);
  writeFileSync(
    join(base, "configure.d/50-use-the-file"),
    `#!/bin/sh\nset -eu\necho "configure.d saw: $(head -n 1 ${root}/etc/motd)"\nwc -l < ${root}/etc/motd > ${work}/lines\nif grep -q broken ${root}/etc/motd; then echo "the motd is broken" >&2; exit 7; fi\n`,
  );
  chmodSync(join(base, "configure.d/20-os-apply-config"), 0o755);
  chmodSync(join(base, "configure.d/50-use-the-file"), 0o755);
  writeFileSync(join(work, "token"), "node-secret\n");
  writeFileSync(
    join(work, "os-collect-config.conf"),
    [
      "[DEFAULT]",
      `command = os-refresh-config --lockfile ${work}/orc.lock`,
      `cachedir = ${work}/cache`,
      `backup_cachedir = ${work}/cache-backup`,
      "collectors = heat",
      "min_polling_interval = 0.2",
      "polling_interval = 0.4",
      "",
      "[heat]",
      `metadata_url = http://127.0.0.1:${server.port}`,
      "node = web-0",
      `token_file = ${work}/token`,
      "timeout = 5",
      "",
    ].join("\n"),
  );
});

afterAll(() => {
  server?.stop(true);
  if (work) rmSync(work, { recursive: true, force: true });
});

function env() {
  return {
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
    OS_REFRESH_CONFIG_BASE_DIR: join(work, "refresh"),
    // The signal's token comes from os-collect-config's [heat] token_file, through the command's environment.
    OOO_SIGNAL_TOKEN: undefined,
  };
}

async function collectOnce() {
  const child = Bun.spawn([join(bin, "os-collect-config"), "--config-file", join(work, "os-collect-config.conf"), "--one-time"], {
    env: env(),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

describe("ooo-agent end to end on the host", () => {
  test("collect → refresh → apply → signal, then nothing while the metadata stays the same", async () => {
    metadata = nodeMetadata(1, { motd: "welcome", services: [{ name: "web", port: 80 }, { name: "api", port: 8080 }] });
    const run = await collectOnce();
    expect(run.code, run.stderr).toBe(0);
    expect(readFileSync(join(work, "root/etc/motd"), "utf8")).toBe("welcome\nnode web-0 serial 1\nservice web on port 80\nservice api on port 8080\n");
    expect(statSync(join(work, "root/etc/motd")).mode & 0o777).toBe(0o640);
    expect(readFileSync(join(work, "lines"), "utf8").trim()).toBe("4");
    expect(run.stdout).toContain("configure.d saw: welcome");
    expect(signals.length).toBe(1);
    expect(signals[0]).toMatchObject({ status: "SUCCESS", id: "web-0:1", metadata_serial: 1, data: { deploy_status_code: 0 } });
    expect(Object.keys(signals[0]!.data.timings!)).toEqual(["configure.d/20-os-apply-config", "configure.d/50-use-the-file"]);
    expect(signals[0]!.data.deploy_stdout).toContain("configure.d saw: welcome");

    const again = await collectOnce();
    expect(again.code).toBe(0);
    expect(signals.length).toBe(1);
    expect(metadataRequests.at(-1)).toEqual({ auth: "Bearer node-secret", inm: null });
  });

  test("a failing configure.d script: FAILURE signal naming it with its output, cache not committed, retried", async () => {
    etag++;
    metadata = nodeMetadata(2, { motd: "broken", services: [] });
    const run = await collectOnce();
    expect(run.code).toBe(1);
    const failure = signals.at(-1)!;
    expect(failure).toMatchObject({
      status: "FAILURE",
      id: "web-0:2",
      metadata_serial: 2,
      data: { deploy_status_code: 7, failed_script: "configure.d/50-use-the-file" },
    });
    expect(failure.data.output_tail).toContain("the motd is broken");
    const cached = readFileSync(join(work, "cache/heat.json.last"), "utf8");
    expect(cached).toContain('"serial": 1');
    // Not committed: the next poll runs the command again, although nothing changed.
    const retry = await collectOnce();
    expect(retry.code).toBe(1);
    expect(signals.length).toBe(3);
  });

  test("the daemon: polls until the metadata changes, applies it and signals", async () => {
    etag++;
    metadata = nodeMetadata(3, { motd: "fixed", services: [] });
    const daemon = Bun.spawn([join(bin, "os-collect-config"), "--config-file", join(work, "os-collect-config.conf")], {
      env: env(),
      stdout: "ignore",
      stderr: "ignore",
    });
    try {
      const waitFor = async (what: () => boolean) => {
        const until = Date.now() + 15_000;
        while (!what()) {
          if (Date.now() > until) throw new Error("timed out waiting for the daemon");
          await Bun.sleep(50);
        }
      };
      await waitFor(() => signals.at(-1)?.metadata_serial === 3);
      expect(signals.at(-1)!.status).toBe("SUCCESS");
      expect(readFileSync(join(work, "root/etc/motd"), "utf8")).toStartWith("fixed\n");
      const polls = metadataRequests.length;
      await waitFor(() => metadataRequests.length >= polls + 2); // still polling, nothing to do
      expect(signals.at(-1)!.metadata_serial).toBe(3);
      // Unchanged polls are conditional: the service answers 304 Not Modified.
      expect(metadataRequests.at(-1)).toEqual({ auth: "Bearer node-secret", inm: `"${etag}"` });

      etag++;
      metadata = nodeMetadata(4, { motd: "changed while running", services: [] });
      await waitFor(() => signals.at(-1)?.metadata_serial === 4);
      expect(readFileSync(join(work, "root/etc/motd"), "utf8")).toStartWith("changed while running\n");
    } finally {
      daemon.kill("SIGTERM");
      await daemon.exited;
    }
    expect(existsSync(join(work, "cache/heat.json.last"))).toBe(true);
  });
});
