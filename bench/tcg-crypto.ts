#!/usr/bin/env bun
/**
 * What a deploy ramdisk's crypto costs inside a TCG guest, by CPU model:
 * the node image booted directly (debug channel), its agent executable run
 * as bun (BUN_BE_BUN=1: the code a deploy ramdisk runs). Per model, median
 * of --runs each:
 *
 *   - 128 MiB in tmpfs hashed by bun with sha256 and with SHA-512/256 (the
 *     disk map's chunk hash, wire/disk-map.ts), and by coreutils' sha256sum;
 *   - 128 MiB downloaded by bun's fetch from a Bun.serve on this host over
 *     https (a CA of the run's own) and over plain http, through qemu's
 *     guestfwd as the deployer's services are reached;
 *   - the first ~32 MiB of the node image's disk pack (its zstd frames, as a
 *     deploy fetches them: lib/disk-pack.ts) decompressed frame by frame by
 *     bun (MB/s of output).
 *
 * The models: lib/qemu/machine.ts's TCG_CPU ("current", what nodes and the
 * bare-metal test bed run), the same with AES-NI and PCLMULQDQ ("aes-ni":
 * BoringSSL then takes AES-GCM for TLS, which TCG runs slower than
 * ChaCha20-Poly1305, the suite it takes without them), and the same without
 * AVX, AVX2 and SHA-NI ("no-avx").
 *
 *   bun bench/tcg-crypto.ts [--image .cache/test-images/node/node] [--runs 3] [--cpus 2] [--models current,aes-ni]
 *
 * Prints a table, then one JSON object of the figures as its last line.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ensureCa, ensureServerCert } from "../lib/certs.ts";
import { table } from "../lib/log.ts";
import { TCG_CPU } from "../lib/qemu/machine.ts";
import { Vm } from "../lib/qemu/vm.ts";
import { directCmdline, findImage, overlayDisk, removeRunDir, tempRunDir } from "../pipeline/boot.ts";
import { DiskMap } from "../wire/disk-map.ts";
import { flag, median } from "./figures.ts";

const runs = Number(flag("runs", "3"));
const cpus = Number(flag("cpus", "2"));
const imageBase = resolve(flag("image", resolve(import.meta.dir, "../.cache/test-images/node/node")));
const image = findImage(imageBase);
/** qemu applies a model's -feature after every +feature, whatever their order: "aes-ni" drops the minus instead. */
const withAes = TCG_CPU.split(",").filter((f) => f !== "-aes" && f !== "-pclmulqdq").join(",");
const MODELS = { current: TCG_CPU, "aes-ni": withAes, "no-avx": `${TCG_CPU},-avx,-avx2,-avx512f,-sha-ni` };
const models = flag("models", "current,aes-ni").split(",") as (keyof typeof MODELS)[];
for (const m of models) if (!MODELS[m]) throw new Error(`--models: ${m} is not one of ${Object.keys(MODELS).join(", ")}`);
const MiB = 128;
const HASHES = ["sha256", "sha512-256"] as const;
const TRANSFERS = ["https", "http"] as const;
/** Where the guest reaches the servers (qemu's user network forwards them to this host). */
const GUEST = { https: "10.0.2.100", http: "10.0.2.101" };

const bunHash = (alg: string) =>
  `const c=require("node:crypto"),b=require("node:fs").readFileSync("/dev/shm/x"),t=performance.now();c.createHash("${alg}").update(b).digest("hex");console.log("MBPS",(b.length/1e6/((performance.now()-t)/1000)).toFixed(1))`;
const bunFetch = (url: string) =>
  `const t=performance.now();const r=await fetch("${url}",{tls:{ca:require("node:fs").readFileSync("/tmp/ca.pem","utf8")}});let n=0;for await(const c of r.body)n+=c.length;console.log("MBPS",(n/1e6/((performance.now()-t)/1000)).toFixed(1))`;

type Series = Record<string, number[]>;
type Result = { figures: Series; errors: string[]; boot_s: number; flags: string };
const results: Record<string, Result> = {};

// The servers: 128 MiB of random bytes over https (a CA of this run's) and over http.
const certDir = mkdtempSync(join(tmpdir(), "ooo-tcg-crypto-"));
const ca = await ensureCa(join(certDir, "ca"), "tcg-crypto bench");
const cert = await ensureServerCert(ca, join(certDir, "ca"), "server", [GUEST.https]);
const body = randomBytes(MiB * 2 ** 20);
// The pack's first frames, up to ~32 MiB of them, and their lengths (an image built before packs has none).
const frames: number[] = [];
let pack: Uint8Array | undefined;
if (existsSync(`${imageBase}.disk-pack`)) {
  let packBytes = 0;
  for (const c of DiskMap.parse(JSON.parse(readFileSync(`${imageBase}.disk-map.json`, "utf8"))).chunks)
    if (c.packed && packBytes < 32 * 2 ** 20) {
      frames.push(c.packed.length);
      packBytes += c.packed.length;
    }
  pack = readFileSync(`${imageBase}.disk-pack`).subarray(0, packBytes);
}
const serve = (req: Request) => new Response(new URL(req.url).pathname === "/pack" && pack ? pack : body);
const servers = {
  https: Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { cert: Bun.file(cert.cert), key: Bun.file(cert.key) }, fetch: serve }),
  http: Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: serve }),
};
const bunUnpack = `const r=await fetch("http://${GUEST.http}/pack");const z=new Uint8Array(await r.arrayBuffer());let o=0,n=0;const t=performance.now();for(const l of ${JSON.stringify(frames)}){n+=Bun.zstdDecompressSync(z.subarray(o,o+l)).length;o+=l}console.log("MBPS",(n/1e6/((performance.now()-t)/1000)).toFixed(1))`;

try {
  for (const model of models) {
    const cpu = MODELS[model];
    const runDir = tempRunDir("ooo-tcg-crypto-");
    let vm: Vm | undefined;
    try {
      vm = await Vm.start({
        name: `crypto-${model}`,
        dir: runDir,
        accel: "tcg",
        cpus,
        memoryMiB: 1024,
        disk: await overlayDisk(image, runDir),
        debugChannel: true,
        kernel: { ...image.kernel!, append: directCmdline(image.manifest, ["ooo.debug-channel=1"]) },
        guestForwards: TRANSFERS.map((t) => ({ ip: GUEST[t], port: t === "https" ? 443 : 80, command: `socat STDIO TCP:127.0.0.1:${servers[t].port}` })),
        extraArgs: ["-cpu", cpu],
      });
      const { seconds } = await vm.waitFor(/OOO-READY /, 300_000);
      const sh = (cmd: string) => vm!.channel!.exec(cmd, 600_000);
      const flags = (await sh("grep -m1 -o -w -E 'aes|pclmulqdq|avx|avx2|sha_ni' /proc/cpuinfo | sort -u | tr '\\n' ' '")).output.trim();
      process.stderr.write(`${model} (-cpu ${cpu}): booted in ${seconds.toFixed(1)} s; guest flags: ${flags}\n`);
      await sh(`dd if=/dev/urandom of=/dev/shm/x bs=1M count=${MiB} status=none`);
      await sh(`echo ${readFileSync(ca.cert).toString("base64")} | base64 -d > /tmp/ca.pem`);
      const r: Result = (results[model] = { figures: {}, errors: [], boot_s: Number(seconds.toFixed(1)), flags });
      const bun = async (name: string, script: string) => {
        const out = await sh(`BUN_BE_BUN=1 /usr/local/bin/ooo-agent -e '${script}' 2>&1`);
        const m = /MBPS ([\d.]+)/.exec(out.output);
        if (m) (r.figures[name] ??= []).push(Number(m[1]));
        else r.errors.push(`${name}: ${out.output.replace(/\x1b\[[0-9;]*m/g, "").trim().split("\n").slice(-8).join(" ").slice(0, 600) || `exit ${out.status}`}`);
      };
      for (let i = 0; i < runs; i++) {
        for (const alg of HASHES) await bun(`bun ${alg}`, bunHash(alg));
        const sum = await sh(`s=$(date +%s%N); sha256sum /dev/shm/x >/dev/null; e=$(date +%s%N); echo NS $((e-s))`);
        (r.figures["sha256sum"] ??= []).push(Number(((MiB * 2 ** 20) / 1e6 / (Number(/NS (\d+)/.exec(sum.output)![1]) / 1e9)).toFixed(1)));
        for (const t of TRANSFERS) await bun(`fetch ${t}`, bunFetch(`${t}://${GUEST[t]}/`));
        if (pack) await bun("zstd -d", bunUnpack);
        else r.errors.push(`zstd -d: ${imageBase}.disk-pack is missing (an image built before disk packs)`);
      }
    } finally {
      await vm?.kill();
      removeRunDir(runDir);
    }
  }
} finally {
  servers.https.stop(true);
  servers.http.stop(true);
  rmSync(certDir, { recursive: true, force: true });
}

const COLUMNS = ["bun sha256", "bun sha512-256", "sha256sum", "fetch https", "fetch http", "zstd -d"];
const figure = (xs: number[] | undefined) => (xs?.length ? median(xs) : null);
const key = (column: string) => column.replace(/[^a-z0-9]+/g, "_");
const figures = {
  cpus,
  runs,
  mb: Number(((MiB * 2 ** 20) / 1e6).toFixed(1)),
  ...Object.fromEntries(
    Object.entries(results).flatMap(([model, r]) => [
      ...COLUMNS.map((c) => [`${key(model)}_${key(c)}_mb_s`, figure(r.figures[c])]),
      [`${key(model)}_boot_s`, r.boot_s],
      ...(r.errors.length ? [[`${key(model)}_errors`, r.errors]] : []),
    ]),
  ),
};
console.log(
  table(
    ["-cpu", ...COLUMNS.map((c) => `${c} (MB/s)`), "boot to ready (s)"],
    Object.entries(results).map(([model, r]) => [
      `${model}: ${MODELS[model as keyof typeof MODELS]}`,
      ...COLUMNS.map((c) => (r.figures[c]?.length ? `${figure(r.figures[c])} (${r.figures[c]!.join(" ")})` : "fails")),
      r.boot_s,
    ]),
  ),
);
for (const [model, r] of Object.entries(results)) for (const e of r.errors) process.stderr.write(`${model}: ${e}\n`);
console.log(JSON.stringify(figures));
