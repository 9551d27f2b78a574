import { z } from "zod";

/**
 * The completion signal: how a node tells the deployer that its
 * configuration run is over, and how it went. Defined once, here; the
 * agents send it (os-refresh-config, at the end of every run) and the
 * deployer's metadata service receives it.
 *
 *   POST <signal_url>            (the ooo block's signal_url, normally <base>/v1/nodes/<node>/signal)
 *   Authorization: Bearer <the node's own token>
 *   Content-Type: application/json
 *   body: CompletionSignal       → any 2xx is an acknowledgement; the node retries otherwise
 *
 * Shaped like a Heat wait-condition signal (`status`, `reason`, `data`,
 * `id`), with `data` holding what heat-config hooks report
 * (`deploy_stdout`, `deploy_stderr`, `deploy_status_code`), so Heat's way of
 * reading it applies: a non-zero status code means the run failed. A
 * repeated `id` replaces the earlier signal: the id is the node and the
 * metadata serial, so a retried run overwrites its failure.
 */
export const SIGNAL_VERSION = 1;

/** Upper bound of deploy_stdout and deploy_stderr each (their tail is kept), so a signal stays well under 1 MiB. */
export const SIGNAL_OUTPUT_LIMIT = 256 * 1024;

/** Which root the node runs, from its bootloader's environment. */
export const NodeState = z
  .object({
    slot: z.string().describe("The root slot booted (A or B)"),
    digest: z.string().optional().describe("The image digest in that slot"),
    trial: z.boolean().describe("Booted on trial: the slot is new and not yet marked good"),
    good: z.boolean().describe("The slot is marked good (it will be booted again)"),
  })
  .describe("The root a node runs");

/** What became of an in-place upgrade, reported once the node runs a root again. */
export const UpgradeOutcome = z
  .object({
    from: z.string().optional().describe("Digest the node ran before"),
    to: z.string().describe("Digest it was asked to run"),
    result: z.enum(["upgraded", "rolled-back", "failed"]),
    reason: z.string().optional().describe("Why it rolled back or failed: the failing script and its output tail, or 'no signal within N s'"),
    bytes_fetched: z.number().int().nonnegative().optional(),
    image_bytes: z.number().int().nonnegative().optional(),
    seconds: z.number().nonnegative().optional().describe("From the start of the takeover to the new root's first good run"),
    method: z
      .enum(["patched", "streamed", "staged", "switch"])
      .optional()
      .describe("patched: a copy of the running root with the changed files replaced; streamed: built from the running root and missing chunks in one pass; staged: fetched into memory first; switch: the other slot still held it"),
    note: z.string().optional().describe("Why the slower method was used, when it was"),
    verified: z
      .enum(["signed-entries", "digest"])
      .optional()
      .describe(
        "How the node checked the root it wrote against the image its metadata names — digest: the whole root hashed; signed-entries: each file written read back against the entries a trusted key signed, the files kept being the running root's by those entries",
      ),
    restart: z
      .enum(["kexec", "reboot"])
      .optional()
      .describe("kexec: the new root's kernel was started by the running one; reboot: through the firmware and the bootloader"),
  })
  .describe("Outcome of the takeover of an image");

export const SignalData = z.object({
  deploy_stdout: z.string().describe(`Standard output of the run's scripts (the last ${SIGNAL_OUTPUT_LIMIT} characters)`),
  deploy_stderr: z.string().describe(`Standard error of the run's scripts (the last ${SIGNAL_OUTPUT_LIMIT} characters)`),
  deploy_status_code: z.number().int().describe("0 on success, else the failing script's exit status (128+N when killed by signal N)"),
  failed_script: z.string().optional().describe("The script that failed, as PHASE.d/NAME"),
  output_tail: z.string().optional().describe("The last lines the failing script printed (stdout and stderr interleaved)"),
  timings: z.record(z.string(), z.number()).optional().describe("Seconds per script that ran, keyed PHASE.d/NAME, in run order"),
  node_state: NodeState.optional(),
  upgrade: UpgradeOutcome.optional(),
});

export const CompletionSignalV1 = z
  .object({
    version: z.literal(SIGNAL_VERSION).describe("Version of this signal format"),
    status: z.enum(["SUCCESS", "FAILURE"]),
    reason: z.string().describe("One line for people: what happened"),
    data: SignalData,
    id: z.string().min(1).describe("Signal id; a repeated id replaces the earlier signal (NODE:SERIAL)"),
    metadata_serial: z.number().int().nonnegative().optional().describe("The ooo.serial of the metadata this run applied"),
  })
  .describe("POST body of <signal_url>");

export type CompletionSignal = z.infer<typeof CompletionSignalV1>;
export type UpgradeOutcome = z.infer<typeof UpgradeOutcome>;
export type NodeState = z.infer<typeof NodeState>;

/** Parse any known version (one so far). */
export const CompletionSignal = CompletionSignalV1;
