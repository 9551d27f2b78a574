import { copyFileSync, existsSync } from "node:fs";
import { MissingRequirement } from "../errors.ts";

/**
 * The firmware a qemu machine boots with: SeaBIOS (qemu's default, legacy
 * BIOS) or OVMF (UEFI, Debian's `ovmf`). OVMF runs from two flash chips: its
 * code, read-only and shared, and its variable store (the machine's NVRAM,
 * where it keeps boot entries), which every machine needs its own copy of.
 *
 * The _4M build: Debian's default (the one its qemu firmware descriptors
 * name), with room in its variable store for Secure Boot keys one day. No
 * SMM is needed for it (only the .secboot builds want q35 with SMM), so it
 * runs on qemu's default machine as SeaBIOS does.
 */
export type Firmware = "bios" | "uefi";

export const OVMF = {
  code: "/usr/share/OVMF/OVMF_CODE_4M.fd",
  vars: "/usr/share/OVMF/OVMF_VARS_4M.fd",
} as const;

export function ovmfMissing(): string | undefined {
  return existsSync(OVMF.code) && existsSync(OVMF.vars) ? undefined : `UEFI firmware (${OVMF.code}): apt-get install ovmf`;
}

export function requireOvmf() {
  if (ovmfMissing()) throw new MissingRequirement(`UEFI firmware for qemu (${OVMF.code})`, "apt-get install ovmf");
}

/** A fresh variable store for one machine (no boot entries: OVMF boots the disk's removable path). */
export function newVarStore(file: string) {
  requireOvmf();
  copyFileSync(OVMF.vars, file);
}

/** qemu's arguments for the firmware; `vars`: the machine's own variable store (uefi). */
export function firmwareArgs(firmware: Firmware, vars?: string): string[] {
  if (firmware === "bios") return [];
  if (!vars) throw new Error("bug: a UEFI machine needs its own variable store");
  requireOvmf();
  return [
    "-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF.code}`,
    "-drive", `if=pflash,format=raw,unit=1,file=${vars}`,
  ];
}
