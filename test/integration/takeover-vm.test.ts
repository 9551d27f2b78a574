import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { makeConfigDrive } from "../../deployer/config-drive.ts";
import { publish } from "../../pipeline/publish.ts";
import { bootAndWait, findImage, overlayDisk, removeRunDir, tempRunDir } from "../../pipeline/boot.ts";
import { READY_MARKER } from "../../wire/ready-report.ts";
import { CompletionSignal } from "../../wire/signal.ts";
import { buildTestImage } from "../support/images.ts";
import { requireCommand } from "../support/require.ts";
import { READ_TOKEN, startStore } from "../support/store.ts";

/**
 * The node side of an in-place upgrade, without the deployer: a node booted
 * through its own GRUB from image v1 is handed metadata that names v2 (one
 * more package) and a store holding it. It must fetch only what it lacks,
 * write slot B, reboot into it on trial, get configured, mark it good and
 * say so in its signal.
 */
const METADATA_IP = "10.0.2.100";
const STORE_IP = "10.0.2.101";
const TOKEN = "upgrade-node-secret";

describe("in-place upgrade on the node", () => {
  test("v1 → v2: only the missing chunks travel, slot B boots on trial and is marked good", async () => {
    requireCommand("qemu-system-x86_64", "socat");
    const [v1, v2] = await Promise.all([buildTestImage("node"), buildTestImage("node-v2")]);
    expect(v2.manifest.digest).not.toBe(v1.manifest.digest);
    const store = await startStore();
    const runDir = tempRunDir();
    const signals: CompletionSignal[] = [];
    const progress: { phase: string; bytes_done?: number }[] = [];
    let notify = () => {};
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
              role: "demo",
              serial: 2,
              image: { name: "node", digest: v2.manifest.digest },
              signal_url: `http://${METADATA_IP}/v1/nodes/n1/signal`,
              store: { url: `http://${STORE_IP}`, token: READ_TOKEN },
            },
            greeting: { name: "upgrade" },
          });
        if (req.method === "GET") process.stderr.write(`node: GET ${url.pathname}\n`);
        if (req.method === "POST" && url.pathname === "/v1/nodes/n1/signal") {
          signals.push(CompletionSignal.parse(await req.json()));
          const s = signals.at(-1)!;
          process.stderr.write(`node: signal ${s.status} ${s.reason} ${JSON.stringify(s.data.node_state)} ${JSON.stringify(s.data.upgrade)}\n${s.data.deploy_stderr.split("\n").slice(-15).join("\n")}\n`);
          notify();
          return new Response(null, { status: 204 });
        }
        if (req.method === "POST" && url.pathname === "/v1/nodes/n1/progress") {
          progress.push((await req.json()) as { phase: string });
          process.stderr.write(`node: progress ${JSON.stringify(progress.at(-1))}\n`);
          return new Response(null, { status: 204 });
        }
        return new Response("not found", { status: 404 });
      },
    });
    const waitForSignal = async (pred: (s: CompletionSignal) => boolean, seconds: number) => {
      const deadline = Date.now() + seconds * 1000;
      for (;;) {
        const s = signals.find(pred);
        if (s) return s;
        if (Date.now() > deadline) throw new Error(`no matching signal within ${seconds} s; signals: ${JSON.stringify(signals.map((x) => [x.status, x.reason, x.data.node_state]))}; progress: ${JSON.stringify(progress)}`);
        await new Promise<void>((r) => {
          notify = r;
          setTimeout(r, 2000);
        });
      }
    };
    try {
      const published = await publish({ client: store.client, output: v2.base.replace(/node$/, "node") });
      expect(published.digest).toBe(v2.manifest.digest);
      const drive = join(runDir, "config-drive.img");
      await makeConfigDrive(drive, {
        "os-collect-config": { collectors: ["config-drive", "heat"], polling_interval: 5, heat: { metadata_url: `http://${METADATA_IP}`, node: "n1", token: TOKEN } },
      });
      const image = findImage(v1.base);
      const disk = await overlayDisk(image, runDir);
      const node = await bootAndWait({
        image,
        mode: "disk",
        disk,
        runDir,
        consoleLog: join(runDir, "console.log"),
        accel: "tcg",
        memoryMiB: 1536,
        extraDisks: [{ file: drive, format: "raw", readOnly: true }],
        guestForwards: [
          { ip: METADATA_IP, port: 80, command: `socat STDIO TCP:127.0.0.1:${server.port}` },
          { ip: STORE_IP, port: 80, command: `socat STDIO TCP:${new URL(store.url).host}` },
        ],
        timeoutSeconds: 300,
      });
      try {
        expect(node.report.slot).toBe("A");
        // The takeover reboots the node; the next ready line comes from slot B.
        const rebooted = await node.vm.waitFor(READY_MARKER, 900_000, node.vm.console.lastIndexOf("OOO-READY") + 10);
        expect(JSON.parse(rebooted.match[1]!).slot).toBe("B");
        const done = await waitForSignal((s) => s.data.node_state?.slot === "B" && s.data.node_state.good, 300);
        expect(done.status).toBe("SUCCESS");
        expect(done.data.node_state?.digest).toBe(v2.manifest.digest);
        const upgrade = done.data.upgrade!;
        expect(upgrade.result).toBe("upgraded");
        expect(upgrade.from).toBe(v1.manifest.digest);
        const share = upgrade.bytes_fetched! / upgrade.image_bytes!;
        process.stderr.write(`upgrade fetched ${upgrade.bytes_fetched} of ${upgrade.image_bytes} bytes (${(share * 100).toFixed(2)}%) in ${upgrade.seconds} s\n`);
        expect(share).toBeLessThan(0.1);
        expect(progress.map((p) => p.phase)).toEqual(expect.arrayContaining(["fetching", "writing", "switching", "rebooting"]));
      } finally {
        await node.vm.kill();
      }
    } finally {
      server.stop(true);
      await store.stop();
      removeRunDir(runDir);
    }
  }, 25 * 60_000);
});
