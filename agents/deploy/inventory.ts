import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DEPLOY_VERSION, InventoryV1, normaliseMac, type Disk, type Inventory } from "../../wire/deploy.ts";
import { byPath } from "./by-path.ts";
import { attr } from "./sysfs.ts";

/**
 * The machine's hardware as the kernel shows it in /sys and /proc (the
 * ramdisk has no udev, lshw or dmidecode): disks, NICs, CPUs, memory, and
 * the firmware's own identity (DMI). `sys` and `proc` are roots so that
 * tests can hand it a fake tree.
 */
export interface Roots {
  sys: string;
  proc: string;
}
const REAL: Roots = { sys: "/sys", proc: "/proc" };

/** Block devices that are never a machine's disk: RAM and loop devices, CD drives, device-mapper, software RAID. */
const NOT_A_DISK = /^(loop|ram|zram|sr|fd|dm-|md|nbd)/;

export function disks(roots: Roots = REAL): Disk[] {
  const blockDir = join(roots.sys, "class/block");
  if (!existsSync(blockDir)) return [];
  return readdirSync(blockDir)
    .filter((name) => !NOT_A_DISK.test(name) && existsSync(join(blockDir, name, "device")) && !existsSync(join(blockDir, name, "partition")))
    .sort()
    .map((name) => disk(roots.sys, name))
    .filter((d) => d.size > 0);
}

function disk(sys: string, name: string): Disk {
  const dir = join(sys, "class/block", name);
  const device = join(dir, "device");
  const flag = (f: string) => {
    const v = attr(join(dir, f));
    return v === undefined ? undefined : v === "1";
  };
  const d: Disk = {
    name,
    size: Number(attr(join(dir, "size")) ?? 0) * 512,
    model: attr(join(device, "model")) || undefined,
    vendor: attr(join(device, "vendor")) || undefined,
    serial: attr(join(dir, "serial")) || attr(join(device, "serial")) || vpdSerial(join(device, "vpd_pg80")),
    wwn: wwn(attr(join(dir, "wwid")) ?? attr(join(device, "wwid"))),
    by_path: byPath(sys, name),
    rotational: flag("queue/rotational"),
    removable: flag("removable"),
  };
  return Object.fromEntries(Object.entries(d).filter(([, v]) => v !== undefined)) as Disk;
}

/** SCSI VPD page 0x80 (unit serial number): a 4-byte header, then the serial, space-padded. */
function vpdSerial(path: string): string | undefined {
  try {
    const page = readFileSync(path);
    if (page.length < 4 || page[1] !== 0x80) return undefined;
    return page.subarray(4, 4 + page.readUInt16BE(2)).toString("latin1").trim() || undefined;
  } catch {
    return undefined;
  }
}

/** udev's ID_WWN: a SCSI/ATA NAA id as 0x…, an NVMe id (eui.…, nvme.…) as the kernel gives it. */
export function wwn(wwid: string | undefined): string | undefined {
  if (!wwid) return undefined;
  const naa = /^naa\.([0-9a-f]+)$/i.exec(wwid);
  return naa ? `0x${naa[1]!.toLowerCase()}` : wwid;
}

export function nics(roots: Roots = REAL): Inventory["nics"] {
  const netDir = join(roots.sys, "class/net");
  if (!existsSync(netDir)) return [];
  const out: Inventory["nics"] = [];
  for (const name of readdirSync(netDir).sort()) {
    // Physical NICs only: virtual interfaces (lo, bridges) have no device.
    if (!existsSync(join(netDir, name, "device"))) continue;
    const mac = normaliseMac(attr(join(netDir, name, "address")) ?? "");
    if (!mac) continue;
    // Reading carrier of an interface that is down fails (EINVAL): no link known.
    const carrier = attr(join(netDir, name, "carrier"));
    out.push({ name, mac, ...(carrier === undefined ? {} : { link: carrier === "1" }) });
  }
  return out;
}

export function cpus(roots: Roots = REAL): Inventory["cpus"] {
  const text = attr(join(roots.proc, "cpuinfo")) ?? "";
  const count = (text.match(/^processor\s*:/gm) ?? []).length || 1;
  const model = /^model name\s*:\s*(.*)$/m.exec(text)?.[1]?.trim();
  return { count, ...(model ? { model } : {}) };
}

/**
 * The machine's memory: the memory blocks the kernel has online (all of
 * RAM, what the kernel keeps for itself included), else MemTotal.
 */
export function memoryBytes(roots: Roots = REAL): number {
  const mem = join(roots.sys, "devices/system/memory");
  const blockSize = Number.parseInt(attr(join(mem, "block_size_bytes")) ?? "", 16);
  if (blockSize > 0 && existsSync(mem)) {
    const online = readdirSync(mem).filter((d) => /^memory\d+$/.test(d) && attr(join(mem, d, "online")) === "1").length;
    if (online) return online * blockSize;
  }
  const kb = Number(/^MemTotal:\s+(\d+) kB/m.exec(attr(join(roots.proc, "meminfo")) ?? "")?.[1] ?? 0);
  return kb * 1024;
}

export function system(roots: Roots = REAL): Inventory["system"] {
  const dmi = (f: string) => attr(join(roots.sys, "class/dmi/id", f)) || undefined;
  const s = { vendor: dmi("sys_vendor"), product: dmi("product_name"), serial: dmi("product_serial") };
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined));
}

export function inventory(roots: Roots = REAL): Inventory {
  return InventoryV1.parse({
    version: DEPLOY_VERSION,
    boot_mode: existsSync(join(roots.sys, "firmware/efi")) ? "uefi" : "bios",
    cpus: cpus(roots),
    memory_bytes: memoryBytes(roots),
    disks: disks(roots),
    nics: nics(roots),
    system: system(roots),
  });
}
