import { existsSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { basename, dirname } from "node:path";
import { OooError } from "../../lib/errors.ts";
import { bootedSlot, DISK, SLOT_PARTITIONS, type Slot } from "../../wire/boot.ts";

/**
 * The node's own disk, found from the running system alone (so the same
 * code works on bare metal): the root device named by the kernel command
 * line (root=PARTUUID=…), its disk, and that disk's partitions by the GPT
 * names of the disk contract (wire/boot.ts).
 */
export interface NodeDisk {
  disk: string;
  boot: string;
  slots: Record<Slot, string>;
  state?: string;
  booted: Slot;
  trial: boolean;
}

export class NotAnOooDisk extends OooError {
  readonly code = "not-an-ooo-disk";
  constructor(detail: string) {
    super(`this node does not run from an ooo disk with root slots: ${detail}`);
  }
}

export function findNodeDisk(cmdline = readFileSync("/proc/cmdline", "utf8")): NodeDisk {
  const booted = bootedSlot(cmdline);
  if (!booted.slot) throw new NotAnOooDisk("the kernel command line has no ooo.slot=A|B");
  if (!booted.partuuid) throw new NotAnOooDisk(`root=${booted.root ?? ""} is not a PARTUUID`);
  const link = `/dev/disk/by-partuuid/${booted.partuuid.toLowerCase()}`;
  if (!existsSync(link)) throw new NotAnOooDisk(`${link} does not exist`);
  const part = basename(realpathSync(link));
  // realpath first, then the parent: "…/vda3/.." would be normalised away before the link is followed.
  const disk = basename(dirname(realpathSync(`/sys/class/block/${part}`)));
  const byName = new Map<string, string>();
  for (const entry of readdirSync(`/sys/class/block/${disk}`)) {
    const uevent = `/sys/class/block/${disk}/${entry}/uevent`;
    if (!entry.startsWith(disk) || !existsSync(uevent)) continue;
    const name = /^PARTNAME=(.*)$/m.exec(readFileSync(uevent, "utf8"))?.[1];
    if (name) byName.set(name, `/dev/${entry}`);
  }
  const need = (name: string) => {
    const dev = byName.get(name);
    if (!dev) throw new NotAnOooDisk(`no partition named ${name} on /dev/${disk}`);
    return dev;
  };
  return {
    disk: `/dev/${disk}`,
    boot: need(DISK.boot.name),
    slots: { A: need(SLOT_PARTITIONS.A.name), B: need(SLOT_PARTITIONS.B.name) },
    state: byName.get(DISK.state.name),
    booted: booted.slot,
    trial: booted.trial,
  };
}
