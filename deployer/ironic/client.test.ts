import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeCredentials } from "../../test/support/bmc-credentials.ts";
import { startIpmiBmc, type IpmiBmc } from "../../test/support/bmc-ipmi.ts";
import { createMachine } from "../../test/support/chassis.ts";
import { requireCommand } from "../../test/support/require.ts";
import { IronicFailed, IronicNodeFailed } from "../errors.ts";
import { IronicClient, ironicMessage } from "./client.ts";
import { ensureEmbeddedIronic, stopEmbeddedIronic, type EmbeddedIronic } from "./embedded.ts";
import { waitForAllocation, waitForPower, waitForProvisionState } from "./wait.ts";

/**
 * The Ironic client against a real embedded Ironic: `fake-hardware` nodes
 * (no BMC) for the API's shapes and state changes, and `ipmi` nodes whose
 * BMC is the test bed's ipmi_sim (its machine is never powered on) for
 * what Ironic learns from a BMC — and how a wrong BMC password shows.
 */
let stateDir: string;
let ironic: EmbeddedIronic;
let client: IronicClient;
let bmc: IpmiBmc;
const BMC_PASSWORD = "good-password-1";

beforeAll(async () => {
  requireCommand("ironic", "ironic-dbsync", "genisoimage", "ipmi_sim", "ipmitool");
  stateDir = mkdtempSync(join(tmpdir(), "ooo-ironic-client-"));
  const machine = join(stateDir, "m1");
  mkdirSync(machine);
  createMachine(machine, { name: "m1", firmware: "uefi", netboot: "pxe", mac: "52:54:00:00:00:01", netns: "unused", tap: "tap0" });
  writeCredentials(join(stateDir, "bmc.json"), { username: "admin", password: BMC_PASSWORD });
  [ironic, bmc] = await Promise.all([
    ensureEmbeddedIronic(stateDir),
    startIpmiBmc({ dir: join(stateDir, "bmc"), machineDir: machine, credentials: join(stateDir, "bmc.json"), name: "m1" }),
  ]);
  client = new IronicClient({ url: ironic.url, login: { username: ironic.username, password: ironic.password }, loginSource: ironic.loginFile });
}, 60_000);

afterAll(async () => {
  await bmc?.stop();
  if (stateDir) await stopEmbeddedIronic(stateDir);
  rmSync(stateDir, { recursive: true, force: true });
});

const fast = { timeoutMs: 30_000, intervalMs: 200 };

describe("fake-hardware nodes", () => {
  test("the API version is the highest both know", async () => {
    expect(await client.apiVersion()).toBe("1.82");
  });

  test("nodes by name, by resource class, across pages", async () => {
    for (const [name, rc] of [["a1", "ooo-a"], ["a2", "ooo-a"], ["a3", "ooo-a"], ["b1", "ooo-b"]])
      await client.createNode({ name, driver: "fake-hardware", resource_class: rc, deploy_interface: "fake", boot_interface: "fake" });
    const a = await client.listNodes({ resourceClass: "ooo-a", pageSize: 2 });
    expect(a.map((n) => n.name).sort()).toEqual(["a1", "a2", "a3"]);
    expect((await client.listNodes({ resourceClass: "ooo-b" })).map((n) => n.name)).toEqual(["b1"]);
    expect(await client.listNodes({ resourceClass: "ooo-none" })).toEqual([]);
    const b1 = await client.getNode("b1");
    expect(b1).toMatchObject({ name: "b1", driver: "fake-hardware", resource_class: "ooo-b", provision_state: "enroll", maintenance: false, last_error: null });
    await client.setMaintenance("b1", "a fan is loud");
    expect(await client.getNode("b1")).toMatchObject({ maintenance: true, maintenance_reason: "a fan is loud" });
    await client.setMaintenance("b1", false);
    expect(await client.getNode("b1")).toMatchObject({ maintenance: false, maintenance_reason: null });
    expect((await client.getNode(b1.uuid)).name).toBe("b1");
  });

  test("enroll → manageable → available → active with a config drive → available", async () => {
    const node = await client.createNode({ name: "f1", driver: "fake-hardware", deploy_interface: "fake", boot_interface: "fake" });
    await client.setProvisionState("f1", "manage");
    await waitForProvisionState(client, "f1", "manageable", fast);
    await client.setProvisionState("f1", "provide");
    await waitForProvisionState(client, "f1", "available", fast);

    const info = { image_source: "http://192.0.2.1/blob", image_os_hash_algo: "sha256", image_os_hash_value: "ab".repeat(32), image_disk_format: "raw" };
    const patched = await client.setInstanceInfo("f1", info);
    expect(patched.instance_info).toEqual(info);
    // `add` replaces a key that is there, and keeps the others.
    expect((await client.setInstanceInfo("f1", { image_disk_format: "qcow2" })).instance_info).toEqual({ ...info, image_disk_format: "qcow2" });
    const checks = await client.validate("f1");
    expect(checks.power).toEqual({ result: true });
    expect(checks.deploy).toEqual({ result: true });
    expect(checks.bios?.result).toBe(false);

    const states: string[] = [];
    await client.setProvisionState("f1", "active", { configdrive: { meta_data: { uuid: node.uuid, ooo: { node: "f1" } } } });
    const active = await waitForProvisionState(client, "f1", "active", { ...fast, onState: (n) => states.push(n.provision_state) });
    expect(active.instance_info.configdrive).toBe("******");
    expect(states.at(-1)).toBe("active");
    await client.setProvisionState("f1", "deleted");
    expect((await waitForProvisionState(client, "f1", "available", fast)).instance_info).toEqual({});
  });

  test("a node claimed from a resource class by an allocation of a UUID we choose; deleting it frees the node", async () => {
    const node = await client.createNode({ name: "c1", driver: "fake-hardware", resource_class: "ooo-claim", deploy_interface: "fake", boot_interface: "fake" });
    expect(await client.ports(node.uuid)).toEqual([]);
    await client.createPort(node.uuid, "52:54:00:00:00:c1");
    expect((await client.ports(node.uuid)).map((p) => p.address)).toEqual(["52:54:00:00:00:c1"]);
    // Not available yet: nothing to claim.
    const none = await client.createAllocation({ resource_class: "ooo-claim", name: "early" });
    const refused = await waitForAllocation(client, none.uuid, fast).catch((e) => e);
    expect(refused).toBeInstanceOf(IronicFailed);
    expect(refused.message).toContain("no node of resource class ooo-claim could be claimed");
    await client.deleteAllocation(none.uuid);

    await client.setProvisionState("c1", "manage");
    await waitForProvisionState(client, "c1", "manageable", fast);
    await client.setProvisionState("c1", "provide");
    await waitForProvisionState(client, "c1", "available", fast);
    // Ironic claims only nodes whose power state it knows: fake power has none until it is set.
    await client.setPowerState("c1", "power off");
    await waitForPower(client, "c1", "power off", fast);
    const uuid = crypto.randomUUID();
    const a = await client.createAllocation({ resource_class: "ooo-claim", uuid, name: "web-0" });
    expect(a).toMatchObject({ uuid, name: "web-0", resource_class: "ooo-claim" });
    const claimed = await waitForAllocation(client, uuid, fast);
    expect(claimed.node_uuid).toBe(node.uuid);
    expect((await client.getNode("c1")).instance_uuid).toBe(uuid);
    // One node, claimed: a second claim finds none.
    const second = await client.createAllocation({ resource_class: "ooo-claim", name: "web-1" });
    expect(await waitForAllocation(client, second.uuid, fast).catch((e) => e.message)).toContain("could be claimed");
    await client.deleteAllocation(second.uuid);
    await client.deleteAllocation(uuid);
    expect((await client.getNode("c1")).instance_uuid).toBeNull();
  });

  test("Ironic's errors name the node and carry its message", async () => {
    const missing = await client.getNode("nope").catch((e) => e);
    expect(missing).toBeInstanceOf(IronicFailed);
    expect(missing).toMatchObject({ node: "nope", status: 404 });
    expect(missing.message).toBe(`Ironic ${ironic.url}: node nope: Node nope could not be found. (HTTP 404)`);

    await client.createNode({ name: "e1", driver: "fake-hardware" });
    const refused = await client.setProvisionState("e1", "active").catch((e) => e);
    expect(refused).toMatchObject({ node: "e1", status: 400 });
    expect(refused.message).toMatch(/node e1: The requested action "active" can not be performed on node "[0-9a-f-]+" while it is in state "enroll"/);

    const duplicate = await client.createNode({ name: "e1", driver: "fake-hardware" }).catch((e) => e);
    expect(duplicate).toMatchObject({ node: "e1", status: 409 });
    expect(duplicate.message).toContain("already exists");

    const unknown = await client.createNode({ name: "e2", driver: "no-such-driver" }).catch((e) => e);
    expect(unknown.message).toContain("no-such-driver");

    // Waiting for a state the node cannot reach: the deadline says where it is.
    const stuck = await waitForProvisionState(client, "e1", "active", { timeoutMs: 300, intervalMs: 100 }).catch((e) => e);
    expect(stuck).toBeInstanceOf(IronicFailed);
    expect(stuck.message).toContain(`node e1: still "enroll" after 0.3 s; it should be "active"`);
  });

  test("a wrong login is refused, with where the login came from", async () => {
    const wrong = new IronicClient({ url: ironic.url, login: { username: "ooo", password: "not-it" }, loginSource: "/some/login.yaml" });
    const e = await wrong.getNode("a1").catch((e) => e);
    expect(e).toMatchObject({ status: 401, node: "a1" });
    expect(e.message).toContain("Incorrect username or password");
    expect(e.hint).toContain("/some/login.yaml");
    expect(e.message).not.toContain("not-it");
    const gone = await new IronicClient({ url: "http://127.0.0.1:9" }).getNode("a1").catch((e) => e);
    expect(gone).toBeInstanceOf(IronicFailed);
    expect(gone.hint).toContain("Is Ironic running");
  });

  test("Ironic's error bodies: a JSON string inside JSON, or anything else", () => {
    expect(ironicMessage(JSON.stringify({ error_message: JSON.stringify({ faultcode: "Client", faultstring: "Node x is locked by host ooo" }) }))).toBe("Node x is locked by host ooo");
    expect(ironicMessage(JSON.stringify({ error_message: { faultstring: "as an object" } }))).toBe("as an object");
    expect(ironicMessage("<html>Bad Gateway</html>")).toBe("<html>Bad Gateway</html>");
    expect(ironicMessage("")).toBe("no message");
  });
});

describe("ipmi nodes on ipmi_sim", () => {
  const ipmiNode = (name: string, password: string) => ({
    name,
    driver: "ipmi",
    driver_info: { ipmi_address: bmc.address, ipmi_port: bmc.port, ipmi_username: "admin", ipmi_password: password, ipmi_cipher_suite: 3, deploy_kernel: "http://192.0.2.1/k", deploy_ramdisk: "http://192.0.2.1/r" },
    properties: { capabilities: "boot_mode:uefi" },
  });

  test("validated, its BMC read, powered off and verified through Ironic; the password masked", async () => {
    const node = await client.createNode(ipmiNode("m1", BMC_PASSWORD));
    expect(node.driver_info.ipmi_password).toBe("******");
    // Without a port Ironic cannot boot it over the network.
    expect((await client.validate("m1")).boot).toMatchObject({ result: false, reason: expect.stringContaining("does not have any port") });
    await client.createPort(node.uuid, "52:54:00:00:00:01");
    const checks = await client.validate("m1");
    expect([checks.power?.result, checks.management?.result, checks.boot?.result]).toEqual([true, true, true]);
    expect(checks.deploy).toMatchObject({ result: false, reason: expect.stringContaining("image_source") });

    expect(await client.bootDevice("m1")).toEqual({ boot_device: null, persistent: false });
    await client.setPowerState("m1", "power off");
    expect((await waitForPower(client, "m1", "power off", fast)).power_state).toBe("power off");
    await client.setProvisionState("m1", "manage");
    expect((await waitForProvisionState(client, "m1", "manageable", fast)).power_state).toBe("power off");
  }, 90_000);

  test("a wrong BMC password: the BMC read fails at once, and verifying returns the node to enroll with Ironic's reason", async () => {
    await client.createNode(ipmiNode("m1-wrong", "wrong-password-1"));
    const started = Date.now();
    const read = await client.bootDevice("m1-wrong").catch((e) => e);
    expect(read).toMatchObject({ node: "m1-wrong", status: 500 });
    expect(read.message).toContain("IPMI call failed: chassis bootparam get 5.");
    // ipmitool's own retries, not Ironic's 60 s of them (use_ipmitool_retries).
    expect(Date.now() - started).toBeLessThan(20_000);
    await client.setProvisionState("m1-wrong", "manage");
    const failed = await waitForProvisionState(client, "m1-wrong", "manageable", fast).catch((e) => e);
    expect(failed).toBeInstanceOf(IronicNodeFailed);
    expect(failed).toMatchObject({ node: "m1-wrong", state: "enroll" });
    expect(failed.message).toContain("IPMI call failed: power status");
    expect(failed.message).not.toContain("wrong-password-1");
  }, 90_000);
});
