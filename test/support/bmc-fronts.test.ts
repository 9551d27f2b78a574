import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { writeCredentials } from "./bmc-credentials.ts";
import { bootOverride, createMachine } from "./chassis.ts";
import { startRedfish, type RedfishServer } from "./redfish.ts";

/**
 * The two BMC fronts' boot-override and login rules, on real machine
 * folders that are never powered on (no qemu, no root): what the Redfish
 * server accepts and refuses, and what ipmi_sim's chassis program answers.
 */
let dir: string;
let redfish: RedfishServer;
const auth = { Authorization: `Basic ${Buffer.from("admin:good-password").toString("base64")}` };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ooo-bmc-fronts-"));
  for (const [name, firmware] of [["bios0", "bios"], ["uefi0", "uefi"]] as const) {
    mkdirSync(join(dir, name));
    const netboot = firmware === "bios" ? "ipxe" : "pxe";
    createMachine(join(dir, name), { name, firmware, netboot, mac: "52:54:00:00:00:01", netns: "unused", tap: "tap0" });
  }
  writeCredentials(join(dir, "creds.json"), { username: "admin", password: "good-password" });
  redfish = startRedfish({ systems: { bios0: join(dir, "bios0"), uefi0: join(dir, "uefi0") }, credentials: join(dir, "creds.json") });
});

afterAll(async () => {
  await redfish.stop();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string, headers: Record<string, string> = auth) => fetch(`${redfish.url}${path}`, { headers });
// Redfish bodies, as far as these tests read them.
type Body = { Members?: unknown; Boot?: Record<string, string>; error?: { message: string } };
const json = async (r: Response | Promise<Response>) => (await (await r).json()) as Body;
const patch = (path: string, body: unknown) =>
  fetch(`${redfish.url}${path}`, { method: "PATCH", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify(body) });

test("Redfish: the service root is open, everything else needs the login", async () => {
  expect((await get("/redfish/v1/", {})).status).toBe(200);
  expect((await get("/redfish/v1/Systems", {})).status).toBe(401);
  const wrong = { Authorization: `Basic ${Buffer.from("admin:bad-password").toString("base64")}` };
  expect((await get("/redfish/v1/Systems/bios0", wrong)).status).toBe(401);
  const systems = await json(get("/redfish/v1/Systems"));
  expect(systems.Members).toEqual([{ "@odata.id": "/redfish/v1/Systems/bios0" }, { "@odata.id": "/redfish/v1/Systems/uefi0" }]);
  expect((await get("/redfish/v1/Systems/nope")).status).toBe(404);
});

test("Redfish: boot overrides — set, read back, refused when they cannot apply", async () => {
  const sys = "/redfish/v1/Systems/uefi0";
  expect((await json(get(sys))).Boot).toMatchObject({ BootSourceOverrideTarget: "None", BootSourceOverrideEnabled: "Disabled", BootSourceOverrideMode: "UEFI" });
  expect((await patch(sys, { Boot: { BootSourceOverrideTarget: "Pxe", BootSourceOverrideEnabled: "Once", BootSourceOverrideMode: "UEFI" } })).status).toBe(204);
  expect((await json(get(sys))).Boot).toMatchObject({ BootSourceOverrideTarget: "Pxe", BootSourceOverrideEnabled: "Once" });
  expect(bootOverride(join(dir, "uefi0"))).toEqual({ target: "pxe", enabled: "once" });
  // A target alone keeps the frequency; None clears the override.
  expect((await patch(sys, { Boot: { BootSourceOverrideTarget: "Hdd" } })).status).toBe(204);
  expect(bootOverride(join(dir, "uefi0"))).toEqual({ target: "disk", enabled: "once" });
  expect((await patch(sys, { Boot: { BootSourceOverrideTarget: "None" } })).status).toBe(204);
  expect(bootOverride(join(dir, "uefi0"))).toEqual({ target: "none", enabled: "disabled" });
  // This firmware has one mode; targets it cannot boot are refused, as is anything unknown.
  const refused = await patch("/redfish/v1/Systems/bios0", { Boot: { BootSourceOverrideTarget: "Pxe", BootSourceOverrideMode: "UEFI" } });
  expect(refused.status).toBe(400);
  expect((await json(refused)).error?.message).toContain("bios0 boots Legacy only");
  expect((await patch(sys, { Boot: { BootSourceOverrideTarget: "Cd" } })).status).toBe(400);
  expect((await patch(sys, { Boot: { Bogus: 1 } })).status).toBe(400);
  expect(bootOverride(join(dir, "bios0"))).toEqual({ target: "none", enabled: "disabled" });
  const reset = await fetch(`${redfish.url}${sys}/Actions/ComputerSystem.Reset`, { method: "POST", headers: auth, body: JSON.stringify({ ResetType: "Nmi" }) });
  expect(reset.status).toBe(400);
});

test("IPMI chassis program: boot device one-time, power state from the machine", async () => {
  const machine = join(dir, "bios0");
  const program = resolve(import.meta.dir, "chassis-ipmi.ts");
  const run = async (...args: string[]) => {
    const p = Bun.spawn([process.execPath, program, machine, ...args], { stdout: "pipe", stderr: "pipe" });
    return { out: (await new Response(p.stdout).text()).trim(), code: await p.exited };
  };
  expect(await run("get", "power")).toEqual({ out: "power:0", code: 0 });
  expect(await run("set", "boot", "pxe")).toEqual({ out: "", code: 0 });
  expect(bootOverride(machine)).toEqual({ target: "pxe", enabled: "once" });
  expect(await run("get", "boot")).toEqual({ out: "boot:pxe", code: 0 });
  expect(await run("set", "boot", "default")).toMatchObject({ code: 0 });
  expect(await run("get", "boot")).toEqual({ out: "boot:default", code: 0 });
  expect((await run("set", "boot", "cdrom")).code).toBe(1);
  expect((await run("frobnicate")).code).toBe(2);
});
