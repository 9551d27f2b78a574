import type { BootMode } from "../../wire/deploy.ts";
import type { PowerState } from "../drivers/driver.ts";

/**
 * What the deployer asks of a machine's baseboard management controller,
 * whatever it speaks (IPMI: ipmi.ts, Redfish: redfish.ts). Every call
 * either does what it says or throws BmcFailed naming the machine.
 */
export type BootDevice = "network" | "disk";

export interface Bmc {
  powerState(): Promise<PowerState>;
  /** on · off (the plug) · soft (ACPI, the OS decides) · reset (the button: a machine that is off is powered on) */
  power(action: "on" | "off" | "soft" | "reset"): Promise<void>;
  /** The device the next boot uses (once), in the firmware's mode; a persistent one for every boot after. */
  setBootDevice(device: BootDevice, options: { mode: BootMode; persistent?: boolean }): Promise<void>;
  /** For people: where the BMC is. */
  readonly address: string;
}

/** Poll until the machine is off or the time is up. */
export async function waitPower(bmc: Bmc, want: PowerState, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; ; await Bun.sleep(1000)) {
    if ((await bmc.powerState()) === want) return true;
    if (Date.now() > deadline) return false;
  }
}
