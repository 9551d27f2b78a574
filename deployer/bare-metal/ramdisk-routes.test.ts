import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeployClient, TokenRejected } from "../../agents/deploy/client.ts";
import { pinnedCa } from "../../agents/deploy/pinned-ca.ts";
import { ensureCa, ensureServerCert } from "../../lib/certs.ts";
import { serverTls } from "../../lib/tls.ts";
import { caFingerprint, DEPLOY_VERSION, type Command, type Inventory } from "../../wire/deploy.ts";
import { metadataHandler } from "../metadata-service.ts";
import { bootRoutes, LOCAL_BOOT_SCRIPT, ramdiskFilesPath } from "../provisioning/boot-routes.ts";
import type { StackProvisioning } from "../stack.ts";
import { StateDb } from "../state.ts";
import { machineEventName, Machines } from "./machines.ts";

/**
 * The metadata service's ramdisk routes and the boot files, spoken to by
 * the deploy ramdisk's own client code (agents/deploy/client.ts,
 * pinned-ca.ts) over real https with a CA made by lib/certs.ts: the boot
 * script a machine gets, the CA pinned by its sha256, a lookup answered
 * once per arming, the inventory kept, a command long-polled, progress as
 * events on the node, the config drive, a failure that fails the node, and
 * tokens that open one machine only.
 */
const MAC = "52:54:00:aa:00:01";
const OTHER_MAC = "52:54:00:aa:00:02";
let dir: string;
let db: StateDb;
let book: Machines;
let ca: string;
let servers: ReturnType<typeof Bun.serve>[] = [];
let md: string;
let boot: string;

const pool = {
  driver: "ipmi",
  standby: false,
  machines: {
    m1: { bmc: { address: "127.0.0.1:9", credentials: "/nonexistent" }, macs: [MAC], boot_mode: "uefi", console: "ttyS1,115200" },
    m2: { bmc: { address: "127.0.0.1:9", credentials: "/nonexistent" }, macs: [OTHER_MAC], boot_mode: "bios", console: "ttyS0,115200n8" },
  },
};

const INVENTORY: Inventory = {
  version: DEPLOY_VERSION,
  boot_mode: "uefi",
  cpus: { count: 2, model: "qemu" },
  memory_bytes: 2 ** 30,
  disks: [{ name: "vda", size: 8 * 2 ** 30, serial: "ROOT-1" }],
  nics: [{ name: "eth0", mac: MAC, link: true }],
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ooo-ramdisk-routes-"));
  db = StateDb.open(dir);
  book = new Machines(db);
  for (const [name, m] of Object.entries(pool.machines)) book.enroll({ name, pool: "rack", driver: "ipmi", config: pool, macs: m.macs });
  db.createNode({ name: "web-0", role: "web", idx: 0, pool: "rack", poolConfig: pool, driver: "ipmi", size: { memoryMiB: 1024, cpus: 1 }, machine: "m1" });
  for (const to of ["writing-image", "powering-on", "booting"] as const) db.transition("web-0", to);
  book.assign("m1", "web-0");
  mkdirSync(join(dir, "nodes", "web-0"), { recursive: true });
  writeFileSync(join(dir, "nodes", "web-0", "config-drive.img"), "a config drive");
  const caFiles = await ensureCa(join(dir, "tls"), "test CA");
  const cert = await ensureServerCert(caFiles, join(dir, "tls"), "services", ["127.0.0.1"]);
  // stackTls() finds the CA where a stack keeps it.
  ca = await Bun.file(caFiles.cert).text();
  const kernel = join(dir, "vmlinuz");
  const initramfs = join(dir, "initramfs");
  writeFileSync(kernel, "kernel bytes");
  writeFileSync(initramfs, "initramfs bytes");
  mkdirSync(join(dir, "provisioning"), { recursive: true });
  writeFileSync(
    ramdiskFilesPath(dir),
    JSON.stringify({ name: "ooo-deploy", digest: `sha256:${"1".repeat(64)}`, kernel: { path: kernel, sha256: "a".repeat(64) }, initramfs: { path: initramfs, sha256: "b".repeat(64) } }),
  );
  const handler = metadataHandler({ db });
  const mdServer = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: handler, tls: serverTls(cert) });
  md = `https://127.0.0.1:${mdServer.port}`;
  const bootServer = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => routes(req) });
  boot = `http://127.0.0.1:${bootServer.port}`;
  const provisioning: StackProvisioning = {
    address: "127.0.0.1",
    interface: "lo",
    dhcp: { proxy: true },
    ramdisk: "ooo-deploy@stable",
    ports: { metadata: mdServer.port!, store: 9292, http: bootServer.port!, ironic: 6386 },
  };
  const routes = bootRoutes({ db, provisioning });
  servers = [mdServer, bootServer];
});

afterAll(() => {
  for (const s of servers) void s.stop(true);
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const lookupBody = (macs: string[]) => JSON.stringify({ version: DEPLOY_VERSION, macs, boot_mode: "uefi", agent: "test" });
const rawLookup = (macs: string[]) => fetch(`${md}/v1/ramdisk/lookup`, { method: "POST", body: lookupBody(macs), headers: { "content-type": "application/json" }, tls: { ca } });

describe("boot files", () => {
  test("iPXE: one chain script; per MAC the ramdisk while the machine is in it, else its disk", async () => {
    const chain = await (await fetch(`${boot}/boot/ipxe`)).text();
    expect(chain).toStartWith("#!ipxe\n");
    expect(chain).toContain(`chain ${boot}/boot/ipxe/\${mac:hexhyp}`);
    const perMac = (mac: string) => fetch(`${boot}/boot/ipxe/${mac.replaceAll(":", "-").toUpperCase()}`).then((r) => r.text());
    expect(await perMac(MAC)).toBe(LOCAL_BOOT_SCRIPT);
    book.arm("m1", { version: DEPLOY_VERSION, action: "wait" });
    const script = await perMac(MAC);
    const fp = caFingerprint(ca);
    expect(script).toContain(`kernel ${boot}/boot/ramdisk/${"a".repeat(64)}/vmlinuz initrd=initramfs console=tty0 console=ttyS1,115200 ooo.md=${md} ooo.ca=${fp} ooo.ca_url=${boot}/boot/ca.pem BOOTIF=01-52-54-00-aa-00-01`);
    expect(script).toContain(`initrd --name initramfs ${boot}/boot/ramdisk/${"b".repeat(64)}/initramfs`);
    expect(await perMac("52:54:00:99:99:99")).toBe(LOCAL_BOOT_SCRIPT);
    expect(await (await fetch(`${boot}/boot/ramdisk/${"a".repeat(64)}/vmlinuz`)).text()).toBe("kernel bytes");
    expect((await fetch(`${boot}/boot/ramdisk/${"c".repeat(64)}/vmlinuz`)).status).toBe(404);
    // The ramdisk's own code takes the CA only with the pinned sha256.
    expect(await pinnedCa(`${boot}/boot/ca.pem`, fp)).toBe(ca);
  });

  test("a machine the embedded Ironic boots gets Ironic's script, and Ironic's files are served from its httpboot only", async () => {
    // As Ironic 21.4 lays them out: a folder per node, and a link per MAC to its script.
    const http = join(dir, "ironic", "httpboot");
    mkdirSync(join(http, "node-1"), { recursive: true });
    writeFileSync(join(http, "node-1", "config"), "#!ipxe\nkernel http://x/ironic/node-1/deploy_kernel ipa-api-url=http://x:6386\nboot\n");
    writeFileSync(join(http, "node-1", "deploy_kernel"), "ironic's copy of the kernel");
    symlinkSync("node-1/config", join(http, "52:54:00:77:00:01.conf"));
    symlinkSync("../../state.db", join(http, "escape"));
    const perMac = (mac: string) => fetch(`${boot}/boot/ipxe/${mac.replaceAll(":", "-")}`).then((r) => r.text());
    expect(await perMac("52:54:00:77:00:01")).toContain("ipa-api-url=http://x:6386");
    expect(await perMac("52:54:00:77:00:02")).toBe(LOCAL_BOOT_SCRIPT);
    expect(await (await fetch(`${boot}/ironic/node-1/deploy_kernel`)).text()).toBe("ironic's copy of the kernel");
    for (const path of ["/ironic/escape", "/ironic/..%2Fstate.db", "/ironic/node-1", "/ironic/nothing"]) expect([path, (await fetch(`${boot}${path}`)).status]).toEqual([path, 404]);
  });
});

describe("ramdisk routes, through the ramdisk's client", () => {
  let client: DeployClient;

  test("a lookup is answered only while the machine is armed, once per arming", async () => {
    book.disarm("m1", "off");
    expect((await rawLookup([MAC])).status).toBe(404);
    book.arm("m1", { version: DEPLOY_VERSION, action: "wait" });
    client = new DeployClient(md, { ca });
    const answer = await client.lookup({ version: DEPLOY_VERSION, macs: [MAC], boot_mode: "uefi", agent: "test" });
    expect(answer).toMatchObject({ machine: "m1", poll_interval: 5 });
    expect((await rawLookup([MAC])).status).toBe(404);
    expect(db.events({ node: "web-0" }).some((e) => e.kind === "ramdisk-lookup")).toBe(true);
  });

  test("inventory kept; commands long-polled by ETag; progress as events on the node; the config drive", async () => {
    await client.inventory(INVENTORY);
    expect(book.get("m1")!.inventory).toEqual(INVENTORY);
    const first = await client.command(undefined, 0);
    expect(first).toMatchObject({ command: { action: "wait" } });
    const etag = (first as { etag: string }).etag;
    const t0 = performance.now();
    expect(await client.command(etag, 1)).toBe("unchanged");
    expect(performance.now() - t0).toBeGreaterThan(900);
    const erase: Command = { version: DEPLOY_VERSION, action: "erase", then: "standby" };
    setTimeout(() => book.setCommand("m1", erase), 300);
    const t1 = performance.now();
    const changed = await client.command(etag, 10);
    expect(changed).toMatchObject({ command: erase });
    expect(performance.now() - t1).toBeLessThan(3000);
    await client.progress({ phase: "writing", bytes_done: 10, bytes_total: 100 });
    expect(db.events({ node: "web-0" }).find((e) => e.kind === "ramdisk")?.detail).toMatchObject({ machine: "m1", phase: "writing", bytes_done: 10 });
    // No deploy command: no config drive.
    await expect(client.download(`${md}/v1/ramdisk/m1/config-drive`, undefined, AbortSignal.timeout(5000))).rejects.toThrow(/404/);
    book.setCommand("m1", { version: DEPLOY_VERSION, action: "deploy", deploy: { node: "web-0", image: { name: "x", digest: `sha256:${"2".repeat(64)}`, disk: { url: "https://store/x", sha256: "3".repeat(64), size: 1 } }, config_drive: { url: `${md}/v1/ramdisk/m1/config-drive`, sha256: "4".repeat(64), size: 14 }, restart: "kexec" } });
    const drive = await client.download(`${md}/v1/ramdisk/m1/config-drive`, undefined, AbortSignal.timeout(5000));
    expect(await drive.text()).toBe("a config drive");
  });

  test("a failed deploy fails the node with the step and the log's end", async () => {
    await client.result({ action: "deploy", status: "failure", step: "selecting-disk", message: "no disk holds the image", restart: "none", log_tail: "ooo-deploy: line 1\nooo-deploy: line 2\n" });
    const node = db.node("web-0")!;
    expect(node.state).toBe("failed");
    expect(node.error).toBe("the deploy ramdisk failed at selecting-disk: no disk holds the image\nthe ramdisk's log ends:\nooo-deploy: line 1\nooo-deploy: line 2");
    expect(book.get("m1")!.result).toMatchObject({ status: "failure", step: "selecting-disk" });
  });

  test("a token opens its own machine only; arming again retires it", async () => {
    book.arm("m2", { version: DEPLOY_VERSION, action: "wait" });
    const other = new DeployClient(md, { ca });
    await other.lookup({ version: DEPLOY_VERSION, macs: [OTHER_MAC], boot_mode: "bios", agent: "test" });
    other.machine = "m1"; // m2's token on m1's URLs
    await expect(other.inventory(INVENTORY)).rejects.toBeInstanceOf(TokenRejected);
    book.arm("m1", { version: DEPLOY_VERSION, action: "wait" });
    await expect(client.command(undefined, 0)).rejects.toBeInstanceOf(TokenRejected);
    // Events of a machine no node runs on are kept under the machine.
    other.machine = "m2";
    await other.progress({ phase: "waiting" });
    expect(db.events({ node: machineEventName("m2") }).some((e) => e.kind === "ramdisk" && e.detail?.phase === "waiting")).toBe(true);
  });

  test("a client that does not trust the stack's CA gets nowhere", async () => {
    book.arm("m1", { version: DEPLOY_VERSION, action: "wait" });
    const r = await fetch(`${md}/v1/ramdisk/lookup`, { method: "POST", body: lookupBody([MAC]) }).catch((e: Error) => e);
    expect(r).toBeInstanceOf(Error);
    expect(book.get("m1")!.armed).toBe(true);
  });
});
