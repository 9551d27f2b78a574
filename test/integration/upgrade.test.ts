import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { buildTestImage, ooo, REPO } from "../support/images.ts";
import { readProgress } from "../support/progress.ts";
import { redis } from "../support/redis.ts";
import { requireCommand, requireRoot } from "../support/require.ts";

/**
 * In-place upgrades with the deployer, on three qemu nodes running redis
 * (fixtures/stacks/kv.yaml: max_batch_size 1, min_in_service 2), their data
 * on the state partition. The pipeline moves the tag the role follows;
 * `ooo upgrade` does the rest:
 * - v1 → v2 (one more package): every node upgrades, only a few percent of
 *   the image travels, a poller sees at least two nodes answer at every
 *   moment, every node's data is still there;
 * - v2 → v3 (whose configure.d script fails): the first node's trial boot
 *   fails, it rolls back by itself and is reported with the script's name,
 *   the upgrade stops there, the others keep v2, and the data survives.
 */
const dir = mkdtempSync(join(tmpdir(), "ooo-upgrade-test-"));
const stackFile = join(dir, "kv.yaml");
const stateDir = join(dir, ".ooo", "kv");
const CLEAN_ENV = { ...process.env, NO_COLOR: "1", OOO_STORE_URL: "", OOO_STORE_TOKEN: "" } as Record<string, string>;
const NODES = ["cache-0", "cache-1", "cache-2"];

afterAll(async () => {
  if (existsSync(join(stateDir, "state.db"))) await ooo(["delete", stackFile], { env: CLEAN_ENV });
  for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${p}/cmdline`, "utf8").includes(stateDir)) process.kill(Number(p), "SIGKILL");
    } catch {}
  }
  rmSync(dir, { recursive: true, force: true });
});

interface UpgradeJson {
  nodes: { node: string; from?: string; to: string; result: string; reason?: string; bytesFetched?: number; imageBytes?: number; seconds: number; method?: string; restart?: string; verified?: string }[];
  stoppedAt?: { role: string; batch: number };
}

async function upgradeJson(progressFile?: string) {
  const r = await ooo(["upgrade", stackFile, "--json", ...(progressFile ? ["--progress-file", progressFile] : [])], { env: CLEAN_ENV });
  const last = r.stdout.trim().split("\n").at(-1) ?? "";
  return { ...r, report: last.startsWith("{") ? (JSON.parse(last) as UpgradeJson) : undefined };
}

async function endpoints(): Promise<Record<string, string>> {
  const r = await ooo(["status", stackFile, "--json"], { env: CLEAN_ENV });
  const status = JSON.parse(r.stdout) as { nodes: { node: string; driver?: Record<string, string> }[] };
  return Object.fromEntries(status.nodes.map((n) => [n.node, n.driver?.["port 6379"] ?? ""]));
}

/** Ask every node's redis twice a second; remember the fewest that answered at once. */
function startPoller(eps: Record<string, string>) {
  let running = true;
  let fewest = NODES.length;
  let rounds = 0;
  const loop = (async () => {
    while (running) {
      const answers = await Promise.all(Object.values(eps).map((ep) => redis(ep, "PING", 1500).then((r) => r === "+PONG", () => false)));
      const up = answers.filter(Boolean).length;
      fewest = Math.min(fewest, up);
      rounds++;
      await Bun.sleep(500);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { fewest, rounds };
    },
  };
}

describe("ooo upgrade on qemu nodes", () => {
  test(
    "v1 → v2 rolling with two nodes always serving and data kept; v3 rolls back by itself and is reported",
    async () => {
      requireRoot();
      requireCommand("qemu-system-x86_64", "socat", "mkfs.ext4", "sfdisk");
      const [v1, v2, v3] = await Promise.all([buildTestImage("kv-v1"), buildTestImage("kv-v2"), buildTestImage("kv-v3")]);
      // Signed images on a stack that trusts the key: the nodes upgrade by the signed entries
      // (takeover-vm.test covers the unsigned way, the whole root hashed).
      const key = join(dir, "kv-key");
      if ((await ooo(["key", "generate", key, "--unencrypted"], { env: CLEAN_ENV })).code !== 0) throw new Error("ooo key generate failed");
      const stack = parseDocument(readFileSync(join(REPO, "fixtures/stacks/kv.yaml"), "utf8"));
      stack.set("trust", { keys: [`${key}.pub`] });
      writeFileSync(stackFile, stack.toString());
      const env = await ooo(["store-env", stackFile], { env: CLEAN_ENV });
      const storeEnv = { ...CLEAN_ENV, ...Object.fromEntries([...env.stdout.matchAll(/export (\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])) };
      for (const [image, version] of [[v1, "1"], [v2, "2"], [v3, "3"]] as const) {
        const progress = version === "2" ? ["--progress-file", join(dir, "publish.jsonl")] : [];
        const pub = await ooo(["publish", image.base, "--image-version", version, "--sign", `${key}.key`, ...progress], { env: storeEnv });
        if (pub.code !== 0) throw new Error(`publishing v${version} failed:\n${pub.stderr}`);
      }
      const promote = async (version: string) => {
        const r = await ooo(["promote", "kv", version, "--tag", "live"], { env: storeEnv });
        if (r.code !== 0) throw new Error(`promote v${version} failed:\n${r.stderr}`);
      };

      // --- v1 everywhere, with data ---
      await promote("1");
      const deployed = await ooo(["deploy", stackFile, "--progress-file", join(dir, "deploy.jsonl")], { env: CLEAN_ENV });
      if (deployed.code !== 0) throw new Error(`deploy failed:\n${deployed.stderr}`);
      const eps = await endpoints();
      for (const n of NODES) {
        expect(eps[n]).toMatch(/^127\.0\.0\.1:\d+$/);
        expect(await redis(eps[n]!, `SET precious kept-by-${n}`)).toBe("+OK");
      }

      // --- v2, one node at a time, two always serving ---
      await promote("2");
      const poller = startPoller(eps);
      const up2 = await upgradeJson(join(dir, "upgrade.jsonl"));
      const polled = await poller.stop();
      if (up2.code !== 0) throw new Error(`the v2 upgrade failed:\n${up2.stderr}`);
      expect(up2.report!.nodes.map((n) => [n.node, n.result])).toEqual([
        ["cache-2", "upgraded"],
        ["cache-1", "upgraded"],
        ["cache-0", "upgraded"],
      ]);
      for (const n of up2.report!.nodes) {
        expect(n.from).toBe(v1.manifest.digest);
        expect(n.to).toBe(v2.manifest.digest);
        expect(n.bytesFetched! / n.imageBytes!).toBeLessThan(0.1);
        expect(n.method).toBe("patched");
        expect(n.verified).toBe("signed-entries");
        // The same kernel in both images: started by the running one, no firmware or GRUB.
        expect(n.restart).toBe("kexec");
      }
      process.stderr.write(`poller: ${polled.rounds} rounds, at least ${polled.fewest} of 3 nodes answered at every moment\n`);
      expect(polled.rounds).toBeGreaterThan(20);
      expect(polled.fewest).toBeGreaterThanOrEqual(2);
      for (const n of NODES) expect(await redis(eps[n]!, "GET precious")).toBe(`kept-by-${n}`);
      expect(up2.stderr).toContain("timeline chart:");

      // The progress streams (--progress-file) of publish, deploy and upgrade: whole, paired, with bytes where data moved.
      const ended = (file: string) => readProgress(join(dir, file)).filter((e) => e.kind === "end");
      expect(ended("publish.jsonl").find((e) => e.step.startsWith("publish "))?.bytes).toBeGreaterThan(0);
      expect(ended("deploy.jsonl").filter((e) => /^cache-\d: fetch /.test(e.step)).some((e) => (e.bytes ?? 0) > 0)).toBe(true);
      const upgradeEvents = readProgress(join(dir, "upgrade.jsonl"));
      expect(upgradeEvents.filter((e) => e.kind === "end" && e.step.startsWith("cache: batch ")).length).toBe(3);
      expect(upgradeEvents.some((e) => e.kind === "progress" && e.text.startsWith("cache-"))).toBe(true);

      // --- v3 cannot be configured: the first node rolls back, the upgrade stops ---
      await promote("3");
      const up3 = await upgradeJson();
      expect(up3.code).not.toBe(0);
      const first = up3.report!.nodes[0]!;
      expect(first.node).toBe("cache-2");
      expect(first.result).toBe("rolled-back");
      expect(first.reason).toContain("configure.d/70-broken-configure");
      expect(up3.report!.nodes.length).toBe(1);
      expect(up3.report!.stoppedAt).toEqual({ role: "cache", batch: 1 });
      expect(up3.stderr).toMatch(/cache-2: rolled-back: .*70-broken-configure/);
      const status = JSON.parse((await ooo(["status", stackFile, "--json"], { env: CLEAN_ENV })).stdout) as { nodes: { node: string; digest?: string }[] };
      expect(status.nodes.map((n) => [n.node, n.digest]).sort()).toEqual(NODES.map((n) => [n, v2.manifest.digest]));
      for (const n of NODES) expect(await redis(eps[n]!, "GET precious")).toBe(`kept-by-${n}`);
    },
    60 * 60_000,
  );
});
