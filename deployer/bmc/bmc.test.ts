import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startIpmiBmc, type IpmiBmc as SimBmc } from "../../test/support/bmc-ipmi.ts";
import { bootOverride, createMachine } from "../../test/support/chassis.ts";
import { startRedfish, type RedfishServer } from "../../test/support/redfish.ts";
import { requireCommand } from "../../test/support/require.ts";
import { BmcCredentialsUnusable, BmcFailed } from "../errors.ts";
import { readBmcLogin } from "./credentials.ts";
import { IpmiBmc, parseIpmiAddress } from "./ipmi.ts";
import { RedfishBmc } from "./redfish.ts";

/**
 * The deployer's BMC clients against the test bed's BMCs — OpenIPMI's
 * ipmi_sim with its chassis program, and the Redfish front — on machine
 * folders that are never powered on (no qemu): power state, one-time boot
 * devices, and what a wrong login or a careless credentials file gives.
 */
const PASSWORD = "s3cret-pass-1234";
let dir: string;
let sim: SimBmc;
let redfish: RedfishServer;
let good: string;
let wrong: string;

function credentials(name: string, body: string, mode = 0o600) {
  const file = join(dir, name);
  writeFileSync(file, body);
  chmodSync(file, mode);
  return file;
}

beforeAll(async () => {
  requireCommand("ipmi_sim", "ipmitool");
  dir = mkdtempSync(join(tmpdir(), "ooo-bmc-test-"));
  mkdirSync(join(dir, "m1"));
  createMachine(join(dir, "m1"), { name: "m1", firmware: "bios", netboot: "ipxe", mac: "52:54:00:00:00:01", netns: "unused", tap: "tap0" });
  // The test bed's BMCs read JSON; ours reads YAML, of which JSON is a part.
  good = credentials("good.json", JSON.stringify({ username: "admin", password: PASSWORD }));
  wrong = credentials("wrong.yaml", "username: admin\npassword: not-the-password\n");
  sim = await startIpmiBmc({ dir: join(dir, "bmc"), machineDir: join(dir, "m1"), credentials: good, name: "m1" });
  redfish = startRedfish({ systems: { m1: join(dir, "m1") }, credentials: good });
});

afterAll(async () => {
  await sim?.stop();
  await redfish?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("credentials files", () => {
  test("read when 0600 and {username, password}; refused otherwise, never showing the content", () => {
    expect(readBmcLogin(good)).toEqual({ username: "admin", password: PASSWORD });
    const open = credentials("open.yaml", `username: admin\npassword: ${PASSWORD}\n`, 0o644);
    expect(() => readBmcLogin(open)).toThrow(BmcCredentialsUnusable);
    expect(() => readBmcLogin(open)).toThrow(/mode is 644.*chmod 600/);
    const extra = credentials("extra.yaml", `username: admin\npassword: ${PASSWORD}\nhost: x\n`);
    expect(() => readBmcLogin(extra)).toThrow(/must hold username and password only/);
    const noPassword = credentials("nopw.yaml", `username: admin\n`);
    try {
      readBmcLogin(noPassword);
      throw new Error("accepted");
    } catch (e) {
      expect((e as Error).message).toContain("password: invalid_type");
    }
    for (const f of [open, extra])
      try {
        readBmcLogin(f);
      } catch (e) {
        expect((e as Error).message).not.toContain(PASSWORD);
      }
    expect(() => readBmcLogin(join(dir, "missing.yaml"))).toThrow(/no such file/);
  });

  test("IPMI addresses: host, host:port, [v6]:port", () => {
    expect(parseIpmiAddress("10.0.0.2")).toEqual({ host: "10.0.0.2", port: 623 });
    expect(parseIpmiAddress("127.0.0.1:6230")).toEqual({ host: "127.0.0.1", port: 6230 });
    expect(parseIpmiAddress("[fd00::2]:624")).toEqual({ host: "fd00::2", port: 624 });
    expect(parseIpmiAddress("a:b:c")).toBeUndefined();
    expect(parseIpmiAddress("host:99999")).toBeUndefined();
  });
});

describe("IPMI (ipmitool → ipmi_sim)", () => {
  const ipmi = (file: string) => new IpmiBmc("m1", { host: sim.address, port: sim.port, credentials: file });

  test("power state, and one-time boot devices in legacy and UEFI mode", async () => {
    expect(await ipmi(good).powerState()).toBe("off");
    await ipmi(good).setBootDevice("network", { mode: "bios" });
    expect(bootOverride(join(dir, "m1"))).toEqual({ target: "pxe", enabled: "once" });
    await ipmi(good).setBootDevice("disk", { mode: "uefi" });
    expect(bootOverride(join(dir, "m1"))).toEqual({ target: "disk", enabled: "once" });
  }, 30_000);

  test("a wrong password: BmcFailed naming the machine and the credentials file, not the password", async () => {
    const t0 = performance.now();
    const e = await ipmi(wrong).powerState().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BmcFailed);
    expect((e as BmcFailed).message).toMatch(/^machine m1's BMC: ipmi:\/\/127\.0\.0\.1:\d+: ipmitool power status: .*(RAKP|session)/);
    expect((e as BmcFailed).hint).toContain(wrong);
    expect(`${(e as BmcFailed).message} ${(e as BmcFailed).hint}`).not.toContain("not-the-password");
    // The password file (its stdin) was read: only the login failed, and nothing asked for a password.
    expect((e as BmcFailed).message).not.toMatch(/password file|Password:/);
    expect(performance.now() - t0).toBeLessThan(20_000);
  }, 30_000);

  test("nothing answers: BmcFailed within the timeout", async () => {
    const e = await new IpmiBmc("m9", { host: "127.0.0.1", port: 9, credentials: good }).powerState().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BmcFailed);
    expect((e as Error).message).toContain("machine m9's BMC");
  }, 40_000);
});

describe("Redfish (fetch → the test bed's Redfish front)", () => {
  const rf = (file: string) => new RedfishBmc("m1", { url: `${redfish.url}/redfish/v1/Systems/m1`, credentials: file });

  test("power state, one-time boot devices in the firmware's mode, and a mode it does not have refused", async () => {
    expect(await rf(good).powerState()).toBe("off");
    await rf(good).setBootDevice("network", { mode: "bios" });
    expect(bootOverride(join(dir, "m1"))).toEqual({ target: "pxe", enabled: "once" });
    await rf(good).setBootDevice("disk", { mode: "bios", persistent: true });
    expect(bootOverride(join(dir, "m1"))).toEqual({ target: "disk", enabled: "continuous" });
    const e = await rf(good).setBootDevice("network", { mode: "uefi" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BmcFailed);
    expect((e as Error).message).toContain("m1 boots Legacy only");
  });

  test("a wrong password: 401 as BmcFailed with the credentials file in the hint", async () => {
    const e = await rf(wrong).powerState().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BmcFailed);
    expect((e as BmcFailed).message).toContain("401: the BMC refused the login");
    expect((e as BmcFailed).hint).toContain(wrong);
  });
});
