import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { makeConfigDrive } from "../../deployer/config-drive.ts";
import { bootAndWait, findImage, overlayDisk, removeRunDir, tempRunDir } from "../../pipeline/boot.ts";
import { CompletionSignal } from "../../wire/signal.ts";
import { buildTestImage } from "../support/images.ts";
import { requireCommand } from "../support/require.ts";

/**
 * The agents on a real node: the golden image boots in qemu with a config
 * drive that points its os-collect-config at a metadata server on this
 * host's loopback (reached only through a qemu guestfwd; restrict=on keeps
 * the guest off every other address). The collector pulls the metadata,
 * os-apply-config renders a file from it, a configure.d script runs, and the
 * completion signal arrives here.
 */
const GUEST_METADATA_IP = "10.0.2.100";
const TOKEN = "node-1-secret";

describe("node agents in a VM", () => {
  test("collect → apply → refresh → signal, from a metadata server on loopback", async () => {
    requireCommand("qemu-system-x86_64", "socat");
    const built = await buildTestImage("node");
    const image = findImage(built.base);
    const runDir = tempRunDir();
    let resolveSignal: (s: CompletionSignal) => void = () => {};
    const signalArrived = new Promise<CompletionSignal>((r) => (resolveSignal = r));
    const requests: string[] = [];
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const url = new URL(req.url);
        requests.push(`${req.method} ${url.pathname}`);
        if (req.headers.get("authorization") !== `Bearer ${TOKEN}`) return new Response("no", { status: 401 });
        if (req.method === "GET" && url.pathname === "/v1/nodes/node-1/metadata") {
          return Response.json({
            ooo: {
              version: 1,
              node: "node-1",
              role: "demo",
              serial: 1,
              image: { name: "node", digest: built.manifest.digest },
              signal_url: `http://${GUEST_METADATA_IP}/v1/nodes/node-1/signal`,
            },
            greeting: { name: "world" },
          });
        }
        if (req.method === "POST" && url.pathname === "/v1/nodes/node-1/signal") {
          resolveSignal(CompletionSignal.parse(await req.json()));
          return new Response(null, { status: 204 });
        }
        return new Response("not found", { status: 404 });
      },
    });
    try {
      const drive = join(runDir, "config-drive.img");
      await makeConfigDrive(drive, {
        "os-collect-config": {
          collectors: ["config-drive", "heat"],
          polling_interval: 5,
          heat: { metadata_url: `http://${GUEST_METADATA_IP}`, node: "node-1", token: TOKEN },
        },
      });
      const disk = await overlayDisk(image, runDir);
      const node = await bootAndWait({
        image,
        mode: "direct",
        disk,
        runDir,
        consoleLog: join(runDir, "console.log"),
        accel: "tcg",
        debugChannel: true,
        extraDisks: [{ file: drive, format: "raw", readOnly: true }],
        guestForwards: [{ ip: GUEST_METADATA_IP, port: 80, command: `socat STDIO TCP:127.0.0.1:${server.port}` }],
      });
      try {
        const signal = await Promise.race([
          signalArrived,
          Bun.sleep(180_000).then(() => {
            throw new Error(`no completion signal within 180 s; requests seen: ${requests.join(", ") || "none"}`);
          }),
        ]);
        expect(signal.status).toBe("SUCCESS");
        expect(requests).toContain("GET /v1/nodes/node-1/metadata");
        const sh = (cmd: string) => node.vm.channel!.exec(cmd);
        expect((await sh("cat /etc/ooo-demo/greeting")).output).toBe("hello world from node-1 (role demo)\n");
        expect((await sh("cat /run/ooo-demo/configured")).output).toBe("hello world from node-1 (role demo)\n");
        // What the issue asks us to report: the agent binary's size and start-up time in a TCG guest.
        const size = Number((await sh("stat -Lc %s /usr/local/bin/ooo-agent")).output.trim());
        const startup = await sh("s=$(date +%s%N); /usr/local/bin/os-apply-config --help >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))");
        process.stderr.write(`ooo-agent in the TCG guest: ${(size / 2 ** 20).toFixed(1)} MiB, os-apply-config --help in ${startup.output.trim()} ms\n`);
        expect(size).toBeGreaterThan(0);
      } finally {
        await node.vm.kill();
      }
    } finally {
      server.stop(true);
      removeRunDir(runDir);
    }
  }, 12 * 60_000);
});
