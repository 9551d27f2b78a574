import { existsSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { basename, dirname } from "node:path";
import { OooError } from "../../lib/errors.ts";
import type { Slot } from "./bootenv.ts";

/**
 * The node's own disk, found from the running system alone (so the same
 * code works on bare metal): the root device named by the kernel command
 * line (root=PARTUUID=…), its disk, and that disk's partitions by GPT name
 * (builder/disk/layout.ts): ooo-boot, ooo-root-a, ooo-root-b, ooo-state.
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

export function cmdlineValue(cmdline: string, key: string): string | undefined {
  for (const word of cmdline.trim().split(/\s+/)) if (word.startsWith(`${key}=`)) return word.slice(key.length + 1);
  return undefined;
}

export function findNodeDisk(cmdline = readFileSync("/proc/cmdline", "utf8")): NodeDisk {
  const slot = cmdlineValue(cmdline, "ooo.slot");
  if (slot !== "A" && slot !== "B") throw new NotAnOooDisk("the kernel command line has no ooo.slot=A|B");
  const root = cmdlineValue(cmdline, "root");
  if (!root?.startsWith("PARTUUID=")) throw new NotAnOooDisk(`root=${root ?? ""} is not a PARTUUID`);
  const link = `/dev/disk/by-partuuid/${root.slice("PARTUUID=".length).toLowerCase()}`;
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
    boot: need("ooo-boot"),
    slots: { A: need("ooo-root-a"), B: need("ooo-root-b") },
    state: byName.get("ooo-state"),
    booted: slot,
    trial: cmdlineValue(cmdline, "ooo.trial") === "1",
  };
}
