import { readdirSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { ancestors, attr, type SysDevice } from "./sysfs.ts";

/**
 * A disk's /dev/disk/by-path/ name, computed from sysfs as udev's path_id
 * builtin (systemd 252, Debian bookworm) composes it — the ramdisk has no
 * udev, and a root device hint `by_path` must match what the operator sees
 * on a running system. Covered: PCI, virtio (virtio-blk, virtio-scsi), ATA,
 * NVMe (with or without multipath), SCSI (plain, SAS direct and expander,
 * FC), USB. Undefined for what path_id names no path for (or we do not
 * know): iSCSI, Hyper-V, and devices without a known parent bus.
 */
export function byPath(sys: string, name: string): string | undefined {
  let dir: string;
  try {
    dir = realpathSync(join(sys, "class/block", name));
  } catch {
    return undefined;
  }
  const parts: string[] = [];
  let transport = false;
  let parentKnown = false;
  let chain = ancestors(sys, dir);
  for (let i = 0; i < chain.length; i++) {
    const dev = chain[i]!;
    // path_id's skip_subsystem: a run of devices of one subsystem counts once (the topmost).
    const skip = (subsystem: string) => {
      while (chain[i + 1]?.subsystem === subsystem) i++;
    };
    switch (dev.subsystem) {
      case "scsi": {
        if (dev.devtype !== "scsi_device") break;
        transport = true;
        const handled = scsi(sys, dev, chain.slice(i));
        if (!handled) return undefined;
        parts.unshift(handled.part);
        if (handled.known) parentKnown = true;
        i += handled.skip;
        break;
      }
      case "virtio":
        transport = true;
        skip("virtio");
        break;
      case "pci":
        parts.unshift(`pci-${dev.sysname}`);
        parentKnown = true;
        skip("pci");
        break;
      case "platform":
      case "acpi":
      case "xen":
        parts.unshift(`${dev.subsystem}-${dev.sysname}`);
        parentKnown = true;
        if (dev.subsystem === "platform") transport = true;
        skip(dev.subsystem);
        break;
      case "usb": {
        if (dev.devtype !== "usb_interface" && dev.devtype !== "usb_device") break;
        const port = dev.sysname.slice(dev.sysname.indexOf("-") + 1);
        if (!dev.sysname.includes("-")) break;
        parts.unshift(`usb-0:${port}`);
        transport = true;
        skip("usb");
        break;
      }
      case "nvme":
      case "nvme-subsystem": {
        const nsid = attr(join(dir, "nsid"));
        if (nsid === undefined) break;
        parts.unshift(`nvme-${nsid}`);
        transport = parentKnown = true;
        if (dev.subsystem === "nvme-subsystem") {
          // Multipath: the namespace hangs off a virtual subsystem; its controller (nvme0 of nvme0n1) is on the bus.
          const controller = /^nvme\d+/.exec(name)?.[0];
          if (!controller) return undefined;
          const real = realpathSync(join(sys, "class/nvme", controller));
          chain = [...chain.slice(0, i + 1), ...ancestors(sys, real)];
        }
        skip("nvme");
        break;
      }
    }
  }
  if (!parts.length || !parentKnown || !transport) return undefined;
  return `/dev/disk/by-path/${parts.join("-")}`;
}

/** path_id's handle_scsi: the part for this scsi_device, and how many ancestors it accounts for. */
function scsi(sys: string, dev: SysDevice, up: SysDevice[]): { part: string; known: boolean; skip: number } | undefined {
  const hbtl = /^(\d+):(\d+):(\d+):(\d+)$/.exec(dev.sysname);
  const lun = hbtl ? lunPart(Number(hbtl[4])) : undefined;
  const hostAt = up.findIndex((d) => d.subsystem === "scsi" && d.devtype === "scsi_host");
  const target = up.find((d) => d.subsystem === "scsi" && d.devtype === "scsi_target");
  if (dev.dir.includes("/rport-")) {
    const port = target && attr(join(sys, "class/fc_transport", target.sysname, "port_name"));
    return port && lun ? { part: `fc-${port}-${lun}`, known: true, skip: 0 } : undefined;
  }
  if (dev.dir.includes("/end_device-")) {
    const part = target && lun ? sas(sys, target, lun) : undefined;
    return part ? { part, known: true, skip: 0 } : undefined;
  }
  if (dev.dir.includes("/session") || dev.dir.includes("/vmbus_") || dev.dir.includes("/VMBUS")) return undefined;
  if (!hbtl || hostAt < 0) return undefined;
  const [host, bus, tgt, l] = hbtl.slice(1).map(Number) as [number, number, number, number];
  if (dev.dir.includes("/ata")) {
    const port = attr(join(sys, "class/ata_port", dirname(up[hostAt]!.dir).split("/").pop()!, "port_no"));
    if (!port) return undefined;
    return { part: bus !== 0 ? `ata-${port}.${bus}.0` : `ata-${port}.${tgt}`, known: false, skip: 0 };
  }
  // Plain SCSI: the host number rebased on the smallest hostN beside it (path_id's own caveat: racy, but it is what udev does).
  const hostDir = up[hostAt]!.dir;
  const siblings = readdirSync(dirname(hostDir))
    .map((n) => /^host(\d+)$/.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number);
  const base = siblings.length ? Math.min(...siblings) : host;
  return { part: `scsi-${host - base}:${bus}:${tgt}:${l}`, known: false, skip: hostAt };
}

function sas(sys: string, target: SysDevice, lun: string): string | undefined {
  const endDevice = dirname(target.dir);
  const endName = endDevice.split("/").pop()!;
  const device = join(sys, "class/sas_device", endName);
  const port = dirname(endDevice);
  const phys = attr(join(sys, "class/sas_port", port.split("/").pop()!, "num_phys"));
  if (phys === undefined) return undefined;
  if (phys !== "1") {
    const address = attr(join(device, "sas_address"));
    return address ? `sas-${address}-${lun}` : undefined;
  }
  const phy = attr(join(device, "phy_identifier"));
  if (phy === undefined) return undefined;
  const expander = attr(join(sys, "class/sas_device", dirname(port).split("/").pop()!, "sas_address"));
  return expander ? `sas-exp${expander}-phy${phy}-${lun}` : `sas-phy${phy}-${lun}`;
}

/** Linux LUNs are 32 bits (path_id's format_lun_number). */
function lunPart(lun: number): string {
  if (lun < 256) return `lun-${lun}`;
  const hex = (n: number) => n.toString(16).padStart(4, "0");
  return `lun-0x${hex(lun & 0xffff)}${hex((lun >>> 16) & 0xffff)}00000000`;
}
