import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { sfdiskParts } from "../../test/support/golden-like-disk.ts";
import { ironicHost, type IronicHost } from "../../test/support/ironic-host.ts";
import { IRONIC_DISK_MAP_KEY } from "../../wire/deploy.ts";
import type { DriverNode, ProvisionRequest } from "../drivers/driver.ts";
import { ironicDriver } from "../drivers/ironic.ts";
import { DriverFailed } from "../errors.ts";
import type { ImageCache } from "../images.ts";
import type { StackStore } from "../services.ts";
import { parseStack, type Stack } from "../stack.ts";
import { StateDb } from "../state.ts";
import { instanceOf } from "./instance.ts";
import { prepareIronic } from "./prepare.ts";

/**
 * `driver: ironic` against a real Ironic on this host (test/support/
 * ironic-host.ts: the embedded Ironic, manual-management nodes, ooo's agent
 * run here on a disk file): an entry of "a site's Ironic" (its URL and an
 * http_basic login file) whose nodes are named or claimed from a resource
 * class and checked before anything is touched; a deploy through the
 * driver — instance_info, ooo's config drive, the timeline's marks — and
 * its undeploy; and a deploy the agent fails, as the embedded Ironic
 * reports it. The test bed's integration test (test/integration/ironic.test.ts)
 * boots real machines.
 */
let host: IronicHost;
let stackState: string;
let stack: Stack;
const MAC = { big: "52:54:00:20:00:01", fresh: "52:54:00:20:00:02", c1: "52:54:00:20:00:03", c2: "52:54:00:20:00:04", m1: "52:54:00:20:00:05", e1: "52:54:00:20:00:06" };
const GOLD = "ooo-gold";

beforeAll(async () => {
  host = await ironicHost("ironic-driver");
  stackState = join(host.dir, "stack-state");
  await host.enrol("big", MAC.big);
  // Never verified: still "enroll".
  await host.client.createNode({ name: "fresh", driver: "manual-management", power_interface: "fake", management_interface: "noop", network_interface: "noop" });
  for (const n of ["c1", "c2", "m1"] as const) await host.enrol(n, MAC[n], { resource_class: GOLD });
  await host.client.setMaintenance("m1", "disk replaced");
  await host.client.setMaintenance("big", "fan replaced, waiting for the vendor");
  const file = join(host.dir, "cloud.yaml");
  writeFileSync(
    file,
    stringify({
      version: 1,
      provisioning: { address: "127.0.0.1", interface: "lo", dhcp: { proxy: true }, ramdisk: "ooo-deploy@1" },
      inventory: {
        // The embedded Ironic, driven as a site's: by its URL and a login file.
        cloud: { driver: "ironic", url: host.ironic.url, credentials: host.ironic.loginFile, resource_class: GOLD, machines: { big: { node: "big" }, raw: { node: "fresh" } } },
      },
      roles: { web: { count: 5, image: "kv@1", nodes: { "web-0": { machine: "big" }, "web-1": { machine: "raw" } } } },
    }),
  );
  stack = parseStack(readFileSync(file, "utf8"), file);
}, 120_000);

afterAll(async () => {
  await host?.close();
});

const nodeOf = (name: string, pool: Record<string, unknown>, machine: string, stateDir = stackState): DriverNode => ({
  name,
  dir: join(stateDir, "nodes", name),
  stateDir,
  size: { memoryMiB: 1024, cpus: 1 },
  pool,
  machine,
});

function request(sha256: string, note: (kind: string, detail: Record<string, unknown>) => void): Promise<ProvisionRequest> {
  return Promise.all([host.signedUrl(host.image.disk), host.signedUrl(host.map.sha256)]).then(([url, mapUrl]) => ({
    image: { digest: `sha256:${host.image.data}`, sha256, size: host.image.diskBytes.length, url, map: { url: mapUrl, ...host.map } },
    configDrive: { "os-collect-config": { collectors: ["heat"], heat: { metadata_url: "https://127.0.0.1:6385", node: "web-x", token: "marker-token-in-the-config-drive" } } },
    services: [],
    timeoutSeconds: 180,
    note,
  }));
}

describe("a site's Ironic, by its API", () => {
  test("nodes named or claimed from a resource class, each checked before anything is touched: every problem at once", async () => {
    mkdirSync(stackState, { recursive: true });
    const db = StateDb.open(stackState);
    try {
      // Nothing of a store or an image cache is needed: no embedded Ironic to start.
      const unusable = await prepareIronic({ stack, stateDir: stackState, db, store: undefined as unknown as StackStore, cache: undefined as unknown as ImageCache });
      expect(Object.fromEntries(unusable)).toEqual({
        "web-0": "machine big: Ironic node big: it is in maintenance (fan replaced, waiting for the vendor)",
        "web-1": expect.stringMatching(/^machine raw: Ironic node fresh: it is "enroll", not available; Ironic's (power|management|boot) interface: /),
        "web-4": expect.stringContaining(`no node of resource class ${GOLD} could be claimed`),
      });
      const claimed = Object.fromEntries(stack.nodes.filter((n) => ["web-2", "web-3"].includes(n.name)).map((n) => [n.name, n.machine]));
      const c = await Promise.all(["c1", "c2"].map((n) => host.client.getNode(n)));
      expect(Object.values(claimed).sort()).toEqual(c.map((n) => n.uuid).sort());
      // Each claimed node is the stack node's: its instance UUID, kept in the node's folder.
      for (const [name, uuid] of Object.entries(claimed)) expect(c.find((n) => n.uuid === uuid)!.instance_uuid).toBe(instanceOf(join(stackState, "nodes", name))!);
      // The node that got none keeps no claim; m1 (in maintenance) was never claimed.
      expect(instanceOf(join(stackState, "nodes", "web-4"))).toBeUndefined();
      expect((await host.client.getNode("m1")).instance_uuid).toBeNull();
    } finally {
      db.close();
    }
  }, 120_000);

  test("a deploy through the driver: signed URLs and the disk map in instance_info, ooo's config drive on config-2, the timeline's marks; undeploy gives the node back", async () => {
    const spec = stack.nodes.find((n) => n.name === "web-2")!;
    const ironicNode = (await Promise.all(["c1", "c2"].map((n) => host.client.getNode(n)))).find((n) => n.uuid === spec.machine)!;
    const node = nodeOf("web-2", stack.inventory.cloud!, spec.machine!);
    const { disk, machine } = host.machine("web-2");
    const notes: string[] = [];
    const req = await request(host.image.disk, (kind, d) => notes.push(`${kind}${d.phase ? ` ${d.phase}` : ""}`));
    await host.withAgent(MAC[ironicNode.name as "c1" | "c2"], machine, () => ironicDriver.provision(node, req));

    const n = await host.client.getNode(ironicNode.uuid);
    expect(n).toMatchObject({ provision_state: "active", instance_uuid: instanceOf(node.dir) });
    expect(n.instance_info).toMatchObject({ image_disk_format: "raw", image_os_hash_algo: "sha256", image_os_hash_value: host.image.disk, display_name: "web-2" });
    expect((n.instance_info[IRONIC_DISK_MAP_KEY] as { sha256: string }).sha256).toBe(host.map.sha256);
    // (the agent here writes in a second: a poll may miss the write_image step, never the agent's call)
    expect(notes.slice(0, 2)).toEqual(["power-on", "ramdisk-lookup"]);
    expect(readFileSync(host.agentLog, "utf8")).toContain("by its disk map");
    // ooo's own config drive (ext4 labelled config-2, ooo/metadata.json), not Ironic's ISO.
    const parts = await sfdiskParts(disk);
    const drive = readFileSync(disk).subarray(parts.at(-1)!.start * 512);
    expect(parts.at(-1)!.name).toBe("config-2");
    expect(drive.subarray(1024 + 120, 1024 + 128).toString()).toBe("config-2");
    expect(drive.subarray(0, 8 * 2 ** 20).includes(Buffer.from("marker-token-in-the-config-drive"))).toBe(true);
    expect(await ironicDriver.powerState(node)).toBe("on");
    expect(await ironicDriver.describe(node)).toMatchObject({ provision_state: "active", power_state: "power on", node: `${ironicNode.name} (${ironicNode.uuid})` });

    await ironicDriver.destroy(node);
    expect(await host.client.getNode(ironicNode.uuid)).toMatchObject({ provision_state: "available", instance_uuid: null, allocation_uuid: null });
    expect(existsSync(node.dir)).toBe(false);
    // Again: nothing to do.
    await ironicDriver.destroy(node);
  }, 240_000);
});

describe("the embedded Ironic", () => {
  test("a deploy the agent fails: Ironic's last_error and the tail of the agent's log, the machine powered off", async () => {
    const e1 = await host.enrol("e1", MAC.e1);
    const credentials = join(host.dir, "bmc.yaml");
    writeFileSync(credentials, "username: admin\npassword: x\n", { mode: 0o600 });
    const pool = { driver: "ironic", url: "embedded", machines: { e1: { bmc: { address: "127.0.0.1", credentials }, macs: [MAC.e1], console: "ttyS0,115200n8" } } };
    const node = nodeOf("db-0", pool, "e1", host.stateDir);
    const { machine } = host.machine("db-0");
    const failed = await host.withAgent(MAC.e1, machine, async () => ironicDriver.provision(node, await request("0".repeat(64), () => {})).catch((e: unknown) => e));
    expect(failed).toBeInstanceOf(DriverFailed);
    const message = (failed as Error).message;
    expect(message).toStartWith(`db-0: Ironic's deploy of node e1 (${e1.uuid}) ended "deploy failed": Deploy step deploy.write_image failed`);
    expect(message).toContain("the agent's log ends:");
    expect(message).toMatch(/Ironic: deploy\.execute_deploy_step failed/);
    expect(await host.client.getNode("e1")).toMatchObject({ provision_state: "deploy failed", power_state: "power off" });
    // Undeployed from there too.
    await ironicDriver.destroy(node);
    expect(await host.client.getNode("e1")).toMatchObject({ provision_state: "available", instance_uuid: null });
  }, 240_000);
});
