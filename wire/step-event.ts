import { z } from "zod";

/**
 * The progress stream of a long command (`build-image`, `publish`, `deploy`,
 * `upgrade` with `--progress-file FILE`): one JSON object per line, the same
 * events the terminal shows, for CI systems to render. Every step has a
 * `start` and then exactly one `end` or `fail` with the same `step` and
 * `depth`; steps nest (a step's children have depth + 1 and end before it).
 */
export const STEP_EVENT_VERSION = 1;

const common = {
  v: z.literal(STEP_EVENT_VERSION),
  depth: z.number().int().nonnegative().describe("Nesting: 0 for a top-level step, its children 1, …"),
  at: z.number().nonnegative().describe("Seconds since the command started"),
};
const step = z.string().min(1).describe("The step's name, as the terminal shows it");
const seconds = z.number().nonnegative().describe("Elapsed seconds of the step");
const bytes = z.number().int().nonnegative().optional().describe("Bytes the step moved (downloaded, uploaded, written), when it moves data");
const within = z.string().optional().describe("The innermost step running when the line was printed");

export const StepEvent = z
  .discriminatedUnion("kind", [
    z.object({ kind: z.literal("start"), step, ...common }),
    z.object({ kind: z.literal("end"), step, seconds, bytes, ...common }),
    z.object({ kind: z.literal("fail"), step, seconds, bytes, error: z.string().describe("The error's first line"), ...common }),
    z.object({
      kind: z.literal("progress"),
      step: within,
      text: z.string(),
      bytes: z.number().int().nonnegative().describe("Bytes done so far"),
      total: z.number().int().nonnegative().optional().describe("Bytes to do in all, when known"),
      ...common,
    }),
    z.object({ kind: z.enum(["info", "warn", "error", "output"]), step: within, text: z.string(), ...common }),
  ])
  .describe("One line of a --progress-file stream");

export type StepEvent = z.infer<typeof StepEvent>;
