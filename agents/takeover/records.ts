import { z } from "zod";

/**
 * What the node remembers about a slot's latest takeover, on the boot
 * partition (never the state partition, which an upgrade does not write):
 * /ooo/slot-A.rec, /ooo/slot-B.rec, each holding two copies of the record
 * (record-file.ts).
 */
export const SlotRecord = z.object({
  digest: z.string().describe("The image written (or being written) into the slot"),
  attempt: z.number().int().nonnegative().describe("The metadata's image.attempt it was written for"),
  from: z.string().optional().describe("The digest the node ran when it started the takeover"),
  status: z
    .enum(["writing", "trial", "good", "failed"])
    .describe("writing: being filled; trial: armed for a trial boot; good: marked good; failed: rolled back from"),
  reason: z.string().optional().describe("Why it failed"),
  unexplained: z.number().int().nonnegative().default(0).describe("Trial boots that ended with no word (power loss, hang)"),
  startedAt: z.number().describe("Unix time (s) the takeover started"),
  bytesFetched: z.number().int().nonnegative().optional(),
  imageBytes: z.number().int().nonnegative().optional(),
  method: z.enum(["patched", "streamed", "staged"]).optional(),
  verified: z.enum(["signed-entries", "digest"]).optional().describe("How the written root was checked against the image (wire/signal.ts)"),
  restart: z.enum(["kexec", "reboot"]).optional().describe("How the node started the new root"),
  note: z.string().optional(),
});

export type SlotRecord = z.infer<typeof SlotRecord>;
