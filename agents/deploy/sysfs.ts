import { lstatSync, readFileSync, readlinkSync } from "node:fs";
import { basename, join } from "node:path";

/** A sysfs attribute, trimmed; undefined when it is missing or unreadable. */
export function attr(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** A device folder in sysfs as udev sees it: its subsystem (the link's name), DEVTYPE, name. */
export interface SysDevice {
  dir: string;
  subsystem?: string;
  devtype?: string;
  sysname: string;
}

export function sysDevice(dir: string): SysDevice {
  let subsystem: string | undefined;
  try {
    subsystem = basename(readlinkSync(join(dir, "subsystem")));
  } catch {}
  const devtype = /^DEVTYPE=(.*)$/m.exec(attr(join(dir, "uevent")) ?? "")?.[1];
  return { dir, subsystem, devtype, sysname: basename(dir) };
}

/** The device's ancestors that are devices, nearest first, up to (not including) `${sys}/devices`. */
export function ancestors(sys: string, dir: string): SysDevice[] {
  const top = join(sys, "devices");
  const out: SysDevice[] = [];
  for (let d = dir; d.startsWith(`${top}/`); d = d.slice(0, d.lastIndexOf("/"))) if (isLink(join(d, "subsystem"))) out.push(sysDevice(d));
  return out;
}

function isLink(path: string) {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
