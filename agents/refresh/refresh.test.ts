import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { CompletionSignal } from "../../wire/signal.ts";
import { LockHeld } from "../errors.ts";
import { refreshMain } from "./cli.ts";
import { Lock } from "./lock.ts";
import { refresh } from "./refresh.ts";
import { listParts } from "./run-parts.ts";

const MAIN = resolve(import.meta.dir, "../main.ts");
let base: string;
let work: string;
const savedEnv = { ...process.env };
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "orc-"));
  base = join(work, "base");
  mkdirSync(base);
});
afterEach(() => {
  rmSync(work, { recursive: true, force: true });
  for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
  Object.assign(process.env, savedEnv);
});
const servers: { stop(force?: boolean): void }[] = [];
afterAll(() => servers.forEach((s) => s.stop(true)));

/** A script in base/PHASE/NAME that appends its name to `ran` (and does `body`). */
function script(phaseDir: string, name: string, body = "", mode = 0o755) {
  mkdirSync(join(base, phaseDir), { recursive: true });
  const path = join(base, phaseDir, name);
  writeFileSync(path, `#!/bin/sh\necho "${phaseDir}/${name}" >> ${work}/ran\n${body}\n`);
  chmodSync(path, mode);
}
const ran = () => (existsSync(join(work, "ran")) ? readFileSync(join(work, "ran"), "utf8").trim().split("\n") : []);

describe("phases and scripts", () => {
  test("phases in order, scripts in dib-run-parts order, only executable names of [0-9A-Za-z_-]", async () => {
    script("migration.d", "10-migrate");
    script("post-configure.d", "10-post");
    script("configure.d", "10-b");
    script("configure.d", "2-a");
    script("configure.d", "20-skipped.sh");
    script("configure.d", "30-not-executable", "", 0o644);
    script("pre-configure.d", "99-pre");
    script("unknown.d", "10-never");
    const outcome = await refresh(base);
    expect(outcome.ok).toBe(true);
    expect(ran()).toEqual(["pre-configure.d/99-pre", "configure.d/2-a", "configure.d/10-b", "post-configure.d/10-post", "migration.d/10-migrate"]);
    expect(outcome.scripts.map((s) => s.id)).toEqual(ran());
    for (const s of outcome.scripts) expect(s.seconds).toBeGreaterThan(0);
  });

  test("environment.d is sourced for every phase; only exported variables reach the scripts", async () => {
    mkdirSync(join(base, "environment.d"));
    writeFileSync(join(base, "environment.d/10-vars"), "export EXPORTED=yes\nPLAIN=no\n");
    script("configure.d", "10-env", `echo "$EXPORTED/\${PLAIN:-unset}" > ${work}/env`);
    expect((await refresh(base)).ok).toBe(true);
    expect(readFileSync(join(work, "env"), "utf8")).toBe("yes/unset\n");
  });

  test("a failing script stops the run, is named, keeps its output tail, and error.d runs", async () => {
    script("pre-configure.d", "10-ok");
    script("configure.d", "10-ok");
    script("configure.d", "20-fails", "echo first line\necho to stderr >&2\necho last line\nexit 4");
    script("configure.d", "30-never");
    script("post-configure.d", "10-never");
    script("error.d", "10-handler");
    const outcome = await refresh(base);
    expect(outcome.ok).toBe(false);
    expect(outcome.failed!.phase).toBe("configure");
    expect(outcome.failed!.script.id).toBe("configure.d/20-fails");
    expect(outcome.failed!.script.status).toBe(4);
    // stdout and stderr are two pipes: lines of one keep their order, the two interleave as they arrive.
    const tail = outcome.failed!.script.tail;
    expect([...tail].sort()).toEqual(["first line", "last line", "to stderr"]);
    expect(tail.indexOf("first line")).toBeLessThan(tail.indexOf("last line"));
    expect(ran()).toEqual(["pre-configure.d/10-ok", "configure.d/10-ok", "configure.d/20-fails", "error.d/10-handler"]);
  });

  test("--timeout kills the scripts and everything they started", async () => {
    script("configure.d", "10-hangs", `sleep 30 & echo $! > ${work}/child; wait`);
    script("configure.d", "20-never");
    const t0 = performance.now();
    const outcome = await refresh(base, { timeoutSeconds: 1 });
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(outcome.ok).toBe(false);
    expect(outcome.timedOut).toBe(true);
    expect(outcome.failed!.script.status).toBe(137);
    const child = Number(readFileSync(join(work, "child"), "utf8"));
    expect(existsSync(`/proc/${child}`) && !readFileSync(`/proc/${child}/stat`, "utf8").includes(") Z ")).toBe(false);
    expect(ran()).toEqual(["configure.d/10-hangs"]);
  });

  test("RUN_PARTS_REGEX widens the names that run", () => {
    script("configure.d", "10-a.sh");
    expect(listParts(join(base, "configure.d"), { RUN_PARTS_REGEX: "^[0-9a-z.-]+$" })).toEqual(["10-a.sh"]);
    expect(listParts(join(base, "configure.d"), {})).toEqual([]);
  });
});

describe("the lock", () => {
  test("a second holder is refused at once with exit code 11", async () => {
    const lockfile = join(work, "lock");
    const first = Lock.acquire(lockfile);
    expect(() => Lock.acquire(lockfile)).toThrow(LockHeld);
    first.release();
    Lock.acquire(lockfile).release();
    expect(readFileSync(lockfile, "utf8")).toBe("");
  });

  test("two os-refresh-config processes: the second exits 11 while the first runs", async () => {
    script("configure.d", "10-slow", `touch ${work}/started; sleep 2`);
    const env = { ...process.env, OS_REFRESH_CONFIG_BASE_DIR: base };
    const args = ["bun", MAIN, "os-refresh-config", "--lockfile", join(work, "lock"), "--no-signal"];
    const first = Bun.spawn(args, { env, stdout: "ignore", stderr: "ignore" });
    while (!existsSync(join(work, "started"))) await Bun.sleep(20);
    const second = Bun.spawnSync(args, { env });
    expect(second.exitCode).toBe(11);
    expect(second.stderr.toString()).toContain(`Could not lock ${join(work, "lock")}`);
    expect(await first.exited).toBe(0);
  });
});

describe("the completion signal", () => {
  function signalServer(responses: number[] = []) {
    const received: { auth: string | null; body: CompletionSignal }[] = [];
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        const body = CompletionSignal.parse(await req.json());
        received.push({ auth: req.headers.get("authorization"), body });
        return new Response(null, { status: responses.shift() ?? 204 });
      },
    });
    servers.push(server);
    return { url: `http://127.0.0.1:${server.port}/v1/nodes/web-0/signal`, received };
  }

  function metadata(signalUrl: string) {
    const file = join(work, "heat.json");
    writeFileSync(
      file,
      JSON.stringify({
        ooo: { version: 1, node: "web-0", role: "web", serial: 7, image: { name: "web", digest: `sha256:${"1".repeat(64)}` }, signal_url: signalUrl },
      }),
    );
    process.env.OS_CONFIG_FILES = file;
    process.env.OS_REFRESH_CONFIG_BASE_DIR = base;
    process.env.OOO_SIGNAL_TOKEN = "tok";
  }

  test("success: the signal goes to ooo.signal_url with the token, timings and the metadata serial", async () => {
    const { url, received } = signalServer();
    metadata(url);
    script("configure.d", "10-a", 'echo hello; echo "token=${OOO_SIGNAL_TOKEN:-hidden}"');
    expect(await refreshMain(["--lockfile", join(work, "lock")])).toBe(0);
    expect(received.length).toBe(1);
    const { auth, body } = received[0]!;
    expect(auth).toBe("Bearer tok");
    expect(body.status).toBe("SUCCESS");
    expect(body.id).toBe("web-0:7");
    expect(body.metadata_serial).toBe(7);
    expect(body.data.deploy_status_code).toBe(0);
    expect(body.data.deploy_stdout).toBe("hello\ntoken=hidden\n"); // the token is not the scripts' business
    expect(Object.keys(body.data.timings!)).toEqual(["configure.d/10-a"]);
  });

  test("failure: FAILURE with the failing script and its output tail; exit 1", async () => {
    const { url, received } = signalServer();
    metadata(url);
    script("configure.d", "10-a");
    script("configure.d", "20-b", "echo it broke >&2; exit 2");
    expect(await refreshMain(["--lockfile", join(work, "lock")])).toBe(1);
    const body = received[0]!.body;
    expect(body.status).toBe("FAILURE");
    expect(body.data).toMatchObject({ deploy_status_code: 2, failed_script: "configure.d/20-b", output_tail: "it broke", deploy_stderr: "it broke\n" });
  });

  test("a busy service is retried; a refusal is an error (the collector will run us again)", async () => {
    const busy = signalServer([503, 503]);
    metadata(busy.url);
    script("configure.d", "10-a");
    expect(await refreshMain(["--lockfile", join(work, "lock")])).toBe(0);
    expect(busy.received.length).toBe(3);

    const refusing = signalServer([403]);
    metadata(refusing.url);
    await expect(refreshMain(["--lockfile", join(work, "lock")])).rejects.toThrow(/could not send the completion signal/);
  });
});
