#!/usr/bin/env bun
/**
 * Power-off-to-working on bare metal, on the test bed (test/support/
 * testbed.ts: qemu machines under TCG powered only through ipmi_sim, network
 * boot by the deployer's own dnsmasq, OVMF and SeaBIOS), side by side with
 * the qemu driver, in one run and from one image (the test image kv-v1,
 * debian-minimal + ooo-node + redis; the deploy ramdisk built from element
 * ooo-deploy). Every machine and the qemu node have 1 GiB, and the host's
 * cores without overcommit as bench/deploy.ts gives them: the one-machine
 * cases and the qemu node 2 vCPUs here, the three machines at once 1 each.
 *
 *   bun bench/baremetal.ts [--runs 3] [--only "cold UEFI,3 cold,qemu"] [--consoles DIR]
 *
 * --consoles DIR keeps each run's machine consoles there (CASE-RUN-MACHINE.log):
 * the firmware's, the ramdisk's and the node's lines, to see where time goes.
 *
 * Cases, each the median of --runs:
 *   cold UEFI   one machine (OVMF), from power off: PXE → iPXE → ramdisk → write → kexec
 *   cold BIOS   one machine (SeaBIOS and the NIC's iPXE ROM), the same
 *   fast track  one machine waiting in the ramdisk (standby): the deploy needs no firmware boot
 *   3 cold      three other machines (1 UEFI, 2 BIOS) at once
 *   qemu        the qemu driver's one node (the host writes its disk and boots it)
 *   ironic      one UEFI machine through the stack's embedded Ironic (driver: ironic, the same
 *               inventory as cold UEFI's otherwise): Ironic powers it on into ooo's ramdisk, its
 *               agent writes the disk (by the disk map, as ooo's own deploy), Ironic boots the disk
 *
 * Power-off-to-working is read from each deploy's timeline: from the node's
 * first step to its completion signal (for 3, the first step of any to the
 * last signal). Firmware boots are counted on the machines' consoles
 * (SeaBIOS's banner, OVMF's boot manager). Between runs `ooo delete` erases
 * the machines through the ramdisk (reported, not counted): cold machines
 * end off, the standby one back in the ramdisk. Targets: 1 firmware boot
 * cold and 0 fast track (Ironic needs 2: the ironic case counts them); cold ≤ 1.5 × and fast track
 * ≤ 1.1 × the qemu driver's time; ramdisk ≤ 64 MiB. Prints a table and, as
 * its LAST line, one JSON object of the figures.
 */
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import type { Timeline } from "../deployer/timeline.ts";
import { table } from "../lib/log.ts";
import { firmwareBoots } from "../test/support/firmware-boots.ts";
import { buildTestImage } from "../test/support/images.ts";
import { machinesOf, oooIn, prepareBridge, publishInto, writeMetalStack } from "../test/support/metal-stack.ts";
import { createTestbed, type TestMachine } from "../test/support/testbed.ts";
import { flag, median, r1 } from "./figures.ts";

const runs = Number(flag("runs", "3"));
/** --only: the named cases (to measure one again); the JSON has null for the others. */
const only = flag("only", "") ? new Set(flag("only", "").split(",").map((c) => c.trim())) : undefined;
const MiB = 2 ** 20;
const consolesDir = flag("consoles", "");

type Case = "cold UEFI" | "cold BIOS" | "fast track" | "3 cold" | "qemu" | "ironic";
interface Run {
  scenario: Case;
  run: number;
  seconds: number;
  firmwareBoots: number;
  ramdiskBoot: number;
  write: number;
  nodeBoot: number;
  /** From the node's first step to its (first) power-on: the driver's preparation (Ironic's deploy step). */
  beforePowerOn: number;
  /** From the end of the write to the power-on that boots the node (Ironic: its tear-down and reboot); 0 after a kexec. */
  afterWrite: number;
  command: number;
  erase: number;
  load: number;
}

process.stderr.write("building the test images (kv-v1, the deploy ramdisk) if they are not current…\n");
const [ramdisk, kv] = await Promise.all([buildTestImage("ramdisk"), buildTestImage("kv-v1")]);
const ramdiskBytes = statSync(`${ramdisk.base}.vmlinuz`).size + statSync(`${ramdisk.base}.initramfs`).size;

/** vCPUs of a machine deployed with `atOnce - 1` others: the host's cores, shared without overcommit. */
const cpusFor = (atOnce: number) => Math.max(1, Math.floor(availableParallelism() / atOnce));
const bed = await createTestbed({
  machines: [
    { name: "u1", firmware: "uefi", memoryMiB: 1024, cpus: cpusFor(1) },
    { name: "b1", firmware: "bios", memoryMiB: 1024, cpus: cpusFor(1) },
    { name: "u2", firmware: "uefi", memoryMiB: 1024, cpus: cpusFor(3) },
    { name: "b2", firmware: "bios", memoryMiB: 1024, cpus: cpusFor(3) },
    { name: "b3", firmware: "bios", memoryMiB: 1024, cpus: cpusFor(3) },
    { name: "f1", firmware: "bios", memoryMiB: 1024, cpus: cpusFor(1) },
    { name: "i1", firmware: "uefi", memoryMiB: 1024, cpus: cpusFor(1) },
  ],
});
const machine = (name: string) => bed.machines.find((m) => m.name === name)!;
const results: Run[] = [];
const dir = join(bed.dir, "stack");
mkdirSync(dir);
const stackFile = join(dir, "bench.yaml");
const inventory = {
  uefi: { driver: "ipmi", machines: machinesOf(bed, [{ machine: machine("u1") }]) },
  bios: { driver: "ipmi", machines: machinesOf(bed, [{ machine: machine("b1") }]) },
  three: { driver: "ipmi", machines: machinesOf(bed, [{ machine: machine("u2") }, { machine: machine("b2") }, { machine: machine("b3") }]) },
  // In standby only when the fast track is measured: a machine waiting in the ramdisk takes a core's share from the others.
  fast: { driver: "ipmi", standby: !only || only.has("fast track"), machines: machinesOf(bed, [{ machine: machine("f1") }]) },
  local: { driver: "qemu", accel: "tcg", boot_mode: "bios" },
  // cold UEFI's entry, handed to the embedded Ironic: only driver and url differ.
  ironic: { driver: "ironic", url: "embedded", machines: machinesOf(bed, [{ machine: machine("i1") }]) },
};
const ROLE_OF: Record<Case, { role: string; pool: string; count: number; machines: string[] }> = {
  "cold UEFI": { role: "cold-uefi", pool: "uefi", count: 1, machines: ["u1"] },
  "cold BIOS": { role: "cold-bios", pool: "bios", count: 1, machines: ["b1"] },
  "fast track": { role: "fast-track", pool: "fast", count: 1, machines: ["f1"] },
  "3 cold": { role: "three-cold", pool: "three", count: 3, machines: ["u2", "b2", "b3"] },
  qemu: { role: "qemu", pool: "local", count: 1, machines: [] },
  ironic: { role: "ironic", pool: "ironic", count: 1, machines: ["i1"] },
};
/** The stack with only this case's role holding nodes (the others at 0: their machines stay as they are). */
const writeStack = (scenario: Case | undefined) =>
  writeMetalStack(stackFile, {
    name: "bench",
    ramdisk: "ramdisk@stable",
    inventory,
    roles: Object.fromEntries(
      (Object.keys(ROLE_OF) as Case[]).map((c) => [
        ROLE_OF[c].role,
        { count: c === scenario ? ROLE_OF[c].count : 0, image: "kv@live", inventory: ROLE_OF[c].pool, size: { memory: "1G", cpus: cpusFor(ROLE_OF[c].count) }, metadata: { redis: { port: 6379 } } },
      ]),
    ),
    signalTimeout: "30m",
  });

async function ooo(argv: string[]) {
  const r = await oooIn(bed.netns, argv);
  if (r.code !== 0) throw new Error(`ooo ${argv.join(" ")} failed (exit ${r.code}):\n${r.stderr.split("\n").slice(-40).join("\n")}`);
  return r;
}

/** A node's spans and marks in time order, in seconds from its first: where a case's time goes. */
function timelineLine(n: Timeline["nodes"][number]): string {
  const items = [
    ...n.spans.map((sp) => ({ at: sp.start, text: `${sp.phase} ${r1(sp.end - sp.start)}s` })),
    ...n.marks.map((m) => ({ at: m.at, text: m.note ? `${m.kind} (${m.note})` : m.kind })),
  ].sort((a, b) => a.at - b.at);
  const t0 = items[0]?.at ?? 0;
  return items.map((i) => `${r1(i.at - t0)} ${i.text}`).join(" · ");
}

function figures(t: Timeline, scenario: Case, run: number, command: number, boots: number, erase: number, load: number): Run {
  const signalled = t.nodes.map((n) => n.marks.find((m) => m.kind === "signalled" && m.note?.startsWith("SUCCESS"))?.at ?? NaN);
  // A node's first step (its deploy command, before any power-on): the timeline's seconds end at its signal.
  const starts = t.nodes.map((n, i) => (n.seconds !== undefined ? signalled[i]! - n.seconds : Math.min(...n.spans.map((s) => s.start))));
  const span = (phase: string) => Math.max(...t.nodes.map((n) => n.spans.filter((s) => s.phase === phase).reduce((a, s) => a + s.end - s.start, 0)));
  const powerOns = (i: number) => t.nodes[i]!.marks.filter((m) => m.kind === "power-on").map((m) => m.at);
  const writeEnd = (i: number) => t.nodes[i]!.spans.find((s) => s.phase === "image write")?.end;
  const perNode = (f: (i: number) => number) => Math.max(...t.nodes.map((_, i) => f(i)));
  return {
    scenario,
    run,
    seconds: r1(Math.max(...signalled) - Math.min(...starts)),
    firmwareBoots: boots,
    ramdiskBoot: r1(span("ramdisk boot")),
    write: r1(span("image write")),
    nodeBoot: r1(span("boot")),
    beforePowerOn: r1(perNode((i) => (powerOns(i)[0] ?? starts[i]!) - starts[i]!)),
    afterWrite: r1(perNode((i) => (powerOns(i)[1] !== undefined && writeEnd(i) !== undefined ? powerOns(i)[1]! - writeEnd(i)! : 0))),
    command: r1(command),
    erase: r1(erase),
    load: r1(load),
  };
}

try {
  await prepareBridge(bed.netns);
  writeStack(undefined);
  await publishInto(bed.netns, stackFile, [
    { base: ramdisk.base, version: "1", tag: "stable", name: "ramdisk" },
    { base: kv.base, version: "1", tag: "live", name: "kv" },
  ]);
  // f1 waits in the ramdisk from here on: every fast-track run starts from standby; i1 is enrolled into the embedded Ironic.
  await ooo(["enroll", stackFile]);
  for (const scenario of (Object.keys(ROLE_OF) as Case[]).filter((c) => !only || only.has(c))) {
    for (let run = 1; run <= runs; run++) {
      const ms: TestMachine[] = ROLE_OF[scenario].machines.map(machine);
      const consoles = ms.map((m) => m.console().length);
      writeStack(scenario);
      const load = loadavg()[0]!;
      const t0 = performance.now();
      const r = await ooo(["deploy", stackFile, "--json"]);
      const command = (performance.now() - t0) / 1000;
      const report = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { timeline: Timeline };
      const boots = ms.reduce((a, m, i) => a + firmwareBoots(m, consoles[i]), 0);
      if (consolesDir) {
        mkdirSync(consolesDir, { recursive: true });
        ms.forEach((m, i) => writeFileSync(join(consolesDir, `${scenario.replace(/ /g, "-")}-${run}-${m.name}.log`), m.console().slice(consoles[i])));
      }
      // Back to where the next run starts: machines erased (off, or in standby), the qemu node gone.
      writeStack(undefined);
      const e0 = performance.now();
      await ooo(["deploy", stackFile]);
      const erase = (performance.now() - e0) / 1000;
      const f = figures(report.timeline, scenario, run, command, boots, erase, load);
      results.push(f);
      process.stderr.write(`${scenario}, run ${run}: ${f.seconds}s power-off to working, ${boots} firmware boot${boots === 1 ? "" : "s"} (load ${f.load}; removed in ${f.erase}s)\n`);
      for (const n of report.timeline.nodes) process.stderr.write(`  ${n.node}: ${timelineLine(n)}\n`);
    }
  }
} finally {
  await oooIn(bed.netns, ["delete", stackFile, "--purge"]).catch(() => {});
  await bed.destroy();
}

process.stderr.write(
  "\n" +
    table(
      ["scenario", "run", "power-off→working s", "firmware boots", "to power-on s", "ramdisk boot s", "image write s", "write→boot s", "node boot s", "ooo deploy s", "removal s", "load"],
      results.map((f) => [f.scenario, f.run, f.seconds, f.firmwareBoots, f.beforePowerOn, f.ramdiskBoot, f.write, f.afterWrite, f.nodeBoot, f.command, f.erase, f.load]),
    ) +
    "\n",
);
const of = (scenario: Case, k: keyof Run) => {
  const xs = results.filter((r) => r.scenario === scenario).map((r) => r[k] as number);
  return xs.length ? median(xs) : null;
};
const maxOf = (xs: (number | null)[]) => (xs.some((x) => x !== null) ? Math.max(...xs.filter((x): x is number => x !== null)) : null);
const ratio = (a: number | null, b: number | null) => (a === null || b === null ? null : Math.round((a / b) * 100) / 100);
const qemu = of("qemu", "seconds");
const summary = {
  bench: "baremetal",
  accel: "tcg",
  runs,
  image: kv.manifest.digest,
  cold_uefi_seconds: of("cold UEFI", "seconds"),
  cold_bios_seconds: of("cold BIOS", "seconds"),
  fast_track_seconds: of("fast track", "seconds"),
  three_cold_seconds: of("3 cold", "seconds"),
  qemu_seconds: qemu,
  cold_uefi_vs_qemu: ratio(of("cold UEFI", "seconds"), qemu),
  cold_bios_vs_qemu: ratio(of("cold BIOS", "seconds"), qemu),
  fast_track_vs_qemu: ratio(of("fast track", "seconds"), qemu),
  firmware_boots_cold: maxOf([of("cold UEFI", "firmwareBoots"), of("cold BIOS", "firmwareBoots")]),
  firmware_boots_three_cold: of("3 cold", "firmwareBoots"),
  firmware_boots_fast_track: of("fast track", "firmwareBoots"),
  ironic_cold_seconds: of("ironic", "seconds"),
  ironic_vs_cold_uefi: ratio(of("ironic", "seconds"), of("cold UEFI", "seconds")),
  firmware_boots_ironic: of("ironic", "firmwareBoots"),
  ramdisk_bytes: ramdiskBytes,
  cpus: { one_machine: cpusFor(1), three_machines: cpusFor(3), qemu_node: cpusFor(1) },
  ramdisk_mib: r1(ramdiskBytes / MiB),
  ramdisk_boot_seconds: { cold_uefi: of("cold UEFI", "ramdiskBoot"), cold_bios: of("cold BIOS", "ramdiskBoot"), ironic: of("ironic", "ramdiskBoot") },
  image_write_seconds: { cold_uefi: of("cold UEFI", "write"), cold_bios: of("cold BIOS", "write"), fast_track: of("fast track", "write"), qemu: of("qemu", "write"), ironic: of("ironic", "write") },
  node_boot_seconds: { cold_uefi: of("cold UEFI", "nodeBoot"), ironic: of("ironic", "nodeBoot") },
  // Ironic's own steps: before the power-on (its deploy step: the ramdisk's files, the BMC) and between the write and the disk's boot (tear down, power off, boot device, power on).
  ironic_before_power_on_seconds: of("ironic", "beforePowerOn"),
  ironic_after_write_seconds: of("ironic", "afterWrite"),
  removal_seconds: { cold: of("cold BIOS", "erase"), fast_track: of("fast track", "erase") },
  targets: { firmware_boots_cold: 1, firmware_boots_fast_track: 0, cold_vs_qemu: 1.5, fast_track_vs_qemu: 1.1, ramdisk_bytes: 64 * MiB },
  load_average: r1(median(results.map((r) => r.load))),
};
process.stderr.write(
  `\nmedian of ${runs}: cold UEFI ${summary.cold_uefi_seconds}s, cold BIOS ${summary.cold_bios_seconds}s, fast track ${summary.fast_track_seconds}s, ` +
    `3 cold ${summary.three_cold_seconds}s, the qemu driver ${qemu}s, through Ironic ${summary.ironic_cold_seconds}s; firmware boots: ${summary.firmware_boots_cold} cold (through Ironic: ${summary.firmware_boots_ironic}), ${summary.firmware_boots_fast_track} fast track; ` +
    `ramdisk ${summary.ramdisk_mib} MiB\n`,
);
process.stdout.write(JSON.stringify(summary) + "\n");
