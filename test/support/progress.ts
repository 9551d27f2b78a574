import { readFileSync } from "node:fs";
import { StepEvent } from "../../wire/step-event.ts";

/**
 * A --progress-file stream as a CI system reads it: every line parses as a
 * StepEvent, and every step's start is followed by exactly one end or fail
 * of the same step at the same depth (steps run side by side, so they pair
 * by name and depth, not as a stack). Returns the events.
 */
export function readProgress(file: string): StepEvent[] {
  const lines = readFileSync(file, "utf8").split("\n").filter(Boolean);
  const events = lines.map((line, i) => {
    const parsed = StepEvent.safeParse(JSON.parse(line));
    if (!parsed.success) throw new Error(`${file}:${i + 1} is not a step event (${parsed.error.issues[0]?.message}): ${line}`);
    return parsed.data;
  });
  const open = new Map<string, number>();
  for (const e of events) {
    if (e.kind !== "start" && e.kind !== "end" && e.kind !== "fail") continue;
    const key = `${e.depth}\t${e.step}`;
    const n = open.get(key) ?? 0;
    if (e.kind === "start") open.set(key, n + 1);
    else if (n === 0) throw new Error(`${file}: "${e.step}" (depth ${e.depth}) ${e.kind}s without a start`);
    else open.set(key, n - 1);
  }
  const unclosed = [...open].filter(([, n]) => n > 0).map(([k]) => k.split("\t")[1]);
  if (unclosed.length) throw new Error(`${file}: steps started and never ended: ${unclosed.join(", ")}`);
  return events;
}
