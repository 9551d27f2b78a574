import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { makeConfigDrive } from "../../deployer/config-drive.ts";
import { Vm } from "../../lib/qemu/vm.ts";
import { findImage, overlayDisk, removeRunDir, tempRunDir } from "../../pipeline/boot.ts";
import { publish } from "../../pipeline/publish.ts";
import { READY_MARKER, ReadyReport } from "../../wire/ready-report.ts";
import { CompletionSignal } from "../../wire/signal.ts";
import { buildTestImage } from "../support/images.ts";
import { redis } from "../support/redis.ts";
import { requireCommand } from "../support/require.ts";
import { READ_TOKEN, startStore } from "../support/store.ts";

/**
 * Power loss during an in-place upgrade, on one node booting through its own
 * GRUB (no deployer: this test holds the plug). The node runs redis, its
 * data on the state partition. Its metadata is switched from v1 to v2, and
 * the power is cut (qemu quits, no shutdown) at each dangerous point:
 *   1. while it fetches,  2. while it writes the new slot,
 *   3. right after it armed the new slot,  4. during the new root's trial boot.
 * After every cut it must boot a complete root (old or new) with its data
 * unchanged, and carry on by itself until v2 runs and is marked good.
 */
const METADATA_IP = "10.0.2.100";
const STORE_IP = "10.0.2.101";
const TOKEN = "power-cut-secret";

describe("in-place upgrade: power cuts", () => {
  test("a cut while fetching, while writing, after the switch and during the trial boot: data kept, v2 reached", async () => {
    requireCommand("qemu-system-x86_64", "socat");
    const [v1, v2] = await Promise.all([buildTestImage("kv-v1"), buildTestImage("kv-v2")]);
    const store = await startStore();
    const runDir = tempRunDir();
    const signals: CompletionSignal[] = [];
    const progress: { phase: string }[] = [];
    let wanted = v1.manifest.digest;
    let serial = 1;
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const url = new URL(req.url);
        if (req.headers.get("authorization") !== `Bearer ${TOKEN}`) return new Response("no", { status: 401 });
        if (req.method === "GET" && url.pathname === "/v1/nodes/n1/metadata")
          return Response.json({
            ooo: {
              version: 1,
              node: "n1",
              role: "kv",
              serial,
              image: { name: "kv", digest: wanted },
              signal_url: `http://${METADATA_IP}/v1/nodes/n1/signal`,
              store: { url: `http://${STORE_IP}`, token: READ_TOKEN },
            },
            redis: { port: 6379 },
          });
        if (req.method === "POST" && url.pathname === "/v1/nodes/n1/signal") {
          signals.push(CompletionSignal.parse(await req.json()));
          return new Response(null, { status: 204 });
        }
        if (req.method === "POST" && url.pathname === "/v1/nodes/n1/progress") {
          progress.push((await req.json()) as { phase: string });
          return new Response(null, { status: 204 });
        }
        return new Response("not found", { status: 404 });
      },
    });
    const until = async <T>(what: string, seconds: number, check: () => T | undefined | Promise<T | undefined>): Promise<T> => {
      for (const deadline = Date.now() + seconds * 1000; ; await Bun.sleep(250)) {
        const v = await check();
        if (v !== undefined) return v;
        if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds}s; progress ${JSON.stringify(progress.map((p) => p.phase))}`);
      }
    };
    let vm: Vm | undefined;
    try {
      await publish({ client: store.client, output: v1.base });
      await publish({ client: store.client, output: v2.base });
      const drive = join(runDir, "config-drive.img");
      await makeConfigDrive(drive, {
        "os-collect-config": { collectors: ["config-drive", "heat"], polling_interval: 3, heat: { metadata_url: `http://${METADATA_IP}`, node: "n1", token: TOKEN } },
      });
      const image = findImage(v1.base);
      const disk = await overlayDisk(image, runDir);
      const redisPort = await freePort();
      const endpoint = `127.0.0.1:${redisPort}`;
      let boots = 0;
      const powerOn = async () => {
        boots++;
        vm = await Vm.start({
          name: `power-cut-${boots}`,
          dir: runDir,
          disk,
          accel: "tcg",
          memoryMiB: 1536,
          cpus: 2,
          consoleLog: join(runDir, `console-${boots}.log`),
          extraDisks: [{ file: drive, format: "raw", readOnly: true }],
          guestForwards: [
            { ip: METADATA_IP, port: 80, command: `socat STDIO TCP:127.0.0.1:${server.port}` },
            { ip: STORE_IP, port: 80, command: `socat STDIO TCP:${new URL(store.url).host}` },
          ],
          hostForwards: [{ hostPort: redisPort, guestPort: 6379 }],
        });
      };
      const ready = async () => ReadyReport.parse(JSON.parse((await vm!.waitFor(READY_MARKER, 600_000)).match[1]!));
      const dataKept = () => until("redis answering with the data", 600, () => redis(endpoint, "GET precious").then((v) => (v === "kept" ? v : undefined), () => undefined));
      const cutAt = async (phase: string) => {
        const seen = progress.length;
        await until(`progress ${phase}`, 900, () => (progress.slice(seen).some((p) => p.phase === phase) ? true : undefined));
        await vm!.kill(); // the plug, not a shutdown
      };

      // v1, configured, with data.
      await powerOn();
      expect((await ready()).slot).toBe("A");
      await until("the first signal", 600, () => signals.find((s) => s.status === "SUCCESS"));
      expect(await redis(endpoint, "SET precious kept")).toBe("+OK");
      // The data must be on disk before any cut: appendfsync always.

      // Now the metadata names v2.
      wanted = v2.manifest.digest;
      serial = 2;

      // 1. Cut while fetching; 2. while writing: the old root boots, data intact, the node starts over.
      for (const phase of ["fetching", "writing"]) {
        await cutAt(phase);
        await powerOn();
        expect((await ready()).slot).toBe("A");
        await dataKept();
      }
      // 3. Cut right after the switch: the bootloader tries the new root...
      await cutAt("rebooting");
      await powerOn();
      await vm!.waitFor(/ooo: booting slot B from \S+ trial=1/, 300_000);
      // 4. ...and a cut during that trial boot, before it was marked good, brings the old root back.
      await vm!.kill();
      await powerOn();
      expect((await ready()).slot).toBe("A");
      await dataKept();
      // It finishes the job by itself: v2 runs, marked good, data kept.
      const done = await until("the upgraded signal", 1200, () =>
        signals.find((s) => s.status === "SUCCESS" && s.data.node_state?.digest === v2.manifest.digest && s.data.node_state.good),
      );
      expect(done.data.upgrade?.result).toBe("upgraded");
      await dataKept();
    } finally {
      await vm?.kill();
      server.stop(true);
      await store.stop();
      removeRunDir(runDir);
    }
  }, 60 * 60_000);
});

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}
