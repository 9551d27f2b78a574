#!/usr/bin/env bun
/**
 * In-place upgrades, measured (issue 7), on qemu nodes under this machine's
 * accelerator (TCG here), from the "kv" test images (debian-minimal ooo-node
 * redis; v2 has one more package):
 *
 *   1. one node, rebuild-in-place: bytes fetched for v1 → v2 against the full
 *      image (target ≤ 10%), and seconds from `ooo upgrade` to the node
 *      signalling on v2 (target < 30 s);
 *   2. one node, policy replace (a fresh node from v2): seconds likewise;
 *   3. three nodes rolling, one at a time with two in service: seconds.
 *
 *   bun bench/upgrade.ts [--cpus N] [--only one,replace,rolling] [--verbose] [--keep] [--sign]
 *
 * The stacks' services speak https with their own CA (as every stack's do);
 * --sign publishes v1 and v2 signed and makes the stacks trust only that key.
 *
 * --only runs just the named scenarios (to iterate on one); the JSON then
 * holds null for the others; --verbose shows each `ooo upgrade`'s own output;
 * --keep leaves the stacks' state (console logs, timelines) in place and
 * says where, to read what a node did.
 *
 * Nodes share the host's cores without overcommit unless --cpus says
 * otherwise (as bench/deploy.ts): the one-node scenarios get 2 vCPUs here,
 * the three rolling nodes 1 each. Under TCG a vCPU is a host thread, and the
 * takeover's reader, hasher and tar writer run side by side given two.
 *
 * Prints a table, then as its last line one JSON object of the figures.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { execa } from "execa";
import { parseDocument } from "yaml";
import { table } from "../lib/log.ts";
import { buildTestImage } from "../test/support/images.ts";

const repo = resolve(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "ooo-bench-upgrade-"));
const env = { ...process.env, NO_COLOR: "1", OOO_STORE_URL: "", OOO_STORE_TOKEN: "" } as Record<string, string>;
const cpusFlag = process.argv.includes("--cpus") ? Number(process.argv[process.argv.indexOf("--cpus") + 1]) : undefined;
const cpusFor = (nodes: number) => cpusFlag ?? Math.max(1, Math.floor(availableParallelism() / nodes));
const only = process.argv.includes("--only") ? new Set(process.argv[process.argv.indexOf("--only") + 1]!.split(",")) : undefined;
const verbose = process.argv.includes("--verbose");
const keep = process.argv.includes("--keep");
const sign = process.argv.includes("--sign");
const wanted = (name: string) => !only || only.has(name);
const load = () => Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);

async function ooo(args: string[], extraEnv: Record<string, string> = {}) {
  const r = await execa("bun", [join(repo, "cli/ooo.ts"), ...args], { env: { ...env, ...extraEnv }, reject: false, all: true });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), all: String(r.all) };
}

function stackFile(name: string, edit: (d: ReturnType<typeof parseDocument>) => void) {
  const doc = parseDocument(readFileSync(join(repo, "fixtures/stacks/kv.yaml"), "utf8"));
  doc.set("name", name);
  if (sign) doc.set("trust", { keys: [join(dir, "bench.pub")] });
  edit(doc);
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, doc.toString());
  return file;
}

interface UpgradeJson {
  nodes: { node: string; result: string; bytesFetched?: number; imageBytes?: number; seconds: number }[];
}

/** Deploy v1, move the tag to v2, time `ooo upgrade` end to end. */
async function scenario(file: string, images: { v1: string; v2: string }) {
  const storeEnv = Object.fromEntries([...(await ooo(["store-env", file])).stdout.matchAll(/export (\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
  for (const [base, version] of [[images.v1, "1"], [images.v2, "2"]] as const) {
    const r = await ooo(["publish", base, "--image-version", version, ...(sign ? ["--sign", join(dir, "bench.key")] : [])], storeEnv);
    if (r.code !== 0) throw new Error(`publish failed:\n${r.all}`);
  }
  await ooo(["promote", "kv@1", "--tag", "live"], storeEnv);
  const d = await ooo(["deploy", file]);
  if (d.code !== 0) throw new Error(`deploy failed:\n${d.all}`);
  await ooo(["promote", "kv@2", "--tag", "live"], storeEnv);
  const t0 = performance.now();
  const u = await ooo(["upgrade", file, "--json"]);
  const seconds = (performance.now() - t0) / 1000;
  if (verbose) process.stderr.write(u.all + "\n");
  const phases = phasesOf(join(dir, ".ooo", basename(file, ".yaml"), "timelines", "latest.json"));
  // `ooo delete` removes the nodes' folders: their console logs go aside first.
  if (keep)
    cpSync(join(dir, ".ooo", basename(file, ".yaml"), "nodes"), join(dir, `${basename(file, ".yaml")}-nodes`), { recursive: true, filter: (p) => !/\.(raw|img|sock)$/.test(p) });
  await ooo(["delete", file, ...(keep ? [] : ["--purge"])]);
  if (u.code !== 0) throw new Error(`upgrade failed:\n${u.all}`);
  const report = JSON.parse(u.stdout.trim().split("\n").at(-1)!) as UpgradeJson;
  process.stderr.write(`${basename(file, ".yaml")}: ooo upgrade took ${seconds.toFixed(1)} s (${report.nodes.map((n) => `${n.node} ${n.result}`).join(", ")})\n`);
  return { seconds, report, phases };
}

/**
 * Where the first node's upgrade went, from the run's timeline: the takeover
 * (metadata to the restart), the boot of the new root (with the stages its
 * ready report gave: kernel, initramfs, system) and its configure run.
 */
function phasesOf(timelineFile: string) {
  if (!existsSync(timelineFile)) return undefined;
  const node = JSON.parse(readFileSync(timelineFile, "utf8")).nodes?.[0] as
    | { spans: { phase: string; start: number; end: number }[]; marks: { kind: string; note?: string }[] }
    | undefined;
  if (!node) return undefined;
  const span = (phase: string) => node.spans.find((x) => x.phase === phase);
  const r1 = (n: number) => Number(n.toFixed(1));
  const boot = span("boot");
  const stages = /kernel ([\d.]+), initramfs ([\d.]+), system ([\d.]+)/.exec(node.marks.find((m) => m.kind === "booted")?.note ?? "");
  return {
    takeover_s: boot ? r1(boot.start) : null,
    boot_s: boot ? r1(boot.end - boot.start) : null,
    boot_stages: stages ? { kernel: Number(stages[1]), initramfs: Number(stages[2]), system: Number(stages[3]) } : null,
    configure_s: span("configure") ? r1(span("configure")!.end - span("configure")!.start) : null,
  };
}

const loadBefore = load();
try {
  if (sign && (await ooo(["key", "generate", join(dir, "bench"), "--unencrypted"])).code !== 0) throw new Error("ooo key generate failed");
  process.stderr.write("building (or reusing) the kv test images v1 and v2 …\n");
  const [v1, v2] = await Promise.all([buildTestImage("kv-v1"), buildTestImage("kv-v2")]);
  const images = { v1: v1.base, v2: v2.base };

  const one = wanted("one") ? await scenario(
    stackFile("bench-one", (d) => {
      d.setIn(["roles", "cache", "count"], 1);
      d.setIn(["roles", "cache", "rolling_updates", "min_in_service"], 0);
      d.setIn(["defaults", "size", "cpus"], cpusFor(1));
    }),
    images,
  ) : undefined;
  const replace = wanted("replace") ? await scenario(
    stackFile("bench-replace", (d) => {
      d.setIn(["roles", "cache", "count"], 1);
      d.setIn(["roles", "cache", "rolling_updates", "min_in_service"], 0);
      d.setIn(["roles", "cache", "rolling_updates", "policy"], "replace");
      d.setIn(["defaults", "size", "cpus"], cpusFor(1));
    }),
    images,
  ) : undefined;
  const rolling = wanted("rolling") ? await scenario(stackFile("bench-rolling", (d) => d.setIn(["defaults", "size", "cpus"], cpusFor(3))), images) : undefined;

  const node = one?.report.nodes[0] ?? { bytesFetched: 0, imageBytes: 0 };
  const secs = (r?: { seconds: number }) => (r ? Number(r.seconds.toFixed(1)) : null);
  const figures = {
    bench: "upgrade",
    accel: "tcg",
    bytes_fetched: node.bytesFetched ?? 0,
    image_bytes: node.imageBytes ?? 0,
    fetched_share: Number(((node.bytesFetched ?? 0) / (node.imageBytes || 1)).toFixed(4)),
    upgrade_seconds: secs(one),
    upgrade_phases: one?.phases ?? null,
    replace_seconds: secs(replace),
    rolling_seconds: secs(rolling),
    rolling_nodes: rolling?.report.nodes.length ?? 0,
    cpus: { one_node: cpusFor(1), rolling: cpusFor(3) },
    signed: sign,
    target_fetched_share_max: 0.1,
    target_upgrade_seconds_max: 30,
    loadavg_1m_before: loadBefore,
    loadavg_1m_after: load(),
  };
  console.log(
    table(
      ["measure", "value", "target"],
      [
        ["bytes fetched v1 → v2 (one package)", `${(figures.bytes_fetched / 2 ** 20).toFixed(2)} MiB of ${(figures.image_bytes / 2 ** 20).toFixed(0)} MiB (${(figures.fetched_share * 100).toFixed(2)}%)`, "≤ 10%"],
        ["ooo upgrade → signalled on v2, 1 node (in place)", `${figures.upgrade_seconds} s`, "< 30 s"],
        ...(figures.upgrade_phases
          ? [
              ["  of which: takeover (metadata → restart)", `${figures.upgrade_phases.takeover_s} s`, ""],
              [
                "  boot of the new root (kexec → ready)",
                `${figures.upgrade_phases.boot_s} s${figures.upgrade_phases.boot_stages ? ` (kernel ${figures.upgrade_phases.boot_stages.kernel}, initramfs ${figures.upgrade_phases.boot_stages.initramfs}, system ${figures.upgrade_phases.boot_stages.system})` : ""}`,
                "",
              ],
              ["  configure run on the new root", `${figures.upgrade_phases.configure_s} s`, ""],
            ]
          : []),
        ["ooo upgrade → signalled on v2, 1 node (replace)", `${figures.replace_seconds} s`, ""],
        ["rolling upgrade, 3 nodes, one at a time", `${figures.rolling_seconds} s`, ""],
      ],
    ),
  );
  console.log(`load average: ${loadBefore} before, ${figures.loadavg_1m_after} after`);
  console.log(JSON.stringify(figures));
} finally {
  if (keep) process.stderr.write(`kept: ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}
