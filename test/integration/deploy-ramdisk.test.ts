import { describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { makeConfigDrive } from "../../deployer/config-drive.ts";
import { capture, run } from "../../lib/run.ts";
import { sha256File } from "../../lib/sparse.ts";
import { Vm } from "../../lib/qemu/vm.ts";
import { removeRunDir, tempRunDir } from "../../pipeline/boot.ts";
import { DEPLOY_VERSION, type Command } from "../../wire/deploy.ts";
import { DISK_MAP_ARTIFACT, DISK_PACK_ARTIFACT, DiskMap, mappedBytes, packedBytes } from "../../wire/disk-map.ts";
import { CompletionSignal } from "../../wire/signal.ts";
import { CONFIG_DRIVE_PARTITION_BYTES } from "../../wire/root-device.ts";
import { RAMDISK_TARGET_BYTES } from "../../builder/outputs/ramdisk.ts";
import { buildTestImage } from "../support/images.ts";
import { RamdiskPeer } from "../support/ramdisk-peer.ts";
import { requireCommand } from "../support/require.ts";

/**
 * The deploy ramdisk for real, without BMCs: qemu (TCG, SeaBIOS) boots the
 * ramdisk's kernel and initramfs directly, with two virtio disks — one too
 * small, one right, named by a serial hint — and user networking restricted
 * to one forward: 10.0.2.100:80, a small peer in this test that speaks
 * wire/deploy.ts (the deployer's side is not built yet) and serves the node
 * image's raw disk (by Range, as the store does), its disk map and a config
 * drive made as the deployer makes them. The ramdisk looks itself up (the
 * peer arms it only after a first refused lookup), reports its hardware,
 * waits in standby, erases the disks, fails a deploy whose hint matches no
 * disk (and says where), deploys the disk by its map for a boot from disk
 * (the ramdisk stays), then deploys it again (only the map's chunks travel)
 * and starts the installed node by kexec: one firmware boot in all, counted
 * on SeaBIOS's debug console (its boot handler, INT 19h). The node reads its
 * config drive and signals. A deploy without a map (the whole disk streamed
 * and hashed, 6 times the bytes: 90 s more here) is agents/deploy/ironic's
 * agent.test, on the host.
 */
const GUEST_IP = "10.0.2.100";
const MAC = "52:54:00:12:34:56"; // qemu's default for the first NIC
const RAMDISK_TOKEN = "ramdisk-token-0123456789abcdef";
const STORE_TOKEN = "store-token-0123456789abcdef";
const NODE_TOKEN = "node-token-0123456789abcdef";
const MiB = 2 ** 20;
const GiB = 2 ** 30;

describe("the deploy ramdisk in a VM", () => {
  test("lookup, inventory, standby, erase, a failed deploy, a deploy to the hinted disk, kexec into the node", async () => {
    requireCommand("qemu-system-x86_64", "socat", "sfdisk", "dumpe2fs");
    const [node, ramdisk] = await Promise.all([buildTestImage("node"), buildTestImage("ramdisk")]);
    const raw = `${node.base}.raw`;
    const mapFile = `${node.base}.disk-map.json`;
    const map = DiskMap.parse(JSON.parse(readFileSync(mapFile, "utf8")));
    const mapSum = sha256File(mapFile);
    expect(mapSum).toEqual(pick(node.manifest.artifacts.find((a) => a.type === DISK_MAP_ARTIFACT)!));
    const packFile = `${node.base}.disk-pack`;
    const packSum = sha256File(packFile);
    expect(packSum).toEqual(pick(node.manifest.artifacts.find((a) => a.type === DISK_PACK_ARTIFACT)!));
    const vmlinuz = `${ramdisk.base}.vmlinuz`;
    const initramfs = `${ramdisk.base}.initramfs`;
    const ramdiskBytes = statSync(vmlinuz).size + statSync(initramfs).size;

    const dir = tempRunDir("ooo-ramdisk-test-");
    const image = sha256File(raw);
    const drive = join(dir, "config-drive.img");
    await makeConfigDrive(drive, {
      "os-collect-config": { collectors: ["config-drive", "heat"], polling_interval: 5, heat: { metadata_url: `http://${GUEST_IP}`, node: "bm-0", token: NODE_TOKEN } },
    });
    const driveSum = sha256File(drive);
    // The disks: vda too small for the image, vdb right (and it held another partition table before).
    const small = join(dir, "small.raw");
    const right = join(dir, "right.raw");
    writeFileSync(small, Buffer.alloc(MiB, 0x5a));
    await run("truncate", ["-s", String(GiB), small]);
    const rightBytes = Math.ceil((image.size + CONFIG_DRIVE_PARTITION_BYTES + 512 * MiB) / MiB) * MiB;
    await run("truncate", ["-s", String(rightBytes), right]);
    await run("sfdisk", ["-q", right], { input: "label: dos\nsize=100MiB, type=83\n", echo: false });

    let signal: CompletionSignal | undefined;
    const peer = new RamdiskPeer({
      machine: "bm-0",
      macs: [MAC],
      token: RAMDISK_TOKEN,
      files: {
        "/images/node.raw": { file: raw, token: STORE_TOKEN, store: true },
        "/images/node.disk-map.json": { file: mapFile, token: STORE_TOKEN, store: true },
        "/images/node.disk-pack": { file: packFile, token: STORE_TOKEN, store: true },
        "/v1/ramdisk/bm-0/config-drive": { file: drive, token: RAMDISK_TOKEN },
      },
      extra: async (req, url) => {
        if (req.headers.get("authorization") !== `Bearer ${NODE_TOKEN}`) return undefined;
        if (url.pathname === "/v1/nodes/bm-0/metadata")
          return Response.json({
            ooo: { version: 1, node: "bm-0", role: "demo", serial: 1, image: { name: "node", digest: node.manifest.digest }, signal_url: `http://${GUEST_IP}/v1/nodes/bm-0/signal` },
            greeting: { name: "metal" },
          });
        if (url.pathname === "/v1/nodes/bm-0/signal" && req.method === "POST") {
          signal = CompletionSignal.parse(await req.json());
          return new Response(null, { status: 204 });
        }
        return undefined;
      },
    });
    const firmwareLog = join(dir, "firmware.log");
    let vm: Vm | undefined;
    try {
      vm = await Vm.start({
        name: "ramdisk-test",
        dir,
        accel: "tcg",
        memoryMiB: 1536,
        // Two vCPUs, as any real machine has more than one: the chunks of a deploy by disk map are hashed on a worker thread of the compiled agent.
        cpus: 2,
        disk: { file: small, format: "raw", serial: "SMALL-1" },
        extraDisks: [{ file: right, format: "raw", serial: "ROOT-1" }],
        kernel: { vmlinuz, initrd: initramfs, append: `console=ttyS0 ooo.md=http://${GUEST_IP} BOOTIF=01-${MAC.replaceAll(":", "-")}` },
        guestForwards: [{ ip: GUEST_IP, port: 80, command: `socat STDIO TCP:127.0.0.1:${peer.port}` }],
        // SeaBIOS's debug port: what it does at every firmware boot.
        extraArgs: ["-chardev", `file,id=fw,path=${firmwareLog}`, "-device", "isa-debugcon,iobase=0x402,chardev=fw"],
      });
      const t0 = vm.startedAt;
      const since = (at: number) => Number(((at - t0) / 1000).toFixed(1));

      // Not armed at first: the ramdisk keeps asking.
      await peer.until(() => peer.lookups.length > 0, 240_000, "look itself up");
      const firstLookup = since(peer.lookups[0]!.at);
      peer.arm();
      await peer.until(() => peer.inventories.length > 0, 60_000, "report its inventory after being armed");
      expect(peer.lookups.length).toBeGreaterThan(1);
      expect(peer.lookups[0]!.body.macs[0]).toBe(MAC);

      const inv = peer.inventories[0]!.body;
      expect(inv.boot_mode).toBe("bios");
      expect(inv.nics).toEqual([{ name: "eth0", mac: MAC, link: true }]);
      expect(inv.disks.map((d) => [d.name, d.size, d.serial])).toEqual([
        ["vda", GiB, "SMALL-1"],
        ["vdb", rightBytes, "ROOT-1"],
      ]);
      expect(inv.disks[1]!.by_path).toMatch(/^\/dev\/disk\/by-path\/pci-0000:00:0[0-9a-f]\.0$/);

      // Standby first (fast track: the commands come to a waiting ramdisk).
      await peer.until(() => peer.progress.some((p) => p.body.phase === "waiting"), 60_000, "report standby");
      peer.setCommand({ version: DEPLOY_VERSION, action: "erase", then: "standby" });
      await peer.until(() => peer.results.length === 1, 120_000, "post the erase's result");
      expect(peer.results[0]!.body).toMatchObject({ action: "erase", status: "success", step: "erasing" });
      const deploy = (root_device: { serial: string }, o: { map: boolean; pack?: boolean; restart: "kexec" | "firmware" }): Command => ({
        version: DEPLOY_VERSION,
        action: "deploy",
        deploy: {
          node: "bm-0",
          image: {
            name: "node",
            digest: node.manifest.digest,
            disk: { url: `http://${GUEST_IP}/images/node.raw`, sha256: image.sha256, size: image.size },
            ...(o.map
              ? { map: { url: `http://${GUEST_IP}/images/node.disk-map.json`, ...mapSum, ...(o.pack ? { pack: { url: `http://${GUEST_IP}/images/node.disk-pack`, ...packSum } } : {}) } }
              : {}),
          },
          store_token: STORE_TOKEN,
          root_device,
          config_drive: { url: `http://${GUEST_IP}/v1/ramdisk/bm-0/config-drive`, sha256: driveSum.sha256, size: driveSum.size },
          restart: o.restart,
        },
      });
      // A hint no disk matches: the failure names its step and brings the log's end; the ramdisk waits on.
      peer.setCommand(deploy({ serial: "no-such-disk" }, { map: true, restart: "kexec" }));
      await peer.until(() => peer.results.length === 2, 120_000, "post the failed deploy's result");
      expect(peer.results[1]!.body).toMatchObject({ action: "deploy", status: "failure", step: "selecting-disk", restart: "none" });
      expect(peer.results[1]!.body.message).toContain("no disk matches the root device hints");
      expect(peer.results[1]!.body.log_tail).toContain("ooo-deploy");
      // First left for a boot from disk: the ramdisk stays, and the same machine then deploys again and starts the node itself.
      peer.setCommand(deploy({ serial: "root-1" }, { map: true, restart: "firmware" }));
      const firstAt = performance.now();
      await peer.until(() => peer.results.length === 3, 900_000, "post the first deploy's result");
      expect(peer.results[2]!.body).toMatchObject({ action: "deploy", status: "success", step: "restarting", disk: "/dev/vdb", restart: "firmware" });
      expect(peer.downloads.filter((d) => d.at >= firstAt && d.body.path === "/images/node.raw").length).toBe(map.chunks.length);

      // Then with the pack: the chunks' zstd frames travel instead of the disk's bytes.
      peer.setCommand(deploy({ serial: "root-1" }, { map: true, pack: true, restart: "kexec" }));
      const deployedAt = performance.now();
      const mapLoad = loadavg()[0]!;
      await peer.until(() => peer.results.length === 4, 900_000, "post a deploy result");
      const result = peer.results[3]!;
      expect(result.body).toMatchObject({ action: "deploy", status: "success", step: "restarting", disk: "/dev/vdb", restart: "kexec" });
      // By the map and its pack: the map once, then exactly its frames, each a range of the pack; nothing of the raw disk.
      const fetched = peer.downloads.filter((d) => d.at >= deployedAt && d.body.path.startsWith("/images/")).map((d) => d.body);
      expect(fetched.filter((d) => d.path === "/images/node.disk-map.json")).toEqual([{ path: "/images/node.disk-map.json", bytes: mapSum.size }]);
      expect(fetched.filter((d) => d.path === "/images/node.raw")).toEqual([]);
      const ranges = fetched.filter((d) => d.path === "/images/node.disk-pack").map((d) => d.range);
      expect(ranges.sort((a, b) => a![0] - b![0])).toEqual(map.chunks.map((c) => [c.packed!.offset, c.packed!.offset + c.packed!.length]));
      const ready = await vm.waitFor(/OOO-READY (\{.*\})/, 300_000);
      await peer.until(() => signal !== undefined, 240_000, "(as the installed node) signal completion");
      expect(signal!.status).toBe("SUCCESS");

      const phases = (since: number) => [...new Set(peer.progress.filter((p) => p.at >= since).map((p) => p.body.phase))];
      expect(phases(0)).toEqual(["lookup", "inventory", "waiting", "erasing", "selecting-disk", "failed", "writing", "verifying", "growing-state", "config-drive", "restarting"]);
      expect(phases(firstAt)).toEqual(["selecting-disk", "writing", "verifying", "growing-state", "config-drive", "restarting"]);
      expect(phases(deployedAt)).toEqual(["selecting-disk", "writing", "verifying", "growing-state", "config-drive", "restarting"]);
      // SeaBIOS prints its banner twice per boot (before and after relocating itself), and enters its boot handler once.
      const firmwareBoots = (readFileSync(firmwareLog, "latin1").match(/^enter handle_19:/gm) ?? []).length;
      expect(firmwareBoots).toBe(1);
      // The tokens travel in headers only: never on the console.
      for (const secret of [RAMDISK_TOKEN, STORE_TOKEN]) expect(vm.console).not.toContain(secret);
      expect(peer.refused).toEqual([]);

      const at = (phase: string, since: number) => peer.progress.find((p) => p.at >= since && p.body.phase === phase)!.at;
      const seconds = (ms: number) => Number((ms / 1000).toFixed(1));
      const figures = {
        ramdisk_bytes: ramdiskBytes,
        boot_to_first_lookup_s: firstLookup,
        armed_to_inventory_s: seconds(peer.inventories[0]!.at - peer.lookups.at(-1)!.at),
        write_s: seconds(at("verifying", deployedAt) - at("writing", deployedAt)),
        deploy_command_to_result_s: seconds(result.at - at("selecting-disk", deployedAt)),
        map_load: mapLoad,
        kexec_to_ready_s: Number((ready.seconds - (result.at - t0) / 1000).toFixed(1)),
        image_bytes: image.size,
        mapped_bytes: mappedBytes(map),
        packed_bytes: packedBytes(map),
        map_chunks: map.chunks.length,
      };
      process.stderr.write(`deploy ramdisk under TCG: ${JSON.stringify(figures)}\n`);
      await vm.kill();
      vm = undefined;

      // The disk as the ramdisk left it (and the node's first boot after it).
      const parts = JSON.parse(await capture("sfdisk", ["-J", right])).partitiontable.partitions as { start: number; size: number; name: string }[];
      expect(parts.map((p) => p.name)).toEqual(["bios-boot", "ooo-boot", "ooo-root-a", "ooo-root-b", "ooo-state", "config-2"]);
      const imageParts = JSON.parse(await capture("sfdisk", ["-J", raw])).partitiontable.partitions as { start: number; size: number; name: string }[];
      // GRUB's core image and both root slots: byte for byte the image's (slot A is mounted read-only on the node).
      for (const i of [0, 2, 3]) {
        expect({ ...parts[i], node: undefined }).toEqual({ ...imageParts[i]!, node: undefined });
        expect(sameBytes(raw, right, parts[i]!.start * 512, parts[i]!.size * 512)).toBe(true);
      }
      const state = parts[4]!;
      const drivePart = parts[5]!;
      expect(state.size).toBeGreaterThan(imageParts[4]!.size + (500 * MiB) / 512);
      expect(drivePart.start).toBe(state.start + state.size);
      expect(drivePart.size * 512).toBe(CONFIG_DRIVE_PARTITION_BYTES);
      const stateFs = await capture("dumpe2fs", ["-h", `${right}?offset=${state.start * 512}`]);
      expect(Number(/Block count:\s+(\d+)/.exec(stateFs)![1]) * Number(/Block size:\s+(\d+)/.exec(stateFs)![1])).toBe(state.size * 512);
      expect(await capture("dumpe2fs", ["-h", `${right}?offset=${drivePart.start * 512}`])).toMatch(/Filesystem volume name:\s+config-2/);
      // The small disk: erased (its first MiB was not zero), and not written by the deploy.
      expect(readFileSync(small).every((b) => b === 0)).toBe(true);
      expect(ramdiskBytes).toBeLessThanOrEqual(RAMDISK_TARGET_BYTES);
    } finally {
      await vm?.kill();
      peer.stop();
      removeRunDir(dir);
    }
  }, 40 * 60_000);
});

const pick = (a: { sha256: string; size: number }) => ({ sha256: a.sha256, size: a.size });

/** Whether two files hold the same bytes in [offset, offset+length). */
function sameBytes(a: string, b: string, offset: number, length: number): boolean {
  const fa = openSync(a, "r");
  const fb = openSync(b, "r");
  try {
    const ba = Buffer.alloc(4 * MiB);
    const bb = Buffer.alloc(4 * MiB);
    for (let at = offset; at < offset + length; ) {
      const n = Math.min(ba.length, offset + length - at);
      readSync(fa, ba, 0, n, at);
      readSync(fb, bb, 0, n, at);
      if (!ba.subarray(0, n).equals(bb.subarray(0, n))) return false;
      at += n;
    }
    return true;
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}
