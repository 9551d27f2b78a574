import type { BootMode } from "../../wire/deploy.ts";
import { BmcFailed } from "../errors.ts";
import type { PowerState } from "../drivers/driver.ts";
import type { Bmc, BootDevice } from "./bmc.ts";
import { readBmcLogin } from "./credentials.ts";

/**
 * IPMI through Debian's ipmitool, IPMI 2.0 (lanplus) with cipher suite 3
 * (HMAC-SHA1, AES: what Ironic uses; without -C ipmitool first spends ~10 s
 * failing to list the suites). The password reaches ipmitool on its stdin
 * (`-f /dev/stdin`, which it reads as a password file) — never -P, which
 * `ps` shows, nor -E, which /proc/PID/environ shows. That stdin must be a
 * file ipmitool can open by name: Bun gives a Blob as an anonymous memfd,
 * where a pipe would be a socket, which open() refuses (ENXIO) — ipmitool
 * then asks "Password:" on the same socket and works by accident, except
 * that every failure reads as a password file that could not be opened.
 */
const TIMEOUT_MS = 30_000;

export class IpmiBmc implements Bmc {
  readonly address: string;

  constructor(
    readonly machine: string,
    private readonly target: { host: string; port: number; credentials: string },
  ) {
    this.address = `ipmi://${target.host}:${target.port}`;
  }

  private async ipmitool(args: string[]): Promise<string> {
    const login = readBmcLogin(this.target.credentials);
    const argv = ["-I", "lanplus", "-C", "3", "-H", this.target.host, "-p", String(this.target.port), "-U", login.username, "-f", "/dev/stdin", "-N", "2", "-R", "3", ...args];
    let r: { exitCode: number | null; stdout: string; stderr: string; timedOut: boolean };
    try {
      const p = Bun.spawn(["ipmitool", ...argv], {
        stdin: new Blob([`${login.password}\n`]),
        stdout: "pipe",
        stderr: "pipe",
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" },
        timeout: TIMEOUT_MS,
      });
      const [stdout, stderr, exitCode] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      r = { exitCode, stdout, stderr, timedOut: p.signalCode !== null && exitCode !== 0 };
    } catch (e) {
      throw new BmcFailed(this.machine, `ipmitool could not run: ${(e as Error).message}`, { hint: "apt-get install ipmitool" });
    }
    if (r.timedOut) throw new BmcFailed(this.machine, `${this.address} did not answer within ${TIMEOUT_MS / 1000} s`);
    if (r.exitCode !== 0) {
      const said = r.stderr.trim().split("\n").filter(Boolean).slice(-3).join("; ") || `exit ${r.exitCode}`;
      const login = /RAKP|session|password|unauthorized|authentication/i.test(said);
      throw new BmcFailed(this.machine, `${this.address}: ipmitool ${args.join(" ")}: ${said}`, {
        hint: login ? `Check the username and password in ${this.target.credentials}, and that the user may use IPMI over LAN.` : undefined,
      });
    }
    return r.stdout.trim();
  }

  async powerState(): Promise<PowerState> {
    const out = await this.ipmitool(["power", "status"]);
    if (/\bon\b/i.test(out)) return "on";
    if (/\boff\b/i.test(out)) return "off";
    throw new BmcFailed(this.machine, `${this.address}: unexpected answer to power status: ${out.slice(0, 200)}`);
  }

  async power(action: "on" | "off" | "soft" | "reset"): Promise<void> {
    // A reset of a machine that is off does nothing on many BMCs: power it on instead.
    if (action === "reset" && (await this.powerState()) === "off") action = "on";
    await this.ipmitool(["power", action]);
  }

  async setBootDevice(device: BootDevice, options: { mode: BootMode; persistent?: boolean }): Promise<void> {
    // The IPMI spec clears boot flags 60 s after they are set unless this timer is off (Ironic: ipmi_disable_boot_timeout).
    await this.ipmitool(["raw", "0x00", "0x08", "0x03", "0x08"]);
    const opts = [options.mode === "uefi" ? "efiboot" : "", options.persistent ? "persistent" : ""].filter(Boolean);
    await this.ipmitool(["chassis", "bootdev", device === "network" ? "pxe" : "disk", ...(opts.length ? [`options=${opts.join(",")}`] : [])]);
  }
}

/** `host:port` (default port 623), `[v6]:port` or a bare host. */
export function parseIpmiAddress(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+))(?::(\d{1,5}))?$/.exec(text.trim());
  if (!m) return undefined;
  const port = m[3] ? Number(m[3]) : 623;
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}
