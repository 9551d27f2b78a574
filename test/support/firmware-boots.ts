import type { TestMachine } from "./testbed.ts";

/**
 * Firmware boots of a test machine, counted from its console (every boot
 * appends to it): SeaBIOS prints its banner once per boot on the serial
 * port the test bed gives it; OVMF names itself once per boot as it
 * starts its boot manager. A kexec prints neither: it is no firmware boot.
 */
export const FIRMWARE_BANNER = { bios: /^SeaBIOS \(version /gm, uefi: /^BdsDxe: /gm } as const;

export function firmwareBoots(m: Pick<TestMachine, "firmware" | "console">, from = 0): number {
  return (m.console().slice(from).match(FIRMWARE_BANNER[m.firmware]) ?? []).length;
}
