#!/usr/bin/env bun
/**
 * Hash throughput inside a TCG guest, by CPU model: the node image booted
 * directly (debug channel), 128 MiB in tmpfs hashed by bun (the agent's
 * executable run as bun: BUN_BE_BUN=1, the code a deploy ramdisk hashes
 * with) with sha256 and with SHA-512/256 (the disk map's chunk hash,
 * wire/disk-map.ts), and by coreutils' sha256sum, median of 3 each. The models: the
 * one lib/qemu/machine.ts uses, and the same without AVX, AVX2, AVX-512
 * and SHA-NI (BoringSSL then takes its SSSE3 code, which TCG runs faster;
 * qemu 7.2's TCG offers AVX and AVX2 but neither AVX-512 nor SHA-NI).
 *
 *   bun bench/tcg-sha256.ts [--image .cache/test-images/node/node] [--runs 3] [--cpus 2] [--models current,no-avx]
 *
 * Prints a table, then one JSON object of the figures as its last line.
 */
import { resolve } from "node:path";
import { table } from "../lib/log.ts";
import { Vm } from "../lib/qemu/vm.ts";
import { directCmdline, findImage, overlayDisk, removeRunDir, tempRunDir } from "../pipeline/boot.ts";
import { flag, median } from "./figures.ts";

const runs = Number(flag("runs", "3"));
const cpus = Number(flag("cpus", "2"));
const image = findImage(resolve(flag("image", resolve(import.meta.dir, "../.cache/test-images/node/node"))));
/** machine.ts's TCG model, then that without the vector and SHA extensions (a later -cpu wins in qemu). */
const MODELS = { current: "max,-erms,-fsrm", "no-avx": "max,-erms,-fsrm,-avx,-avx2,-avx512f,-sha-ni" };
const models = flag("models", Object.keys(MODELS).join(",")).split(",") as (keyof typeof MODELS)[];
const MiB = 128;
/** Hashes bun runs: the agent's whole-disk and store hash, and the disk map's chunk hash. */
const ALGORITHMS = ["sha256", "sha512-256"] as const;
const bunHash = (alg: string) =>
  `const c=require("node:crypto"),b=require("node:fs").readFileSync("/dev/shm/x"),t=performance.now();c.createHash("${alg}").update(b).digest("hex");console.log("MBPS",(b.length/1e6/((performance.now()-t)/1000)).toFixed(1))`;

type Result = { bun: Record<(typeof ALGORITHMS)[number], number[]>; sha256sum: number[]; bunError?: string; boot_s: number };
const results: Record<string, Result> = {};

for (const model of models) {
  const cpu = MODELS[model];
  if (!cpu) throw new Error(`--models: ${model} is not one of ${Object.keys(MODELS).join(", ")}`);
  const runDir = tempRunDir("ooo-tcg-sha256-");
  let vm: Vm | undefined;
  try {
    vm = await Vm.start({
      name: `sha256-${model}`,
      dir: runDir,
      accel: "tcg",
      cpus,
      memoryMiB: 1024,
      disk: await overlayDisk(image, runDir),
      debugChannel: true,
      kernel: { ...image.kernel!, append: directCmdline(image.manifest, ["ooo.debug-channel=1"]) },
      extraArgs: ["-cpu", cpu],
    });
    const { seconds } = await vm.waitFor(/OOO-READY /, 300_000);
    const sh = (cmd: string) => vm!.channel!.exec(cmd, 300_000);
    const flags = (await sh("grep -m1 -o -w -E 'avx|avx2|sha_ni|ssse3' /proc/cpuinfo | sort -u | tr '\\n' ' '")).output.trim();
    process.stderr.write(`${model} (-cpu ${cpu}): booted in ${seconds.toFixed(1)} s; guest flags: ${flags}\n`);
    await sh(`dd if=/dev/urandom of=/dev/shm/x bs=1M count=${MiB} status=none`);
    const r: Result = (results[model] = { bun: { sha256: [], "sha512-256": [] }, sha256sum: [], boot_s: Number(seconds.toFixed(1)) });
    for (let i = 0; i < runs; i++) {
      for (const alg of ALGORITHMS) {
        const bun = await sh(`BUN_BE_BUN=1 /usr/local/bin/ooo-agent -e '${bunHash(alg)}' 2>&1`);
        const m = /MBPS ([\d.]+)/.exec(bun.output);
        if (m) r.bun[alg].push(Number(m[1]));
        else r.bunError = bun.output.trim().split("\n").slice(-2).join(" ").slice(0, 200) || `exit ${bun.status}`;
      }
      const sum = await sh(`s=$(date +%s%N); sha256sum /dev/shm/x >/dev/null; e=$(date +%s%N); echo NS $((e-s))`);
      r.sha256sum.push(Number(((MiB * 2 ** 20) / 1e6 / (Number(/NS (\d+)/.exec(sum.output)![1]) / 1e9)).toFixed(1)));
    }
  } finally {
    await vm?.kill();
    removeRunDir(runDir);
  }
}

const figure = (xs: number[]) => (xs.length ? median(xs) : null);
const figures = {
  cpus,
  runs,
  mb: Number(((MiB * 2 ** 20) / 1e6).toFixed(1)),
  ...Object.fromEntries(
    Object.entries(results).flatMap(([model, r]) => [
      [`${model}_bun_mb_s`, figure(r.bun.sha256)],
      [`${model}_bun_sha512_256_mb_s`, figure(r.bun["sha512-256"])],
      [`${model}_sha256sum_mb_s`, figure(r.sha256sum)],
      [`${model}_boot_s`, r.boot_s],
      ...(r.bunError ? [[`${model}_bun_error`, r.bunError]] : []),
    ]),
  ),
};
console.log(
  table(
    ["-cpu", "bun sha256 (MB/s)", "bun SHA-512/256 (MB/s)", "sha256sum (MB/s)", "boot to ready (s)"],
    Object.entries(results).map(([model, r]) => [
      MODELS[model as keyof typeof MODELS],
      ...ALGORITHMS.map((alg) => (r.bun[alg].length ? `${figure(r.bun[alg])} (${r.bun[alg].join(" ")})` : `fails: ${r.bunError}`)),
      `${figure(r.sha256sum)} (${r.sha256sum.join(" ")})`,
      r.boot_s,
    ]),
  ),
);
console.log(JSON.stringify(figures));
