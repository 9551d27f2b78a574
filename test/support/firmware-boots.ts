import type { TestMachine } from "./testbed.ts";

/**
 * Firmware boots of a test machine, counted from its console (every boot
 * appends to it): SeaBIOS prints its banner once per boot on the serial
 * port the test bed gives it; OVMF's boot manager says which boot option
 * it loads ("BdsDxe: loading Boot0002 …", then "starting"), once per
 * option tried: a boot that fell from one option to the next would count
 * twice — too many, never too few. A kexec prints neither: it is no
 * firmware boot. Either may follow terminal resets on its line (a second
 * boot's, after the first's output): neither is matched at a line's start.
 */
export const FIRMWARE_BANNER = { bios: /SeaBIOS \(version /g, uefi: /BdsDxe: loading /g } as const;

export function firmwareBoots(m: Pick<TestMachine, "firmware" | "console">, from = 0): number {
  return (m.console().slice(from).match(FIRMWARE_BANNER[m.firmware]) ?? []).length;
}
