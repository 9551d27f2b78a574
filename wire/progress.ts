import { z } from "zod";

/**
 * Progress of long work on a node (an in-place upgrade), for the operator
 * watching `ooo upgrade`. Best effort: the node never waits on it.
 *
 *   POST <progress_url>          (<base>/v1/nodes/<node>/progress, beside signal_url)
 *   Authorization: Bearer <the node's own token>
 *   body: Progress               → any 2xx
 */
export const PROGRESS_VERSION = 1;

export const Phase = z.enum(["checking", "scanning-seed", "fetching", "verifying", "writing", "switching", "rebooting", "failed"]);

export const ProgressV1 = z
  .object({
    version: z.literal(PROGRESS_VERSION),
    node: z.string(),
    to: z.string().describe("Digest being installed"),
    phase: Phase,
    bytes_done: z.number().int().nonnegative().optional().describe("Bytes fetched from the store so far"),
    bytes_total: z.number().int().nonnegative().optional().describe("Size of the image (its canonical root)"),
    message: z.string().optional(),
    at: z.number().describe("Seconds since the takeover started"),
  })
  .describe("POST body of the node's progress URL");

export type Progress = z.infer<typeof ProgressV1>;
export const Progress = ProgressV1;

/** Progress goes beside the signal: same base, same token. */
export function progressUrl(signalUrl: string): string {
  return signalUrl.replace(/\/signal$/, "/progress");
}
