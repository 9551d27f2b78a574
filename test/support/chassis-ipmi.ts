#!/usr/bin/env bun
/**
 * The chassis-control program OpenIPMI's ipmi_sim runs for a machine's BMC
 * (lan.conf: `chassis_control "bun chassis-ipmi.ts MACHINE_DIR"`). ipmi_sim
 * runs it through popen, blocking while it runs, as
 *   PROG get power | PROG get boot          → prints `power:1` / `boot:pxe`
 *   PROG set power 1|0 | set reset 1 | set shutdown 1 | set boot pxe|default|none|…
 * (values arrive quoted by ipmi_sim, the shell strips the quotes). A nonzero
 * exit makes ipmi_sim answer the IPMI request with an error.
 *
 * ipmi_sim passes only the boot device (bits 5:2 of the boot flags), not
 * the persistent or EFI bits: every boot device set over IPMI is one-time.
 */
import { bootOverride, powerOff, powerOn, powerState, reset, setBootOverride, softOff, type BootOverride } from "./chassis.ts";

const IPMI_TO_TARGET: Record<string, BootOverride["target"]> = { none: "none", pxe: "pxe", default: "disk" };
const TARGET_TO_IPMI: Record<BootOverride["target"], string> = { none: "none", pxe: "pxe", disk: "default" };

async function main(argv: string[]): Promise<number> {
  const [dir, verb, ...rest] = argv;
  if (!dir || (verb !== "get" && verb !== "set")) {
    console.error("usage: chassis-ipmi.ts MACHINE_DIR get NAME... | set NAME VALUE...");
    return 2;
  }
  if (verb === "get") {
    for (const name of rest) {
      if (name === "power") console.log(`power:${powerState(dir) === "on" ? 1 : 0}`);
      else if (name === "boot") console.log(`boot:${TARGET_TO_IPMI[bootOverride(dir).target]}`);
      else return unsupported(name);
    }
    return 0;
  }
  for (let i = 0; i < rest.length; i += 2) {
    const [name, value] = [rest[i], rest[i + 1]];
    if (name === "power") await (value === "1" ? powerOn(dir) : powerOff(dir));
    else if (name === "reset") await reset(dir);
    else if (name === "shutdown") await softOff(dir);
    else if (name === "boot") {
      const target = IPMI_TO_TARGET[value ?? ""];
      if (!target) return unsupported(`boot device ${value}`);
      await setBootOverride(dir, target === "none" ? { target, enabled: "disabled" } : { target, enabled: "once" });
    } else if (name !== "identify") return unsupported(name ?? "nothing");
  }
  return 0;
}

function unsupported(what: string) {
  console.error(`chassis-ipmi: ${what} is not supported`);
  return 1;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  console.error(`chassis-ipmi: ${(e as Error).message}`);
  process.exitCode = 1;
}
