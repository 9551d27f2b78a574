import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runIronicAgent } from "../../agents/deploy/ironic/agent.ts";
import type { IronicMachine } from "../../agents/deploy/ironic/handlers.ts";
import { IronicClient } from "../../deployer/ironic/client.ts";
import { ensureEmbeddedIronic, stopEmbeddedIronic, type EmbeddedIronic } from "../../deployer/ironic/embedded.ts";
import { waitForPower, waitForProvisionState } from "../../deployer/ironic/wait.ts";
import { mapDisk } from "../../lib/disk-map.ts";
import { fileSink, log } from "../../lib/log.ts";
import { createApi } from "../../store/api.ts";
import { DirBackend } from "../../store/backends/dir.ts";
import { Store } from "../../store/store.ts";
import { DISK_MAP_ARTIFACT } from "../../wire/disk-map.ts";
import { goldenLikeDisk } from "./golden-like-disk.ts";
import { requireCommand } from "./require.ts";
import { publishTestImage, sha256Hex } from "./store-image.ts";

/**
 * A real Ironic deploying with ooo's agent, all on this host: the embedded
 * Ironic of a state folder; a real store holding a golden-like disk (64
 * MiB) with its disk map; Ironic nodes it deploys with its real `direct`
 * deploy and `ipxe` boot, on fake power and no-op management
 * (`manual-management`: no BMC); the agent run as a process would run in
 * the ramdisk, a disk file for the machine's disk. The agent's log (every
 * log line of this process) is a file, as in the ramdisk.
 */
const MiB = 2 ** 20;
const tokens = { write: ["write-token-0123456789"], read: ["read-token-0123456789"] };
/** Stands for the deploy ramdisk's kernel and initramfs, which Ironic fetches to boot the machine by iPXE. */
const kernel = new TextEncoder().encode("a deploy kernel");

export interface IronicHost {
  dir: string;
  stateDir: string;
  ironic: EmbeddedIronic;
  client: IronicClient;
  storeUrl: string;
  readToken: string;
  image: Awaited<ReturnType<typeof publishTestImage>>;
  map: { sha256: string; size: number };
  agentLog: string;
  /** A signed URL of one of the image's blobs, as ooo's driver gives Ironic. */
  signedUrl(blob: string): Promise<string>;
  /** An available node (power state known: Ironic claims only such nodes). */
  enrol(name: string, mac: string, extra?: Record<string, unknown>): Promise<Awaited<ReturnType<IronicClient["createNode"]>>>;
  /** A 192 MiB disk file for a machine, and what the agent did to the machine. */
  machine(name: string): { disk: string; events: string[]; machine: IronicMachine };
  /** The agent of the machine with `mac`, running while `fn` does. */
  withAgent<T>(mac: string, m: IronicMachine, fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export async function ironicHost(name: string): Promise<IronicHost> {
  requireCommand("ironic", "ironic-dbsync", "genisoimage", "sfdisk", "mkfs.ext4", "resize2fs");
  const dir = mkdtempSync(join(tmpdir(), `ooo-${name}-`));
  const stateDir = join(dir, "state");
  const agentLog = join(dir, "agent.log");
  const dropLog = log.addSink(fileSink(agentLog));
  const store = await Store.open({ dir: join(dir, "store"), backend: new DirBackend(join(dir, "store", "blobs")) });
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: createApi(store, { tokens }) });
  const storeUrl = `http://127.0.0.1:${server.port}`;
  const call = (method: string, path: string, body?: string | Uint8Array) =>
    fetch(`${storeUrl}${path}`, { method, body, headers: { "X-Auth-Token": tokens.write[0]!, "Content-Type": "application/octet-stream" } });
  const golden = await goldenLikeDisk(64);
  const diskBytes = readFileSync(golden.file);
  // Its map, as a build writes one: ooo's driver hands it to the agent in instance_info.
  const mapBytes = new TextEncoder().encode(JSON.stringify(mapDisk(golden.file, { sha256: sha256Hex(diskBytes), size: diskBytes.length }, { chunkBytes: MiB })));
  const image = await publishTestImage(store, call, "kv", "golden", kernel, diskBytes, [{ type: DISK_MAP_ARTIFACT, bytes: mapBytes }]);
  rmSync(golden.dir, { recursive: true, force: true });
  const ironic = await ensureEmbeddedIronic(stateDir);
  const client = new IronicClient({ url: ironic.url, login: { username: ironic.username, password: ironic.password } });
  const wait = { timeoutMs: 30_000, intervalMs: 200 };

  const signedUrl = async (blob: string) => {
    const res = await fetch(`${storeUrl}/v2/images/${image.id}/blobs/sha256:${blob}/temp-url?ttl=600`, { headers: { "X-Auth-Token": tokens.read[0]! } });
    return ((await res.json()) as { url: string }).url;
  };
  return {
    dir,
    stateDir,
    ironic,
    client,
    storeUrl,
    readToken: tokens.read[0]!,
    image,
    map: { sha256: sha256Hex(mapBytes), size: mapBytes.length },
    agentLog,
    signedUrl,
    async enrol(nodeName, mac, extra = {}) {
      const ramdisk = await signedUrl(sha256Hex(kernel));
      const node = await client.createNode({
        name: nodeName,
        driver: "manual-management",
        power_interface: "fake",
        management_interface: "noop",
        network_interface: "noop",
        driver_info: { deploy_kernel: ramdisk, deploy_ramdisk: ramdisk },
        ...extra,
      });
      await client.createPort(node.uuid, mac);
      await client.setProvisionState(nodeName, "manage");
      await waitForProvisionState(client, nodeName, "manageable", wait);
      await client.setProvisionState(nodeName, "provide");
      await waitForProvisionState(client, nodeName, "available", wait);
      await client.setPowerState(nodeName, "power off");
      await waitForPower(client, nodeName, "power off", wait);
      return client.getNode(nodeName);
    },
    machine(machineName) {
      const disk = join(dir, `${machineName}.disk`);
      writeFileSync(disk, "");
      truncateSync(disk, 192 * MiB);
      const events: string[] = [];
      const m: IronicMachine = {
        rootDevice: (bytes) => {
          events.push(`root device for ${bytes} bytes`);
          return disk;
        },
        sync: () => void events.push("sync"),
        powerOff: () => void events.push("power off"),
        logFiles: [agentLog],
      };
      return { disk, events, machine: m };
    },
    async withAgent(mac, m, fn) {
      const stop = new AbortController();
      const agent = runIronicAgent({ apiUrl: ironic.url, macs: [mac], listen: { hostname: "127.0.0.1", port: 0 }, advertise: (port) => `http://127.0.0.1:${port}`, machine: m, signal: stop.signal });
      try {
        return await fn();
      } finally {
        stop.abort();
        await agent.catch(() => {});
      }
    },
    async close() {
      dropLog();
      await server.stop(true);
      await store.close();
      await stopEmbeddedIronic(stateDir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
