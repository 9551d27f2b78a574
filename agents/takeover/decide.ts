import { other, slotState, type BootEnv, type Slot } from "../../wire/boot.ts";
import type { SlotRecord } from "./records.ts";

/**
 * What to do when the metadata names an image: a pure function of the
 * booted slot, the boot environment, the inactive slot's record and the
 * wanted image, so every case (power cut at each point, failed trials,
 * retries) is a table row in decide.test.ts.
 */
export type Decision =
  | { action: "none"; reason: string }
  | { action: "takeover"; target: Slot }
  | { action: "switch"; target: Slot }
  | { action: "rearm"; target: Slot; unexplained: number }
  | { action: "rolled-back"; target: Slot; reason: string; unexplained?: number };

/** A trial boot may end with no word (power loss, hang) this many times before the image counts as failed. */
export const MAX_UNEXPLAINED = 2;

export function decide(input: {
  booted: Slot;
  env: BootEnv;
  /** The inactive slot's record, if any. */
  record?: SlotRecord;
  wanted: { digest: string; attempt: number };
}): Decision {
  const { booted, env, record, wanted } = input;
  const here = slotState(env, booted);
  if (here.digest === wanted.digest) return { action: "none", reason: `slot ${booted} runs ${wanted.digest}` };
  const target = other(booted);
  const there = slotState(env, target);
  const sameRequest = record && record.digest === wanted.digest && record.attempt === wanted.attempt;

  // The other slot still holds the wanted image, known good (going back to
  // the previous image): boot it, nothing to fetch or write.
  if (there.digest === wanted.digest && there.ok) return { action: "switch", target };

  if (sameRequest && record.status === "failed")
    return { action: "rolled-back", target, reason: record.reason ?? "the new root failed" };

  // The slot holds the wanted image, armed once, and we are back on the old
  // root with no failure recorded: the trial boot ended without a word.
  if (sameRequest && record.status === "trial" && there.digest === wanted.digest && !there.ok && !there.try) {
    const unexplained = record.unexplained + 1;
    if (unexplained >= MAX_UNEXPLAINED)
      return {
        action: "rolled-back",
        target,
        unexplained,
        reason: `the new root did not come up ${unexplained} times (no signal: power loss, hang or a boot failure)`,
      };
    return { action: "rearm", target, unexplained };
  }
  // Armed and not yet booted (e.g. power cut right after the switch, before
  // the reboot took): booting will try it.
  if (sameRequest && record.status === "trial" && there.digest === wanted.digest && there.try)
    return { action: "rearm", target, unexplained: record.unexplained };

  return { action: "takeover", target };
}
