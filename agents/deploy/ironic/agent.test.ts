import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { IronicClient } from "../../../deployer/ironic/client.ts";
import { waitForProvisionState } from "../../../deployer/ironic/wait.ts";
import { log } from "../../../lib/log.ts";
import { IRONIC_DISK_MAP_KEY } from "../../../wire/deploy.ts";
import { sfdiskParts } from "../../../test/support/golden-like-disk.ts";
import { ironicHost, type IronicHost } from "../../../test/support/ironic-host.ts";
import { sha256Hex } from "../../../test/support/store-image.ts";
import type { IronicMachine } from "./handlers.ts";

/**
 * ooo's agent driven by a real Ironic, on this host (test/support/ironic-host.ts):
 * the embedded Ironic deploys `manual-management` nodes (fake power, no-op
 * management, Ironic's real `direct` deploy and `ipxe` boot), the agent runs here as a process would in the ramdisk,
 * with a disk file for a disk; the image comes from a real store by a
 * signed URL, which Ironic's conductor HEADs and the agent GETs. What
 * crosses the wire is Ironic 21.4's whole sequence: lookup, heartbeats,
 * get_deploy_steps, execute_deploy_step (write_image), get_partition_uuids,
 * install_bootloader (UEFI), power_off — or, when the image is not what
 * Ironic named, log.collect_system_logs after the failure.
 */
const MiB = 2 ** 20;
let host: IronicHost;
let client: IronicClient;
let image: IronicHost["image"];
let agentLog: string;
const enrol = (name: string, mac: string) => host.enrol(name, mac);
const machine = (name: string) => host.machine(name);
const withAgent = <T>(mac: string, m: IronicMachine, fn: () => Promise<T>) => host.withAgent(mac, m, fn);
const signedUrl = (blob: string) => host.signedUrl(blob);

beforeAll(async () => {
  host = await ironicHost("ironic-agent");
  ({ client, image, agentLog } = host);
}, 60_000);

afterAll(async () => {
  await host?.close();
});

describe("a whole-disk direct deploy by a real Ironic", () => {
  test("from lookup to active: the image written and verified, the state partition grown, Ironic's config drive at the end, powered off", async () => {
    const node = await enrol("m1", "52:54:00:10:00:01");
    const { disk, events, machine: m } = machine("m1");
    await client.setInstanceInfo("m1", { image_source: await signedUrl(image.disk), image_os_hash_algo: "sha256", image_os_hash_value: image.disk, image_disk_format: "raw" });
    const states: string[] = [];
    const started = Date.now();
    const active = await withAgent("52:54:00:10:00:01", m, async () => {
      await client.setProvisionState("m1", "active", { configdrive: { meta_data: { uuid: node.uuid, name: "m1", ooo: { marker: "ooo-config-drive-marker" } } } });
      return waitForProvisionState(client, "m1", "active", { timeoutMs: 120_000, intervalMs: 500, onState: (n) => states.push(`${n.provision_state}${n.deploy_step?.step ? ` ${n.deploy_step.step}` : ""}`) });
    });
    log.info(`m1 active after ${((Date.now() - started) / 1000).toFixed(1)} s: ${states.join(" → ")}`);
    expect(active.last_error).toBeNull();
    expect(states).toContain("wait call-back deploy");

    // The image is on the disk: its partitions as the golden disk has them, the state partition grown, config-2 last.
    const parts = await sfdiskParts(disk);
    expect(parts.map((p) => p.name)).toEqual(["bios-boot", "ooo-boot", "ooo-root-a", "ooo-root-b", "ooo-state", "config-2"]);
    expect(parts[4]!.start + parts[4]!.size).toBeGreaterThan(64 * MiB / 512);
    const bytes = readFileSync(disk);
    // Everything before the state partition (which resize2fs grew) is the image's, byte for byte.
    const stateStart = parts[4]!.start * 512;
    expect(sha256Hex(bytes.subarray(MiB, stateStart))).toBe(sha256Hex(image.diskBytes.subarray(MiB, stateStart)));
    // Ironic's config drive: an ISO 9660 labelled config-2 (genisoimage's), holding the node's meta_data.
    const drive = bytes.subarray(parts[5]!.start * 512);
    expect(drive.subarray(32769, 32774).toString()).toBe("CD001");
    expect(drive.subarray(32808, 32816).toString()).toBe("config-2");
    expect(drive.subarray(0, 4 * MiB).includes(Buffer.from("ooo-config-drive-marker"))).toBe(true);

    expect(events).toEqual([`root device for ${64 * MiB + 64 * MiB} bytes`, "sync", "power off"]);
    // Ironic 21.4's commands for a whole-disk UEFI deploy, in its order (the agent logs each as it comes).
    const sent = [...readFileSync(agentLog, "utf8").matchAll(/Ironic: (\w+\.\w+)(?: \(in the background\))?"?\s*$/gm)].map((m) => m[1]);
    expect(sent).toEqual(["deploy.get_deploy_steps", "deploy.execute_deploy_step", "standby.get_partition_uuids", "image.install_bootloader", "standby.power_off"]);
    // What Ironic kept: the written disk's GUID (standby.get_partition_uuids), the agent's version, its steps' version.
    const table = JSON.parse(await Bun.$`sfdisk -J ${disk}`.text()) as { partitiontable: { id: string } };
    expect(active.driver_internal_info).toMatchObject({
      root_uuid_or_disk_id: table.partitiontable.id.toLowerCase(),
      agent_version: "ooo-agent 1",
      hardware_manager_version: { ooo: "1" },
      deploy_boot_mode: "uefi",
    });
  }, 180_000);

  test("with the disk's map in instance_info (ooo's driver puts it there): only the disk's data fetched, by Range, each chunk checked", async () => {
    await enrol("m3", "52:54:00:10:00:03");
    const { disk, machine: m } = machine("m3");
    const from = readFileSync(agentLog).length;
    await client.setInstanceInfo("m3", {
      image_source: await signedUrl(image.disk),
      image_os_hash_algo: "sha256",
      image_os_hash_value: image.disk,
      image_disk_format: "raw",
      [IRONIC_DISK_MAP_KEY]: { url: await signedUrl(host.map.sha256), ...host.map },
    });
    const active = await withAgent("52:54:00:10:00:03", m, async () => {
      await client.setProvisionState("m3", "active");
      return waitForProvisionState(client, "m3", "active", { timeoutMs: 120_000, intervalMs: 500 });
    });
    expect(active.last_error).toBeNull();
    const said = readFileSync(agentLog, "utf8").slice(from);
    expect(said).toContain("by its disk map");
    expect(said).toMatch(/all \d+ chunks \(\d+ bytes\) matched the disk map/);
    // The signed URL's signature is in no log line (the store's request log shows it as …).
    expect(said).not.toMatch(/temp_url_sig=[0-9a-f]{8}/);
    const parts = await sfdiskParts(disk);
    const bytes = readFileSync(disk);
    expect(sha256Hex(bytes.subarray(MiB, parts[4]!.start * 512))).toBe(sha256Hex(image.diskBytes.subarray(MiB, parts[4]!.start * 512)));
  }, 180_000);

  test("an image that is not the one Ironic named: deploy failed with the agent's reason, and Ironic keeps the agent's logs", async () => {
    await enrol("m2", "52:54:00:10:00:02");
    const { events, machine: m } = machine("m2");
    const wrong = "0".repeat(64);
    await client.setInstanceInfo("m2", { image_source: await signedUrl(image.disk), image_os_hash_algo: "sha256", image_os_hash_value: wrong, image_disk_format: "raw" });
    const failed = await withAgent("52:54:00:10:00:02", m, async () => {
      await client.setProvisionState("m2", "active");
      return waitForProvisionState(client, "m2", "active", { timeoutMs: 120_000, intervalMs: 500 }).catch((e) => e);
    });
    expect(failed.state).toBe("deploy failed");
    expect(failed.lastError).toContain("write_image");
    expect(failed.lastError).toContain(`not ${wrong} as the deployer said`);
    expect(events).not.toContain("power off");
    const logs = join(host.ironic.dir, "deploy-logs");
    const archives = readdirSync(logs).filter((f) => f.endsWith(".tar.gz"));
    expect(archives.length).toBeGreaterThanOrEqual(1);
    const listing = await Bun.$`tar -tzf ${join(logs, archives[0]!)}`.text();
    expect(listing.trim()).toBe("agent.log");
    expect(existsSync(agentLog)).toBe(true);
  }, 180_000);
});
