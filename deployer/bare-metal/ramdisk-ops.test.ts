import { afterAll, beforeAll, beforeEach, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { z } from "zod";
import { DeployClient } from "../../agents/deploy/client.ts";
import { DEPLOY_VERSION, type Command, type Inventory } from "../../wire/deploy.ts";
import type { Bmc } from "../bmc/bmc.ts";
import { bareMetalDriver, bareMetalPool } from "../drivers/bare-metal.ts";
import type { PowerState } from "../drivers/driver.ts";
import { DRIVERS } from "../drivers/index.ts";
import type { ImageCache, ResolvedImage } from "../images.ts";
import { metadataHandler } from "../metadata-service.ts";
import { powerOn, provision, waitForSignal, type NodeContext } from "../node-ops.ts";
import { noteProvisioning } from "../provisioning/settings.ts";
import type { StackStore } from "../services.ts";
import type { NodeSpec } from "../stack.ts";
import { StateDb } from "../state.ts";
import { Machines } from "./machines.ts";
import { releaseMachine } from "./ramdisk-ops.ts";

/**
 * node-ops for a bare-metal driver, around a BMC that only records what it
 * is asked (the code under test is the deployer's, not a BMC's) and a
 * ramdisk played by the deploy agent's own client against the real metadata
 * service: the deploy command and config drive, network boot and power-on,
 * kexec, a failure (node failed, machine off), the fast track, a disk known
 * to be too small, a boot from disk when kexec is not possible, and the erase
 * of `ooo delete`.
 */
const calls: string[] = [];
let power: PowerState = "off";
const bmc: Bmc = {
  address: "fake://m1",
  powerState: async () => power,
  power: async (a) => {
    calls.push(`power ${a}`);
    power = a === "off" ? "off" : "on";
  },
  setBootDevice: async (device, o) => void calls.push(`boot ${device} ${o.mode}${o.persistent ? " persistent" : ""}`),
};
const Pool = bareMetalPool("fakebm", z.strictObject({ id: z.string() }), "test machines");
DRIVERS.fakebm = bareMetalDriver<z.infer<typeof Pool>>({ name: "fakebm", pool: Pool, programs: [], bmc: () => bmc, resolveBmcPaths: (s) => s });
const POOL = Pool.parse({ driver: "fakebm", machines: { m1: { bmc: { id: "1" }, macs: ["52:54:00:aa:00:01"], boot_mode: "uefi" } } });

let dir: string;
let db: StateDb;
let book: Machines;
let server: ReturnType<typeof Bun.serve>;
let md: string;
let ctx: NodeContext;
const SPEC: NodeSpec = { name: "web-0", role: "web", index: 0, pool: "rack", driver: "fakebm", size: { memoryMiB: 1024, cpus: 1 }, metadata: {}, expose: [], machine: "m1" };
const IMAGE = {
  role: "web",
  ref: "kv@live",
  id: "i1",
  name: "kv",
  digest: `sha256:${"1".repeat(64)}`,
  disk: { sha256: "2".repeat(64), size: 2 * 2 ** 30 },
} as ResolvedImage;
const inventory = (diskBytes: number): Inventory => ({
  version: DEPLOY_VERSION,
  boot_mode: "uefi",
  cpus: { count: 1 },
  memory_bytes: 2 ** 30,
  disks: [{ name: "vda", size: diskBytes }],
  nics: [{ name: "eth0", mac: "52:54:00:aa:00:01" }],
});

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ooo-ramdisk-ops-"));
  db = StateDb.open(dir);
  book = new Machines(db);
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: metadataHandler({ db }) });
  md = `http://127.0.0.1:${server.port}`;
  noteProvisioning(dir, { address: "127.0.0.1", interface: "lo", dhcp: { proxy: true }, ramdisk: "ooo-deploy@1", ports: { metadata: server.port!, store: 9292, http: 8080, ironic: 6386 } });
  book.enroll({ name: "m1", pool: "rack", driver: "fakebm", config: POOL, macs: ["52:54:00:aa:00:01"] });
  db.createNode({ ...SPEC, idx: 0, poolConfig: POOL });
  const store = { url: "http://127.0.0.1:9292", readToken: "read-token", embedded: true, service: { name: "store", host: "127.0.0.1", portFile: "/dev/null" } } as unknown as StackStore;
  ctx = { db, run: db.startRun("deploy"), stateDir: dir, cache: {} as ImageCache, store, services: [], signalTimeoutSeconds: 20, pollingIntervalSeconds: 5 };
}, 30_000);

afterAll(() => {
  void server.stop(true);
  db.close();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

beforeEach(() => {
  calls.length = 0;
}, 30_000);

/** The ramdisk (m1's, unless told another machine's): looks up, takes the command, and answers as told. */
async function ramdisk(
  answer: (command: Command, client: DeployClient, etag?: string) => Promise<void>,
  machine: { mac: string; bootMode: "uefi" | "bios" } = { mac: "52:54:00:aa:00:01", bootMode: "uefi" },
) {
  const client = new DeployClient(md);
  await client.lookup({ version: DEPLOY_VERSION, macs: [machine.mac], boot_mode: machine.bootMode, agent: "test" });
  const got = await client.command(undefined, 0);
  if (got === "unchanged") throw new Error("no command");
  await answer(got.command, client, got.etag);
  return client;
}

/** A BIOS machine's ramdisk given its erase (then `then`): it says it erased; the client and the command's ETag. */
async function ramdiskErases(mac: string, then: "standby" | "poweroff") {
  let etag: string | undefined;
  const client = await ramdisk(
    async (command, c, tag) => {
      expect(command).toEqual({ version: DEPLOY_VERSION, action: "erase", then });
      etag = tag;
      await c.result({ action: "erase", status: "success", step: "erasing", message: "erased /dev/vda", restart: "none" });
    },
    { mac, bootMode: "bios" },
  );
  return { client, etag };
}

test("cold deploy: command and config drive recorded, network boot and power-on through the BMC, the ramdisk's kexec ends the wait", async () => {
  await provision(ctx, SPEC, IMAGE);
  const m = book.get("m1")!;
  expect(db.node("web-0")!.state).toBe("writing-image");
  expect(m.node).toBe("web-0");
  const deploy = m.command.action === "deploy" ? m.command.deploy : undefined;
  expect(deploy).toMatchObject({
    node: "web-0",
    image: { name: "kv", digest: IMAGE.digest, disk: { url: `http://127.0.0.1:9292/v2/ooo/blobs/sha256:${"2".repeat(64)}`, sha256: "2".repeat(64), size: 2 * 2 ** 30 } },
    store_token: "read-token",
    config_drive: { url: `http://127.0.0.1:${server.port}/v1/ramdisk/m1/config-drive` },
    restart: "kexec",
  });
  expect(statSync(join(dir, "nodes", "web-0")).mode & 0o777).toBe(0o700);
  expect(calls).toEqual([]);
  await powerOn(ctx, "web-0");
  expect(calls).toEqual(["boot network uefi", "power on"]);
  expect(book.get("m1")).toMatchObject({ state: "ramdisk", armed: true });
  const wait = waitForSignal(ctx, "web-0");
  await ramdisk(async (command, client) => {
    const d = command.action === "deploy" ? command.deploy : undefined;
    const drive = Buffer.from(await (await client.download(d!.config_drive.url, undefined, AbortSignal.timeout(5000))).arrayBuffer());
    expect(createHash("sha256").update(drive).digest("hex")).toBe(d!.config_drive.sha256);
    expect(readFileSync(join(dir, "nodes", "web-0", "config-drive.img")).equals(drive)).toBe(true);
    await client.result({ action: "deploy", status: "success", step: "restarting", message: "kexec", disk: "/dev/vda", restart: "kexec" });
    // The node then signals as any node does (the metadata service moves it).
    db.recordSignal({ node: "web-0", serial: 1, status: "SUCCESS", reason: "ok", body: "{}" });
    db.transition("web-0", "active", { fields: { signalled_serial: 1 } });
  });
  expect(await wait).toEqual({ ok: true });
  expect(book.get("m1")).toMatchObject({ state: "node", armed: false, token_hash: null });
}, 30_000);

test("a failed deploy: the node failed with the ramdisk's step, the machine powered off", async () => {
  await provision(ctx, SPEC, IMAGE);
  await powerOn(ctx, "web-0");
  // The machine ran the node: a reset into the network boot.
  expect(calls).toEqual(["boot network uefi", "power reset"]);
  const wait = waitForSignal(ctx, "web-0");
  await ramdisk((_, client) => client.result({ action: "deploy", status: "failure", step: "writing", message: "the download stalled", restart: "none", log_tail: "tail" }));
  const r = await wait;
  expect(r.ok).toBe(false);
  expect(!r.ok && r.error).toStartWith("the deploy ramdisk failed at writing: the download stalled");
  expect(calls.at(-1)).toBe("power off");
  expect(book.get("m1")!.state).toBe("off");
}, 30_000);

test("fast track: a machine waiting in the ramdisk gets the command with no power action; a known disk too small fails before", async () => {
  book.arm("m1", { version: DEPLOY_VERSION, action: "wait" });
  power = "on";
  const client = await ramdisk(async () => {});
  await client.inventory(inventory(2 * 2 ** 30)); // the image alone fills it: no room for the config drive
  await expect(provision(ctx, SPEC, IMAGE)).rejects.toThrow(/machine m1 \(as its ramdisk reported it\): no disk holds the image/);
  expect(calls).toEqual([]);
  await client.inventory(inventory(8 * 2 ** 30));
  await provision(ctx, SPEC, IMAGE);
  await powerOn(ctx, "web-0");
  expect(calls).toEqual([]);
  expect(db.events({ node: "web-0" }).some((e) => e.kind === "fast-track")).toBe(true);
  const wait = waitForSignal(ctx, "web-0");
  const next = await client.command(undefined, 0);
  expect(next !== "unchanged" && next.command.action).toBe("deploy");
  // kexec not possible: the deployer boots the disk through the BMC.
  await client.result({ action: "deploy", status: "success", step: "restarting", message: "no kexec", restart: "firmware" });
  db.recordSignal({ node: "web-0", serial: 3, status: "SUCCESS", reason: "ok", body: "{}" });
  db.transition("web-0", "active", { fields: { signalled_serial: db.node("web-0")!.serial } });
  expect(await wait).toEqual({ ok: true });
  expect(calls).toEqual(["boot disk uefi", "power reset"]);
}, 30_000);

test("ooo delete: the ramdisk erases the disks, then the machine is off and free", async () => {
  const release = releaseMachine(db, db.node("web-0")!);
  for (let i = 0; i < 100 && calls.length < 2; i++) await Bun.sleep(20);
  expect(calls).toEqual(["boot network uefi", "power reset"]);
  await ramdisk(async (command, client) => {
    expect(command).toEqual({ version: DEPLOY_VERSION, action: "erase", then: "poweroff" });
    await client.result({ action: "erase", status: "success", step: "erasing", message: "erased /dev/vda", restart: "none" });
    power = "off";
  });
  await release;
  expect(book.get("m1")).toMatchObject({ node: null, state: "off" });
}, 30_000);

test("ooo delete of a standby machine: erased, told to wait, and back in standby before the command returns", async () => {
  const pool = Pool.parse({ driver: "fakebm", standby: true, machines: { m2: { bmc: { id: "2" }, macs: ["52:54:00:aa:00:02"], boot_mode: "bios" } } });
  book.enroll({ name: "m2", pool: "spare", driver: "fakebm", config: pool, macs: ["52:54:00:aa:00:02"] });
  db.createNode({ ...SPEC, name: "spare-0", role: "spare", pool: "spare", machine: "m2", idx: 0, poolConfig: pool });
  book.assign("m2", "spare-0");
  power = "on";
  let settled = false;
  const release = releaseMachine(db, db.node("spare-0")!).then(() => (settled = true));
  for (let i = 0; i < 100 && calls.length < 2; i++) await Bun.sleep(20);
  const { client, etag } = await ramdiskErases("52:54:00:aa:00:02", "standby");
  // Not done until the ramdisk says it waits: the next command it gets is wait.
  const next = await client.command(etag, 5);
  if (next === "unchanged") throw new Error("no new command after the erase");
  expect(next.command).toEqual({ version: DEPLOY_VERSION, action: "wait" });
  await Bun.sleep(300);
  expect(settled).toBe(false);
  await client.progress({ phase: "waiting" });
  await release;
  expect(book.get("m2")).toMatchObject({ node: null, state: "ramdisk", phase: "waiting" });
  expect(calls.filter((c) => c.startsWith("power off"))).toEqual([]);
}, 30_000);

test("ooo delete of a machine whose BMC drops the one-time network boot: its node's ready line on the console sends it to the network again; twice is reported, and it is powered off", async () => {
  const consoleLog = join(dir, "m3-console.log");
  writeFileSync(consoleLog, "earlier boots\n");
  const READY_LINE = `OOO-READY {"slot":"A","trial":0,"rootReadOnly":true,"state":{"kind":"partition","device":"/dev/vda5","mounted":true,"writable":true},"statePaths":[],"failedUnits":[],"uptime":12.5}\n`;
  const pool = Pool.parse({ driver: "fakebm", machines: { m3: { bmc: { id: "3" }, macs: ["52:54:00:aa:00:03"], boot_mode: "bios", console_log: consoleLog } } });
  book.enroll({ name: "m3", pool: "drops", driver: "fakebm", config: pool, macs: ["52:54:00:aa:00:03"] });
  const release = async (node: string) => {
    db.createNode({ ...SPEC, name: node, role: "drops", pool: "drops", machine: "m3", idx: 0, poolConfig: pool });
    book.assign("m3", node);
    power = "on";
    calls.length = 0;
    return releaseMachine(db, db.node(node)!);
  };
  const until = async (n: number) => {
    for (let i = 0; i < 200 && calls.length < n; i++) await Bun.sleep(20);
    return [...calls];
  };

  // Once: the machine came up from its disk; it is sent to the network again, and the ramdisk then erases.
  const first = release("drops-0");
  expect(await until(2)).toEqual(["boot network bios", "power reset"]);
  appendFileSync(consoleLog, `GRUB loading...\n${READY_LINE}`);
  expect(await until(4)).toEqual(["boot network bios", "power reset", "boot network bios", "power reset"]);
  await ramdiskErases("52:54:00:aa:00:03", "poweroff");
  power = "off";
  await first;
  expect(book.get("m3")).toMatchObject({ node: null, state: "off" });

  // Twice: said so (not a 15-minute wait for a ramdisk that does not come), and the machine powered off.
  const second = release("drops-1");
  await until(2);
  appendFileSync(consoleLog, READY_LINE);
  await until(4);
  appendFileSync(consoleLog, READY_LINE);
  await second;
  expect(calls.slice(4)).toEqual(["power off"]);
  expect(book.get("m3")).toMatchObject({ node: null, state: "off" });
}, 30_000);
