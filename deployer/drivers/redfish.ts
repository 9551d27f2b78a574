import { z } from "zod";
import { RedfishBmc } from "../bmc/redfish.ts";
import { bareMetalDriver, bareMetalPool } from "./bare-metal.ts";

/**
 * Machines whose BMC speaks Redfish: `bmc: { url: …/redfish/v1/Systems/ID,
 * credentials: FILE, ca_file?: FILE }`, basic auth over https (or http).
 */
export const RedfishBmcSettings = z
  .strictObject({
    url: z
      .url({ protocol: /^https?$/ })
      .refine((u) => /\/redfish\/v1\/Systems\/[^/]+\/?$/.test(new URL(u).pathname), "the machine's ComputerSystem: https://BMC/redfish/v1/Systems/ID")
      .describe("The machine's Redfish ComputerSystem URL (https://BMC/redfish/v1/Systems/ID)"),
    credentials: z.string().min(1).describe("A file (relative to the stack file, mode 0600) with username: and password: for the BMC"),
    ca_file: z.string().optional().describe("A PEM CA file the BMC's certificate chains to, when the system's CAs do not"),
  })
  .describe("How to reach the machine's Redfish service");

export const RedfishPool = bareMetalPool("redfish", RedfishBmcSettings, "Real machines powered through their Redfish BMCs, written by ooo's deploy ramdisk");
export type RedfishPool = z.infer<typeof RedfishPool>;

export const redfishDriver = bareMetalDriver<RedfishPool>({
  name: "redfish",
  pool: RedfishPool,
  programs: [],
  bmc: (machine, s) => new RedfishBmc(machine, { url: s.url, credentials: s.credentials, ...(s.ca_file ? { caFile: s.ca_file } : {}) }),
  resolveBmcPaths: (s, abs) => ({ ...s, credentials: abs(s.credentials), ...(s.ca_file ? { ca_file: abs(s.ca_file) } : {}) }),
});
