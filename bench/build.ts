#!/usr/bin/env bun
/**
 * ooo build-image vs diskimage-builder's disk-image-create, one run, root:
 *
 *   bun bench/build.ts [--dir DIR] [--keep]
 *
 * Both build `-t tar debian-minimal` (bookworm, from http://deb.debian.org/debian)
 * plus `bench-hook`, a small element whose one install.d hook writes a file:
 *   cold  fresh, empty caches for each (their own --image-cache folders);
 *   warm  the hook changed, then the same build again with the cache the
 *         cold build left (ooo: its layer cache; DIB: its own caches).
 * ooo builds first so that any warming of the mirror's CDN favours DIB. Both
 * run with the same environment, Debian's PATH included.
 * Targets: ooo cold ≤ half of DIB's wall time; ooo warm < 15 s.
 * Prints a table, then, as its LAST line, one JSON object of the figures.
 *
 * DIB needs: sudo, debootstrap, Debian's python on PATH ahead of any other
 * python3 (a pyenv or venv python3 does not see diskimage_builder), and for
 * bookworm DIB_DEBIAN_SECURITY_MIRROR / DIB_DEBIAN_SECURITY_SUBPATH=-security.
 */
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";

const REPO = resolve(import.meta.dir, "..");
const MIRROR = "http://deb.debian.org/debian";
const SECURITY = "http://deb.debian.org/debian-security";
const TARGET_COLD_RATIO = 0.5;
const TARGET_WARM_SECONDS = 15;

const args = process.argv.slice(2);
const keep = args.includes("--keep");
const dirArg = args.indexOf("--dir");
const work = dirArg >= 0 ? resolve(args[dirArg + 1]!) : mkdtempSync("/var/tmp/ooo-bench-");
mkdirSync(work, { recursive: true });

function need(ok: boolean, what: string) {
  if (!ok) {
    process.stderr.write(`bench: ${what}\n`);
    process.exit(2);
  }
}
need(process.getuid?.() === 0, "run as root (both builders chroot; DIB also uses sudo)");
for (const tool of ["disk-image-create", "debootstrap", "sudo", "mmdebstrap"])
  need(Bun.which(tool, { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }) !== null, `${tool} is missing: sh tools/ensure.sh installs it`);

/** Debian's PATH: DIB's python scripts must find /usr/bin/python3 and its dist-packages. */
const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const common = {
  ...process.env,
  DIB_RELEASE: "bookworm",
  DIB_DISTRIBUTION_MIRROR: MIRROR,
  DIB_DEBIAN_SECURITY_MIRROR: SECURITY,
  DIB_DEBIAN_SECURITY_SUBPATH: "-security",
  ELEMENTS_PATH: join(work, "elements"),
};
delete (common as Record<string, string | undefined>).DIB_IMAGE_CACHE;

/** The small element whose install.d hook the warm run changes. */
function writeBenchElement(version: string) {
  const dir = join(work, "elements", "bench-hook", "install.d");
  mkdirSync(dir, { recursive: true });
  const hook = join(dir, "50-bench-hook");
  writeFileSync(hook, `#!/bin/sh\nset -eu\nmkdir -p /etc\necho "bench-hook ${version}" > /etc/bench-hook\n`);
  chmodSync(hook, 0o755);
  writeFileSync(join(work, "elements", "bench-hook", "README.rst"), "bench-hook: one install.d hook that the warm run changes.\n");
}

interface Run {
  seconds: number;
  /** CPU seconds (user + system) of the build and everything it waited for: less swayed by other work on the machine. */
  cpu: number;
  bytes: number;
  log: string;
}

/** CPU time of this process's waited-for children so far (cutime + cstime, /proc/self/stat). */
function childCpuSeconds(): number {
  const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ");
  // After "pid (comm) ", field 3 (state) is index 0: cutime is field 16, cstime 17.
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

async function timed(label: string, cmd: string, argv: string[], env: Record<string, string | undefined>, output: string): Promise<Run> {
  const log = join(work, `${label}.out`);
  const out = createWriteStream(log);
  process.stderr.write(`bench: ${label}: ${cmd} ${argv.join(" ")}\n`);
  const t0 = performance.now();
  const cpu0 = childCpuSeconds();
  const code = await new Promise<number>((resolveExit) => {
    const child = spawn(cmd, argv, { cwd: work, env, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    child.on("close", (status, signal) => resolveExit(status ?? (signal ? 128 : 1)));
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = childCpuSeconds() - cpu0;
  out.end();
  if (code !== 0 || !existsSync(output)) {
    process.stderr.write(`bench: ${label} failed (exit ${code}); see ${log}\n`);
    process.exit(1);
  }
  process.stderr.write(`bench: ${label}: ${seconds.toFixed(1)} s (${cpu.toFixed(1)} CPU s)\n`);
  return { seconds, cpu, bytes: statSync(output).size, log };
}

/** The file the hook wrote, read back from a tar output: proves the warm run used the changed hook. */
function hookOutput(tar: string): string {
  return execFileSync("tar", ["-xOf", tar, "./etc/bench-hook"]).toString().trim();
}

async function ooo(label: string): Promise<Run> {
  const output = join(work, `${label}.tar`);
  rmSync(output, { force: true });
  return timed(
    label,
    process.execPath,
    [join(REPO, "cli/ooo.ts"), "build-image", "-t", "tar", "-o", join(work, label), "--force", "--image-cache", join(work, "ooo-cache"), "debian-minimal", "bench-hook"],
    { ...common, PATH: SYSTEM_PATH },
    output,
  );
}

async function dib(label: string): Promise<Run> {
  const output = join(work, `${label}.tar`);
  rmSync(output, { force: true });
  return timed(
    label,
    "disk-image-create",
    ["-t", "tar", "-o", join(work, label), "--image-cache", join(work, "dib-cache"), "debian-minimal", "bench-hook"],
    { ...common, PATH: SYSTEM_PATH },
    output,
  );
}

// Other work on the machine skews wall times: the load average is reported with the figures.
const loadBefore = loadavg()[0]!;
writeBenchElement("v1");
const oooCold = await ooo("ooo-cold");
const dibCold = await dib("dib-cold");
writeBenchElement("v2");
const oooWarm = await ooo("ooo-warm");
const dibWarm = await dib("dib-warm");

for (const [name, run, want] of [
  ["ooo-cold", oooCold, "v1"],
  ["dib-cold", dibCold, "v1"],
  ["ooo-warm", oooWarm, "v2"],
  ["dib-warm", dibWarm, "v2"],
] as const) {
  const got = hookOutput(join(work, `${name}.tar`));
  need(got === `bench-hook ${want}`, `${name}: expected the hook's output 'bench-hook ${want}', got '${got}' (${run.log})`);
}

const figures = {
  bench: "build",
  elements: "debian-minimal bench-hook",
  release: "bookworm",
  ooo_cold_s: round(oooCold.seconds),
  dib_cold_s: round(dibCold.seconds),
  cold_ratio: round(oooCold.seconds / dibCold.seconds, 3),
  ooo_warm_s: round(oooWarm.seconds),
  dib_warm_s: round(dibWarm.seconds),
  warm_ratio: round(oooWarm.seconds / dibWarm.seconds, 3),
  ooo_cold_cpu_s: round(oooCold.cpu),
  dib_cold_cpu_s: round(dibCold.cpu),
  cold_cpu_ratio: round(oooCold.cpu / dibCold.cpu, 3),
  ooo_warm_cpu_s: round(oooWarm.cpu),
  dib_warm_cpu_s: round(dibWarm.cpu),
  ooo_tar_mib: round(oooCold.bytes / 2 ** 20),
  dib_tar_mib: round(dibCold.bytes / 2 ** 20),
  target_cold_ratio_max: TARGET_COLD_RATIO,
  target_warm_s_max: TARGET_WARM_SECONDS,
  loadavg_1m_before: round(loadBefore, 2),
  loadavg_1m_after: round(loadavg()[0]!, 2),
  cold_target_met: oooCold.seconds <= TARGET_COLD_RATIO * dibCold.seconds,
  warm_target_met: oooWarm.seconds < TARGET_WARM_SECONDS,
};

function round(x: number, digits = 1) {
  return Number(x.toFixed(digits));
}

const rows = [
  ["", "ooo", "DIB", "ooo/DIB", "target"],
  ["cold (empty caches)", `${figures.ooo_cold_s} s`, `${figures.dib_cold_s} s`, String(figures.cold_ratio), `≤ ${TARGET_COLD_RATIO} ${figures.cold_target_met ? "met" : "MISSED"}`],
  ["warm (one install.d hook changed)", `${figures.ooo_warm_s} s`, `${figures.dib_warm_s} s`, String(figures.warm_ratio), `ooo < ${TARGET_WARM_SECONDS} s ${figures.warm_target_met ? "met" : "MISSED"}`],
  ["cold, CPU time (user + system)", `${figures.ooo_cold_cpu_s} s`, `${figures.dib_cold_cpu_s} s`, String(figures.cold_cpu_ratio), ""],
  ["warm, CPU time", `${figures.ooo_warm_cpu_s} s`, `${figures.dib_warm_cpu_s} s`, "", ""],
  ["root tarball", `${figures.ooo_tar_mib} MiB`, `${figures.dib_tar_mib} MiB`, "", ""],
  ["load average (1 min) before / after", `${figures.loadavg_1m_before} / ${figures.loadavg_1m_after}`, "", "", ""],
];
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const [i, r] of rows.entries()) {
  process.stdout.write(r.map((c, j) => c.padEnd(widths[j]!)).join("  ").trimEnd() + "\n");
  if (i === 0) process.stdout.write(widths.map((w) => "-".repeat(w)).join("  ") + "\n");
}
if (!keep) {
  // Keep the logs; the caches and images are gigabytes.
  for (const name of ["ooo-cache", "dib-cache", "ooo-cold.tar", "ooo-warm.tar", "dib-cold.tar", "dib-warm.tar", "dib-cold.d", "dib-warm.d"])
    rmSync(join(work, name), { recursive: true, force: true });
}
process.stdout.write(`logs: ${work}/*.out (and ooo's *.log)${keep ? "; outputs and caches kept" : ""}\n`);
process.stdout.write(JSON.stringify(figures) + "\n");
