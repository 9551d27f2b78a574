import { z } from "zod";
import { IpmiBmc, parseIpmiAddress } from "../bmc/ipmi.ts";
import { bareMetalDriver, bareMetalPool } from "./bare-metal.ts";

/**
 * Machines whose BMC speaks IPMI over LAN (ipmitool, lanplus, cipher suite
 * 3): `bmc: { address: HOST[:PORT], credentials: FILE }`.
 */
export const IpmiBmcSettings = z
  .strictObject({
    address: z
      .string()
      .refine((a) => parseIpmiAddress(a) !== undefined, "HOST or HOST:PORT (default port 623)")
      .describe("The BMC's address: HOST or HOST:PORT (UDP, default 623)"),
    credentials: z.string().min(1).describe("A file (relative to the stack file, mode 0600) with username: and password: for the BMC"),
  })
  .describe("How to reach the machine's IPMI BMC");

export const IpmiPool = bareMetalPool("ipmi", IpmiBmcSettings, "Real machines powered through their IPMI BMCs, written by ooo's deploy ramdisk");
export type IpmiPool = z.infer<typeof IpmiPool>;

export const ipmiDriver = bareMetalDriver<IpmiPool>({
  name: "ipmi",
  pool: IpmiPool,
  programs: [["ipmitool", "ipmitool"]],
  bmc: (machine, s) => new IpmiBmc(machine, { ...parseIpmiAddress(s.address)!, credentials: s.credentials }),
  resolveBmcPaths: (s, abs) => ({ ...s, credentials: abs(s.credentials) }),
});
