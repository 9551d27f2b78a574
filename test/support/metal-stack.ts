import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { execa } from "execa";
import { REPO } from "./images.ts";
import type { Netns } from "./netns.ts";
import { ULA_PREFIX } from "./dnsmasq.ts";
import type { TestMachine, Testbed } from "./testbed.ts";

/**
 * A stack file for the test bed's machines, and the `ooo` command line run
 * where a deployer of real machines runs: inside the test bed's namespace,
 * on the provisioning network (its bridge address, the machines' BMCs on
 * its loopback). Shared by test/integration/baremetal.test.ts and
 * bench/baremetal.ts.
 */
export const PROVISIONING = { address: "10.77.0.1", interface: "br0", dhcp: { range: "10.77.0.100-10.77.0.199" } };

export interface MetalMachine {
  machine: TestMachine;
  /** ipmi (default) or redfish. */
  via?: "ipmi" | "redfish";
  root_device?: Record<string, unknown>;
  /** A credentials file other than the test bed's (a wrong password). */
  credentials?: string;
}

/** One inventory entry's machines, as the stack file says them. */
export function machinesOf(bed: Testbed, list: MetalMachine[]): Record<string, unknown> {
  return Object.fromEntries(
    list.map(({ machine: m, via = "ipmi", root_device, credentials = bed.credentials }) => [
      m.name,
      {
        bmc: via === "ipmi" ? { address: `${m.ipmi.address}:${m.ipmi.port}`, credentials } : { url: `${bed.redfishInNetns}/redfish/v1/Systems/${m.systemId}`, credentials },
        macs: [m.mac],
        boot_mode: m.firmware,
        console_log: m.consoleLog,
        ...(root_device ? { root_device } : {}),
      },
    ]),
  );
}

export function writeMetalStack(file: string, stack: { name: string; ramdisk: string; inventory: Record<string, unknown>; roles: Record<string, unknown>; signalTimeout?: string }) {
  writeFileSync(
    file,
    stringify({
      version: 1,
      name: stack.name,
      settings: { signal_timeout: stack.signalTimeout ?? "40m", polling_interval: "3s" },
      inventory: stack.inventory,
      provisioning: { ...PROVISIONING, ramdisk: stack.ramdisk },
      roles: stack.roles,
    }),
  );
}

/** A credentials file with a wrong password (0600, as the deployer insists). */
export function wrongCredentials(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "wrong-bmc.yaml");
  writeFileSync(file, "username: admin\npassword: not-the-password\n", { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

/** The site's part of the provisioning network: an IPv6 prefix on the bridge, which dnsmasq advertises (Debian's iPXE then does not wait for one). */
export async function prepareBridge(netns: Netns) {
  await netns.run("ip", ["addr", "replace", `${ULA_PREFIX}::1/64`, "dev", netns.bridge]);
}

export const CLEAN_ENV = { ...process.env, NO_COLOR: "1", OOO_STORE_URL: "", OOO_STORE_TOKEN: "", OOO_STORE_CA: "" } as Record<string, string>;

/** `ooo ARGS` inside the namespace, as a user there would run it. */
export async function oooIn(netns: Netns, args: string[], env: Record<string, string> = CLEAN_ENV) {
  const [cmd, ...rest] = netns.wrap(process.execPath, [join(REPO, "cli/ooo.ts"), ...args]);
  const r = await execa(cmd!, rest, { reject: false, env, cwd: REPO });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Publish test images into the stack's embedded store (started by `ooo store-env`) and tag them. */
export async function publishInto(netns: Netns, stackFile: string, images: { base: string; version: string; tag?: string; name: string }[]) {
  const env = await oooIn(netns, ["store-env", stackFile]);
  if (env.code !== 0) throw new Error(`ooo store-env failed:\n${env.stderr}`);
  const storeEnv = { ...CLEAN_ENV, ...Object.fromEntries([...env.stdout.matchAll(/export (\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])) };
  for (const i of images) {
    const pub = await oooIn(netns, ["publish", i.base, "--image-version", i.version], storeEnv);
    if (pub.code !== 0) throw new Error(`publishing ${i.base} failed:\n${pub.stderr}`);
    if (i.tag) {
      const r = await oooIn(netns, ["promote", i.name, i.version, "--tag", i.tag], storeEnv);
      if (r.code !== 0) throw new Error(`promote ${i.name} ${i.version} failed:\n${r.stderr}`);
    }
  }
  return storeEnv;
}

/** The JSON report a `--json` command printed last; else what it said on stderr, as the failure. */
export function reportOf<T>(r: { code: number; stdout: string; stderr: string }): T {
  try {
    return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as T;
  } catch {
    throw new Error(`no JSON report (exit ${r.code}); stderr:\n${r.stderr.split("\n").slice(-60).join("\n")}`);
  }
}
