import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { asHooksSeeThem } from "../support/hook-paths.ts";
import { readProgress } from "../support/progress.ts";
import { requireCommand, requireRoot } from "../support/require.ts";

/**
 * The builder end to end, as root, with real builds: the environment hooks
 * get, failing and killed builds and what they leave behind (nothing), bad
 * input, byte-identical outputs, and a DIB element from Debian's package
 * running unchanged on debian-minimal.
 *
 * Fast builds use busybox-base and a private image cache per run. The Debian
 * builds use the default cache (its base root is shared with every other
 * test and the README's build) except where a cold build is the point.
 */
const REPO = resolve(import.meta.dir, "../..");
const CLI = join(REPO, "cli/ooo.ts");
const FIXTURES = join(REPO, "fixtures/elements");
const DIB_ELEMENTS = "/usr/lib/python3/dist-packages/diskimage_builder/elements";
const DIB_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

let scratch: string;
let cache: string; // private image cache of the busybox builds
const launched = new Set<ChildProcess>();

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
}

interface BuildOptions {
  env?: Record<string, string>;
  /** Called with the accumulated stderr whenever more arrives. */
  onStderr?: (stderr: string, child: ChildProcess) => void;
  imageCache?: string | null;
  /** Start the launcher in its own process group (as a shell job), so a test can signal the whole group. */
  group?: boolean;
}

/** `ooo build-image ARGS` as a user runs it (the launcher), with our fixtures on the path. */
function build(args: string[], options: BuildOptions = {}): Promise<Run> {
  const cacheArgs = options.imageCache === null ? [] : ["--image-cache", options.imageCache ?? cache];
  const child = spawn(process.execPath, [CLI, "build-image", "--elements-path", FIXTURES, ...cacheArgs, ...args], {
    cwd: scratch,
    env: { ...process.env, NO_COLOR: "1", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.group ?? false,
  });
  launched.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => {
    stderr += d;
    options.onStderr?.(stderr, child);
  });
  return new Promise((resolveRun) => {
    child.on("close", (code, signal) => {
      launched.delete(child);
      resolveRun({ code, signal, stdout, stderr, pid: child.pid! });
    });
  });
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
const marker = (what: string) => `ooo-test-${what}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;

/** Processes whose command line contains `text`. */
function processesWith(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmd.includes(text)) found.push(`${pid}: ${cmd}`);
    } catch {}
  }
  return found;
}

async function eventually(check: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await Bun.sleep(50);
}

/** Mounts (in this, the host's, namespace) whose mount point or source is under `dir`. */
function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.includes(dir));
}

/** Nothing of a build left: no mount, no process carrying `mark`, no output or partial file, empty work folder. */
async function expectNothingLeft(outDir: string, mark?: string, imageCache = cache) {
  if (mark) {
    await eventually(() => processesWith(mark).length === 0);
    expect(processesWith(mark)).toEqual([]);
  }
  expect(mountsUnder(scratch)).toEqual([]);
  expect(mountsUnder(imageCache)).toEqual([]);
  const outputs = existsSync(outDir) ? readdirSync(outDir).filter((f) => !f.endsWith(".log")) : [];
  expect(outputs).toEqual([]);
  const work = join(imageCache, "ooo-work");
  expect(existsSync(work) ? readdirSync(work) : []).toEqual([]);
}

/** A file from a tar output. */
function fromTar(tar: string, path: string): string {
  return execFileSync("tar", ["-xOf", tar, path]).toString();
}

function parseProbe(text: string) {
  const vars: Record<string, string | undefined> = {};
  const elements: string[] = [];
  const flags: string[] = [];
  for (const line of text.split("\n").filter(Boolean)) {
    const eq = line.indexOf("=");
    if (eq < 0) vars[line] = undefined;
    else {
      const [k, v] = [line.slice(0, eq), line.slice(eq + 1)];
      if (k === "element") elements.push(v);
      else if (k === "mount" || k === "hooks") flags.push(`${k}=${v}`);
      else vars[k] = v;
    }
  }
  return { vars, elements: elements.sort(), flags };
}

beforeAll(() => {
  requireRoot();
  requireCommand("unshare", "setpriv", "chroot", "tar", "mmdebstrap", "busybox", "sudo");
  scratch = mkdtempSync("/var/tmp/ooo-itest-");
  cache = join(scratch, "cache");
  mkdirSync(cache);
});

afterAll(() => {
  for (const child of launched) child.kill("SIGKILL");
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** What a CI job's environment holds and hooks must never see. */
const SECRETS: Record<string, string> = {
  OOO_STORE_TOKEN: "store-token-value-1234",
  OOO_SWIFT_KEY: "swift-key-value-5678",
  DEPLOY_API_KEY: "api-key-value-9abc",
  REGISTRY_PASSWORD: "registry-password-def0",
};

describe("hook environment (busybox-base + env-probe)", () => {
  const HOST = ["root.d", "extra-data.d", "post-root.d", "block-device.d", "pre-finalise.d", "cleanup.d"];
  const TARGET = ["pre-install.d", "install.d", "post-install.d", "finalise.d"];
  let probeDir: string;
  let out: string;
  let run: Run;

  beforeAll(async () => {
    probeDir = join(scratch, "probe");
    mkdirSync(probeDir);
    out = join(scratch, "env-out", "probe");
    run = await build(["-o", out, "--env-keep", "KEPT_TOKEN", "--progress-file", join(scratch, "probe-progress.jsonl"), "busybox-base", "env-probe"], {
      env: { DIB_PROBE_DIR: probeDir, DIB_PROBE_SETTING: "from the caller", TMPDIR: "/var/tmp", ...SECRETS, KEPT_TOKEN: "kept on purpose" },
    });
    if (run.code !== 0) throw new Error(`the probe build failed:\n${run.stderr}`);
  }, 60_000);

  function host(phase: string) {
    return parseProbe(readFileSync(join(probeDir, `${phase}.env`), "utf8"));
  }
  function target(phase: string) {
    return parseProbe(fromTar(`${out}.tar`, `./var/lib/env-probe/${phase}.env`));
  }

  test("every host phase sees DIB's variables; TARGET_ROOT only root.d and cleanup.d, as under disk-image-create", () => {
    for (const phase of HOST) {
      const { vars, elements } = host(phase);
      const targetRoot = phase === "root.d" || phase === "cleanup.d" ? vars.TMP_MOUNT_PATH : undefined;
      expect({ phase, root: vars.TARGET_ROOT }).toEqual({ phase, root: targetRoot });
      expect(vars.TMP_MOUNT_PATH).toMatch(/\/root$/);
      expect(vars.TMP_HOOKS_PATH).toMatch(/\/hooks$/);
      expect(vars.self).toBe(`${vars.TMP_HOOKS_PATH}/${phase}/${phase === "root.d" ? "90" : "50"}-env-probe`);
      expect(vars.ELEMENTS_PATH!.split(":")).toEqual(asHooksSeeThem([FIXTURES, join(REPO, "elements")]));
      expect(vars.IMAGE_NAME).toBe(out); // DIB: -o as given, so hooks can write $IMAGE_NAME.* beside the image
      expect(vars.ARCH).toBe(process.arch === "x64" ? "amd64" : process.arch);
      expect(vars.LC_ALL).toBe("C");
      expect(vars.DIB_PROBE_SETTING).toBe("from the caller");
      expect(vars.DIB_IMAGE_CACHE).toBe(cache);
      expect(vars.TMPDIR).toBe("/var/tmp"); // only the chroot drops it (DIB)
      expect(vars.PROBE_ENVD).toBe("sourced");
      expect(vars.PROBE_ORDER).toBe("[10][9]"); // byte order, as dib-run-parts sources them
      expect(elements).toEqual(["base", "busybox-base", "env-probe", "install-bin", "package-installs"]);
    }
  });

  test("every chroot phase runs inside the root with /proc, /sys, /dev, /dev/pts and a read-only hooks tree", () => {
    const root = host("root.d").vars.TMP_MOUNT_PATH;
    for (const phase of TARGET) {
      const { vars, elements, flags } = target(phase);
      expect({ phase, self: vars.self }).toEqual({ phase, self: `/tmp/in_target.d/${phase}/50-env-probe` });
      expect(flags).toEqual(["mount=proc", "mount=sys", "mount=dev", "mount=devpts", "hooks=read-only"]);
      expect(vars.PATH).toBe(DIB_PATH);
      expect(vars.HOME).toBe("/root");
      expect("TMPDIR" in vars && vars.TMPDIR === undefined).toBe(true);
      expect(vars.TMP_MOUNT_PATH).toBe(root); // host paths pass through, as under DIB's sudo -E
      expect(vars.TMP_HOOKS_PATH).toMatch(/\/hooks$/);
      expect(vars.ELEMENTS_PATH!.split(":")).toEqual(asHooksSeeThem([FIXTURES, join(REPO, "elements")]));
      expect(vars.IMAGE_NAME).toBe(out);
      expect(vars.ARCH).toBe(process.arch === "x64" ? "amd64" : process.arch);
      expect(vars.DIB_PROBE_SETTING).toBe("from the caller");
      expect(vars.PROBE_ENVD).toBe("sourced");
      expect(vars.PROBE_ORDER).toBe("[10][9]");
      expect(elements).toEqual(["base", "busybox-base", "env-probe", "install-bin", "package-installs"]);
    }
  });

  test("no hook sees ooo's secrets or secret-looking variables, unless kept with --env-keep; the log names them, never their values", () => {
    for (const phase of [...HOST, ...TARGET]) {
      const text = HOST.includes(phase) ? readFileSync(join(probeDir, `${phase}.environ`), "utf8") : fromTar(`${out}.tar`, `./var/lib/env-probe/${phase}.environ`);
      const names = text.split("\0").map((e) => e.slice(0, e.indexOf("=")));
      expect({ phase, leaked: Object.keys(SECRETS).filter((k) => names.includes(k) || text.includes(SECRETS[k]!)) }).toEqual({ phase, leaked: [] });
      expect({ phase, kept: text.includes("KEPT_TOKEN=kept on purpose") }).toEqual({ phase, kept: true });
    }
    const log = readFileSync(`${out}.log`, "utf8");
    expect(log).toContain("not passed to hooks");
    expect(log).toContain("OOO_STORE_TOKEN");
    for (const value of Object.values(SECRETS)) expect(log).not.toContain(value);
  });

  test("the build prints each hook, a summary and the tarball's sha256; --progress-file has the same steps as JSON lines", () => {
    expect(run.stderr).toContain("install.d/50-env-probe (env-probe)");
    const events = readProgress(join(scratch, "probe-progress.jsonl"));
    const ends = events.filter((e) => e.kind === "end").map((e) => e.step);
    expect(ends).toContain("install.d/50-env-probe (env-probe)");
    expect(ends.filter((s) => run.stderr.includes(`✓ ${s}`))).toEqual(ends); // the terminal showed every one
    // the tar output writes the tar and the list of its entries (the `tar-entries` artifact)
    const written = statSync(`${out}.tar`).size + statSync(`${out}.entries.json`).size;
    expect(events.filter((e) => e.kind === "end").find((e) => e.step === "write tar")?.bytes).toBe(written);
    expect(run.stderr).toContain(sha256(`${out}.tar`));
    expect(existsSync(`${out}.log`)).toBe(true);
  });
});

describe("a failing hook", () => {
  test("stops the build, names element, phase and file, and leaves nothing behind", async () => {
    const mark = marker("fail");
    const probe = join(scratch, "fail-probe");
    mkdirSync(probe);
    const outDir = join(scratch, "fail-out");
    const run = await build(["-o", join(outDir, "img"), "busybox-base", "fail-hook"], {
      env: { DIB_PROBE_MARKER: mark, DIB_PROBE_DIR: probe },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("error: hook install.d/50-fail-hook of element fail-hook failed (exit 3)");
    expect(run.stderr).toContain("fail-hook: failing on purpose"); // the hook's last output is quoted
    expect(run.stderr).not.toContain("internal error");
    expect(existsSync(join(probe, "after-fail-ran"))).toBe(false);
    await expectNothingLeft(outDir, mark);
  }, 60_000);

  test("--keep-failed keeps the work folder of a failed build and says where; no mount stays", async () => {
    const mark = marker("keep");
    const outDir = join(scratch, "keep-out");
    const run = await build(["-o", join(outDir, "img"), "--keep-failed", "busybox-base", "fail-hook"], {
      env: { DIB_PROBE_MARKER: mark, DIB_PROBE_DIR: scratch },
    });
    expect(run.code).toBe(1);
    const kept = join(cache, "ooo-work", `build-${run.pid}`);
    expect(run.stderr).toContain(`the work folder is kept for inspection: ${kept}`);
    expect(existsSync(join(kept, "root", "bin", "busybox"))).toBe(true);
    await eventually(() => processesWith(mark).length === 0);
    expect(processesWith(mark)).toEqual([]);
    expect(mountsUnder(scratch)).toEqual([]);
    rmSync(kept, { recursive: true, force: true });
  }, 60_000);
});

describe("a killed build leaves nothing behind", () => {
  async function killWhileSleeping(signal: NodeJS.Signals, extra: string[] = [], group = false) {
    const mark = marker(signal.toLowerCase());
    const outDir = join(scratch, `killed-${mark}`);
    let seenRunning: string[] = [];
    const run = await build(["-o", join(outDir, "img"), ...extra, "busybox-base", "sleep-hook"], {
      env: { DIB_PROBE_MARKER: mark },
      group,
      onStderr: (stderr, child) => {
        if (seenRunning.length || !stderr.includes(`${mark} sleeping`)) return;
        seenRunning = processesWith(mark);
        // A terminal's Ctrl-C reaches the whole foreground process group, hooks included.
        if (group) process.kill(-child.pid!, signal);
        else child.kill(signal);
      },
    });
    // The hook was really running (the leftover check can see it), then the build died.
    expect(seenRunning.length).toBeGreaterThan(0);
    return { run, mark, outDir };
  }

  test("SIGTERM while a chroot hook sleeps: exit 143, no mount, no process, no output", async () => {
    const { run, mark, outDir } = await killWhileSleeping("SIGTERM");
    expect(run.code).toBe(143);
    expect(run.stderr).toContain("build interrupted by SIGTERM");
    await expectNothingLeft(outDir, mark);
  }, 60_000);

  test("SIGINT (Ctrl-C) while a chroot hook sleeps: exit 130, nothing left", async () => {
    const { run, mark, outDir } = await killWhileSleeping("SIGINT");
    expect(run.code).toBe(130);
    await expectNothingLeft(outDir, mark);
  }, 60_000);

  test("Ctrl-C to the whole process group (launcher, build and hook alike): exit 130, nothing left", async () => {
    const { run, mark, outDir } = await killWhileSleeping("SIGINT", [], true);
    expect(run.code).toBe(130);
    await expectNothingLeft(outDir, mark);
  }, 60_000);

  test("SIGKILL while a chroot hook sleeps: no mount, no process, no output", async () => {
    const { run, mark, outDir } = await killWhileSleeping("SIGKILL");
    expect(run.signal).toBe("SIGKILL");
    await expectNothingLeft(outDir, mark);
  }, 60_000);

  test("--no-tmpfs and SIGTERM: the work folder on disk is removed too", async () => {
    const { run, mark, outDir } = await killWhileSleeping("SIGTERM", ["--no-tmpfs"]);
    expect(run.code).toBe(143);
    await expectNothingLeft(outDir, mark);
  }, 60_000);

  test("--no-tmpfs and SIGKILL: the next build removes the dead build's work folder", async () => {
    const { run, mark, outDir } = await killWhileSleeping("SIGKILL", ["--no-tmpfs"]);
    expect(run.signal).toBe("SIGKILL");
    await eventually(() => processesWith(mark).length === 0);
    expect(processesWith(mark)).toEqual([]);
    expect(mountsUnder(cache)).toEqual([]);
    expect(readdirSync(outDir).filter((f) => !f.endsWith(".log"))).toEqual([]);
    // Nobody was left to delete it: the next launcher does.
    expect(readdirSync(join(cache, "ooo-work"))).toEqual([`build-${run.pid}`]);
    const next = await build(["-o", join(scratch, "after-kill", "img"), "busybox-base"]);
    expect(next.code).toBe(0);
    expect(readdirSync(join(cache, "ooo-work"))).toEqual([]);
  }, 60_000);
});

describe("bad input: a clear error, a non-zero exit, nothing left behind", () => {
  // Mistakes in the choice of elements exit 2 (EXIT.usage: nothing was built); a hook that fails, 1.
  const cases: [string, string[], Record<string, string>, RegExp, number?][] = [
    [
      "a missing element in element-deps names who required it",
      ["broken-deps", "busybox-base"],
      {},
      /error: Element 'no-such-element' not found \(required by broken-deps\)/,
    ],
    ["an unknown element on the command line", ["busybox-base", "no-such-thing"], {}, /error: Element 'no-such-thing' not found \(requested on the command line\)/],
    [
      "a package-installs.yaml with a phase packages cannot use",
      ["bad-package-installs", "busybox-base"],
      {},
      /error: element bad-package-installs: package-installs\.yaml: .*phase: must be one of/,
    ],
    ["a package-installs.yaml that is not YAML", ["bad-yaml", "busybox-base"], {}, /error: element bad-yaml: package-installs\.yaml: not valid YAML/],
    [
      "the same hook in two elements",
      ["dup-hook-a", "dup-hook-b", "busybox-base"],
      {},
      /error: There is a duplicated hook in your elements: install\.d\/50-dup-hook is in both dup-hook-a and dup-hook-b/,
    ],
    [
      "an ELEMENTS_PATH entry that does not exist",
      ["busybox-base"],
      { ELEMENTS_PATH: "/nonexistent/ooo-elements" },
      /error: ELEMENTS_PATH entry '\/nonexistent\/ooo-elements' is not a directory/,
    ],
    ["no operating system element", ["fail-hook"], {}, /error: Please include an operating system element/],
    ["an operating system element whose root.d builds nothing", ["empty-os"], {}, /error: .*Failed to deploy the root element/, 1],
  ];
  for (const [name, elements, env, message, code = 2] of cases) {
    test(name, async () => {
      const outDir = join(scratch, `bad-${elements.join("-")}-${Object.keys(env).join("")}`);
      const run = await build(["-o", join(outDir, "img"), ...elements], { env });
      expect(run.code).toBe(code);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toContain("internal error");
      await expectNothingLeft(outDir);
    }, 30_000);
  }
});

/**
 * `bun SCRIPT ARGS` as nobody, from the checkout, whatever folder the
 * checkout is in: a clone under /root (0700) is out of nobody's reach, so
 * the command sees the same checkout bind-mounted on a fresh folder in /tmp,
 * in a mount namespace of its own that ends with it, and runs from there.
 */
function bunAsNobody(script: string, args: string[]) {
  const view = mkdtempSync("/tmp/ooo-checkout-");
  chmodSync(view, 0o755);
  const nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"];
  try {
    const bun = Bun.spawnSync([...nobody, process.execPath, "--version"], { stderr: "pipe" });
    if (bun.exitCode !== 0) throw new Error(`this test runs bun as nobody, who cannot run ${process.execPath}: ${bun.stderr}`);
    return Bun.spawnSync(
      [
        ...["unshare", "--mount", "--propagation", "private", "--"],
        ...["sh", "-c", 'mount --bind "$1" "$2" && cd "$2" && shift 2 && exec "$@"', "sh", REPO, view],
        ...nobody,
        process.execPath,
        join(view, script),
        ...args,
      ],
      { env: { ...process.env, HOME: "/nonexistent" }, stderr: "pipe" },
    );
  } finally {
    rmdirSync(view); // empty again: the bind mount ended with its namespace
  }
}

describe("not root", () => {
  test("an unprivileged user is told to use root, not given unshare's 'Operation not permitted'", () => {
    const r = bunAsNobody("cli/ooo.ts", ["build-image", "-o", "/tmp/ooo-never", "busybox-base"]);
    expect({ code: r.exitCode, stderr: r.stderr.toString() }).toMatchObject({ code: 4, stderr: expect.stringContaining("error: ooo build-image must run as root") });
    expect(existsSync("/tmp/ooo-never.tar")).toBe(false);
  });
});

describe("deterministic outputs", () => {
  test("busybox-base built twice: byte-identical tarballs", async () => {
    const a = join(scratch, "det", "a");
    const b = join(scratch, "det", "b");
    expect((await build(["-o", a, "busybox-base"])).code).toBe(0);
    expect((await build(["-o", b, "busybox-base", "--no-cache"])).code).toBe(0);
    expect(sha256(`${a}.tar`)).toBe(sha256(`${b}.tar`));
    // Built again at the same -o: an earlier build's own outputs are replaced without --force, as
    // disk-image-create does (README's `npm run build-image` is run again and again).
    const again = await build(["-o", a, "busybox-base"]);
    expect(again.code, again.stderr).toBe(0);
    expect(sha256(`${a}.tar`)).toBe(sha256(`${b}.tar`));
  }, 60_000);

  test(
    "debian-minimal built cold twice (--no-cache), and once from the cache: byte-identical tarballs",
    async () => {
      const dir = join(scratch, "det-debian");
      // The two cold builds run side by side: half the wall time on 2 cores, since
      // much of a cold build waits on the mirror.
      const [one, two] = await Promise.all([
        build(["-o", join(dir, "cold1"), "--no-cache", "debian-minimal"], { imageCache: null }),
        build(["-o", join(dir, "cold2"), "--no-cache", "debian-minimal"], { imageCache: null }),
      ]);
      expect({ code: one.code, tail: one.stderr.slice(-2000) }).toMatchObject({ code: 0 });
      expect({ code: two.code, tail: two.stderr.slice(-2000) }).toMatchObject({ code: 0 });
      const cached = await build(["-o", join(dir, "cached"), "debian-minimal"], { imageCache: null });
      expect(cached.code).toBe(0);
      const digest = sha256(join(dir, "cold1.tar"));
      expect(sha256(join(dir, "cold2.tar"))).toBe(digest);
      expect(sha256(join(dir, "cached.tar"))).toBe(digest);
    },
    240_000,
  );
});

describe("install types (DIB's install-types)", () => {
  const types: [string, Record<string, string>, string][] = [
    ["the default type, source", {}, "source"],
    ["DIB_INSTALLTYPE_<element> picks another folder", { DIB_INSTALLTYPE_types_demo: "package" }, "package"],
    ["DIB_DEFAULT_INSTALLTYPE for every element", { DIB_DEFAULT_INSTALLTYPE: "package" }, "package"],
  ];
  for (const [name, env, expected] of types) {
    test(`install.d/<element>-<type>-install hooks run: ${name}`, async () => {
      const out = join(scratch, "types-out", expected + Object.keys(env).join(""));
      const run = await build(["-o", out, "busybox-base", "types-demo"], { env });
      expect({ code: run.code, tail: run.stderr.slice(-2000) }).toMatchObject({ code: 0 });
      expect(fromTar(`${out}.tar`, "./etc/types-demo")).toBe(`${expected}\n`);
    }, 30_000);
  }

  test("with DIB's own install-types element, unchanged, as well", async () => {
    const elements = join(scratch, "dib-install-types");
    cpSync(join(DIB_ELEMENTS, "install-types"), join(elements, "install-types"), { recursive: true });
    const out = join(scratch, "types-out", "dib");
    const run = await build(["-o", out, "busybox-base", "install-types", "types-demo"], {
      env: { ELEMENTS_PATH: elements, DIB_INSTALLTYPE_types_demo: "package" },
    });
    expect({ code: run.code, tail: run.stderr.slice(-2000) }).toMatchObject({ code: 0 });
    expect(run.stderr).toContain("extra-data.d/99-enable-install-types (install-types)");
    expect(fromTar(`${out}.tar`, "./etc/types-demo")).toBe("package\n");
  }, 30_000);

  test("an extra-data.d hook that adds hooks is refused with a clear error", async () => {
    const outDir = join(scratch, "adds-hook-out");
    const run = await build(["-o", join(outDir, "img"), "busybox-base", "adds-hook"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("error: hook extra-data.d/50-adds-hook of element adds-hook changed the hooks to run (+install.d/60-added-late)");
    await expectNothingLeft(outDir);
  }, 30_000);
});

describe("layer cache", () => {
  test("a rebuild sees a changed file of an element without hooks (bin/ copied by install-bin)", async () => {
    const elements = join(scratch, "cache-elements");
    const write = (path: string, text: string, mode = 0o755) => {
      mkdirSync(resolve(path, ".."), { recursive: true });
      writeFileSync(path, text, { mode });
    };
    // data-only: no hooks, just a tool in bin/. slow: a 6 s install.d hook, so the
    // builder snapshots the root after it (after install-bin has copied the tool).
    write(join(elements, "data-only/bin/ooo-tool"), "#!/bin/sh\necho v1\n");
    write(join(elements, "slow/install.d/50-slow"), "#!/bin/sh\nsleep 6\n");
    const imageCache = join(scratch, "layer-cache");
    const out = join(scratch, "cache-out");
    const opts = { env: { ELEMENTS_PATH: elements }, imageCache };
    const first = await build(["-o", join(out, "one"), "busybox-base", "data-only", "slow"], opts);
    expect(first.code).toBe(0);
    expect(first.stderr).toContain("save layer after install.d/50-slow");
    expect(fromTar(join(out, "one.tar"), "./usr/local/bin/ooo-tool")).toContain("v1");

    write(join(elements, "data-only/bin/ooo-tool"), "#!/bin/sh\necho v2\n");
    const second = await build(["-o", join(out, "two"), "busybox-base", "data-only", "slow"], opts);
    expect(second.code).toBe(0);
    expect(fromTar(join(out, "two.tar"), "./usr/local/bin/ooo-tool")).toContain("v2");
  }, 60_000);
});

describe("builds side by side", () => {
  test("two builds sharing an image cache both install packages (they share its apt archive)", async () => {
    const elements = join(scratch, "side-by-side");
    for (const [name, pkg] of [["wants-cowsay", "cowsay"], ["wants-figlet", "figlet"]] as const) {
      mkdirSync(join(elements, name), { recursive: true });
      writeFileSync(join(elements, name, "package-installs.yaml"), `${pkg}:\n`);
    }
    const out = join(scratch, "side-by-side-out");
    const opts = { env: { ELEMENTS_PATH: elements }, imageCache: null };
    const [a, b] = await Promise.all([
      build(["-o", join(out, "a"), "debian-minimal", "wants-cowsay"], opts),
      build(["-o", join(out, "b"), "debian-minimal", "wants-figlet"], opts),
    ]);
    expect({ code: a.code, tail: a.stderr.slice(-1500) }).toMatchObject({ code: 0 });
    expect({ code: b.code, tail: b.stderr.slice(-1500) }).toMatchObject({ code: 0 });
    expect(execFileSync("tar", ["-tf", join(out, "a.tar")]).toString()).toContain("./usr/games/cowsay");
    expect(execFileSync("tar", ["-tf", join(out, "b.tar")]).toString()).toContain("./usr/bin/figlet");
  }, 180_000);
});

describe("DIB elements from Debian's diskimage-builder, unchanged", () => {
  test("manifests: DIB_ENV and DIB_ARGS into the image, and $IMAGE_NAME.d beside the output", async () => {
    const elements = join(scratch, "dib-manifests-elements");
    cpSync(join(DIB_ELEMENTS, "manifests"), join(elements, "manifests"), { recursive: true });
    const out = join(scratch, "manifests-out", "img");
    const run = await build(["-o", out, "busybox-base", "manifests"], {
      env: { ELEMENTS_PATH: elements, DIB_PROBE_SETTING: "kept in the manifest" },
    });
    expect({ code: run.code, tail: run.stderr.slice(-3000) }).toMatchObject({ code: 0 });
    const environment = fromTar(`${out}.tar`, "./etc/dib-manifests/dib_environment");
    expect(environment).toContain('declare -x DIB_PROBE_SETTING="kept in the manifest"');
    expect(fromTar(`${out}.tar`, "./etc/dib-manifests/dib_arguments")).toContain("manifests");
    expect(readFileSync(join(`${out}.d`, "dib-manifests", "dib_environment"), "utf8")).toBe(environment);
  }, 60_000);


  test(
    "install-static, devuser, openssh-server, runtime-ssh-host-keys, dib-init-system, journal-to-console, sysctl on debian-minimal",
    async () => {
      requireCommand(join(DIB_ELEMENTS, "install-static/install.d/10-install-static-files"));
      const elements = join(scratch, "dib-elements");
      // Copied as Debian ships them: the elements and what they depend on.
      const dib = ["install-static", "devuser", "openssh-server", "runtime-ssh-host-keys", "dib-init-system", "journal-to-console", "sysctl"];
      for (const e of dib) cpSync(join(DIB_ELEMENTS, e), join(elements, e), { recursive: true });
      for (const f of ["element-deps", "package-installs.yaml", "install.d/10-install-static-files"])
        expect(readFileSync(join(elements, "install-static", f))).toEqual(readFileSync(join(DIB_ELEMENTS, "install-static", f)));
      // What a user adds: files under static/.
      mkdirSync(join(elements, "install-static/static/etc/ooo"), { recursive: true });
      writeFileSync(join(elements, "install-static/static/etc/ooo/from-static"), "installed by DIB's install-static\n");
      const out = join(scratch, "dib-out", "static");
      const run = await build(["-o", out, "debian-minimal", "install-static", "when-release", "devuser", "openssh-server", "journal-to-console", "sysctl"], {
        env: { ELEMENTS_PATH: elements, DIB_DEV_USER_USERNAME: "dev" },
        imageCache: null,
      });
      expect({ code: run.code, tail: run.stderr.slice(-3000) }).toMatchObject({ code: 0 });
      expect(run.stderr).toContain("install.d/10-install-static-files (install-static)");
      const tar = `${out}.tar`;
      const listing = execFileSync("tar", ["-tf", tar]).toString().split("\n");
      // install-static, with rsync from its package-installs.yaml
      expect(fromTar(tar, "./etc/ooo/from-static")).toBe("installed by DIB's install-static\n");
      expect(listing).toContain("./usr/bin/rsync");
      expect(listing).toContain("./usr/bin/jq"); // when: DIB_RELEASE = bookworm, set by debian-minimal's environment.d
      // devuser, openssh-server, runtime-ssh-host-keys (via dib-init-system), journal-to-console
      expect(fromTar(tar, "./etc/passwd")).toMatch(/^dev:x:1000:1000:/m);
      expect(listing).toContain("./usr/sbin/sshd");
      expect(listing).toContain("./etc/systemd/system/multi-user.target.wants/ssh-keygen.service");
      expect(listing.filter((p) => p.startsWith("./etc/ssh/ssh_host_"))).toEqual([]);
      expect(fromTar(tar, "./etc/systemd/journald.conf.d/log-to-console.conf")).toContain("ForwardToConsole=true");
      expect(listing).toContain("./usr/local/bin/sysctl-set-value"); // bin/ through install-bin
    },
    180_000,
  );
});
