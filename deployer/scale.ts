import { readFileSync } from "node:fs";
import { isMap, parseDocument } from "yaml";
import { publishAtomically } from "../lib/atomic.ts";
import { UsageError } from "../lib/errors.ts";
import { writeFileSync } from "node:fs";
import { parseStack } from "./stack.ts";

/**
 * `ooo scale STACK ROLE=N …` changes the roles' counts in the stack file
 * itself — comments and layout kept — so that the file stays the truth (a
 * count kept only in the state would be undone by the next `ooo deploy`).
 * The new file is validated, and everything a deploy checks before it
 * touches a node (drivers, images, tokens) is checked with it, before it
 * replaces the old one: a refused scale leaves the file as it was.
 */
export function parseCounts(args: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const arg of args) {
    const m = /^([a-z][a-z0-9-]*)=(\d+)$/.exec(arg);
    if (!m) throw new UsageError(`${arg}: write ROLE=COUNT, e.g. web=3`);
    counts[m[1]!] = Number(m[2]);
  }
  if (!Object.keys(counts).length) throw new UsageError("name at least one ROLE=COUNT");
  return counts;
}

/** The file's text with the counts changed; throws if a role is missing or the result is invalid. */
export function scaledText(text: string, file: string, counts: Record<string, number>): string {
  const doc = parseDocument(text);
  const roles = doc.get("roles");
  for (const role of Object.keys(counts)) {
    if (!isMap(roles) || !roles.has(role))
      throw new UsageError(`${file} has no role ${role}`, { hint: isMap(roles) ? `roles: ${roles.items.map((i) => String((i.key as { value?: unknown }).value)).join(", ")}` : undefined });
    doc.setIn(["roles", role, "count"], counts[role]);
  }
  const out = doc.toString();
  parseStack(out, file);
  return out;
}

/** The stack with the counts changed, checked like any stack file — nothing is written yet. */
export function scaledStack(file: string, counts: Record<string, number>) {
  const text = readFileSync(file, "utf8");
  const before = Object.fromEntries(parseStack(text, file).roles.map((r) => [r.name, r.count]));
  const out = scaledText(text, file, counts);
  return { text, out, stack: parseStack(out, file), before };
}

/**
 * Write the new counts, once the deploy has checked everything else: the
 * file is replaced only if nobody changed it since it was read.
 */
export async function writeScaled(file: string, scaled: { text: string; out: string }) {
  if (scaled.out === scaled.text) return;
  if (readFileSync(file, "utf8") !== scaled.text) throw new UsageError(`${file} changed while ooo scale checked it; nothing was written`, { hint: "Run ooo scale again." });
  await publishAtomically(file, async (p) => writeFileSync(p, scaled.out));
}