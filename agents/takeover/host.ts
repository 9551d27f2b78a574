import { readdirSync, readFileSync, realpathSync } from "node:fs";
import { basename, join } from "node:path";
import { capture } from "../../lib/run.ts";

/**
 * What the takeover asks of the running system: memory, device sizes and
 * partition UUIDs, whether a shutdown is under way. From /proc and /sys
 * where they say it: under emulation every process started costs a tenth
 * of a second or more.
 */

export function memAvailable(): number {
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

export async function blockDeviceSize(dev: string): Promise<number> {
  const sectors = Number(readFileSync(`/sys/class/block/${basename(realpathSync(dev))}/size`, "utf8").trim());
  if (Number.isFinite(sectors) && sectors > 0) return sectors * 512;
  return Number((await capture("blockdev", ["--getsize64", dev])).trim());
}

/** The partition UUID of `device`, as /dev/disk/by-partuuid names it (root=PARTUUID=…). */
export function partuuidOf(device: string): string {
  const dir = "/dev/disk/by-partuuid";
  const want = realpathSync(device);
  for (const name of readdirSync(dir)) if (realpathSync(join(dir, name)) === want) return name;
  throw new Error(`${device} has no partition UUID in ${dir}`);
}

/** Whether systemd is shutting down (then a kexec or a reboot is under way: nothing to fall back to). */
export function shuttingDown(): boolean {
  const r = Bun.spawnSync(["systemctl", "is-system-running"], { stdout: "pipe", stderr: "ignore" });
  return r.stdout.toString().trim() === "stopping";
}
