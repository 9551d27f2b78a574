import { z } from "zod";

/**
 * The line a node prints on its console when it is up (`OOO-READY {json}`,
 * from the state-layout element's ooo-node-report), read by image tests and
 * by anyone watching a serial console. Also kept in /run/ooo/ready.json.
 */
export const ReadyReport = z.object({
  slot: z.string().describe("Root slot booted (A or B), 'none' when booted without a slot"),
  trial: z.number().int().describe("1 when the slot boots on trial (after an upgrade, before marked good)"),
  rootReadOnly: z.boolean(),
  state: z.object({
    kind: z.string().describe("partition, or tmpfs when no state partition was found"),
    device: z.string(),
    mounted: z.boolean(),
    writable: z.boolean(),
  }),
  statePaths: z.array(z.object({ path: z.string(), bind: z.boolean(), writable: z.boolean(), source: z.string() })),
  failedUnits: z.array(z.string()),
  uptime: z.number().describe("Seconds since the kernel started"),
  boot: z
    .object({
      kernel: z.number().describe("Seconds from the kernel's start to the initramfs's"),
      initramfs: z.number().describe("Seconds in the initramfs, up to the real root (its state layout included)"),
      system: z.number().describe("Seconds from the real root to this report (systemd, the network, the agents' start)"),
    })
    .optional()
    .describe("Where the boot went (absent from images built before it was reported)"),
});

export type ReadyReport = z.infer<typeof ReadyReport>;

export const READY_MARKER = /OOO-READY (\{.*\})\n/;
