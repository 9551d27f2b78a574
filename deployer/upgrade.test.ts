import { describe, expect, test } from "bun:test";
import type { CompletionSignal } from "../wire/signal.ts";
import { batchesFor, judgeSignal } from "./upgrade.ts";

const rolling = (maxBatchSize: number, minInService: number) => ({ maxBatchSize, minInService, pauseSeconds: 0, policy: "rebuild-in-place" as const });

describe("rolling batches (Heat's rolling_updates)", () => {
  test.each([
    ["one at a time, two kept", ["c-2", "c-1", "c-0"], 3, rolling(1, 2), [["c-2"], ["c-1"], ["c-0"]]],
    ["two at a time, none kept", ["c-2", "c-1", "c-0"], 3, rolling(2, 0), [["c-2", "c-1"], ["c-0"]]],
    ["min_in_service narrows the batch", ["c-3", "c-2", "c-1", "c-0"], 4, rolling(3, 2), [["c-3", "c-2"], ["c-1", "c-0"]]],
    ["only some need it", ["c-1"], 3, rolling(1, 2), [["c-1"]]],
  ] as const)("%s", (_, nodes, count, r, expected) => {
    expect(batchesFor([...nodes], count, r)).toEqual(expected.map((b) => [...b]));
  });
  test("min_in_service that leaves no room is refused", () => {
    expect(() => batchesFor(["c-0"], 2, rolling(1, 2))).toThrow(/leaves none to upgrade/);
  });
});

const OLD = `sha256:${"a".repeat(64)}`;
const NEW = `sha256:${"b".repeat(64)}`;
function signal(status: "SUCCESS" | "FAILURE", data: Partial<CompletionSignal["data"]>): CompletionSignal {
  return { version: 1, status, reason: "r", id: "n:2", metadata_serial: 2, data: { deploy_stdout: "", deploy_stderr: "", deploy_status_code: status === "SUCCESS" ? 0 : 1, ...data } };
}

describe("what a node's signal says of its upgrade", () => {
  test.each([
    ["the new root, marked good: upgraded", signal("SUCCESS", { node_state: { slot: "B", digest: NEW, trial: false, good: true } }), "upgraded"],
    ["still on the old root, before the takeover: wait", signal("SUCCESS", { node_state: { slot: "A", digest: OLD, trial: false, good: true } }), undefined],
    [
      "the trial failed, rolling back: wait",
      signal("FAILURE", { failed_script: "configure.d/50-x", node_state: { slot: "B", digest: NEW, trial: true, good: false }, upgrade: { to: NEW, result: "failed", reason: "configure.d/50-x failed" } }),
      undefined,
    ],
    [
      "back on the old root after the rollback: rolled back",
      signal("SUCCESS", { node_state: { slot: "A", digest: OLD, trial: false, good: true }, upgrade: { from: OLD, to: NEW, result: "rolled-back", reason: "configure.d/50-x failed" } }),
      "rolled-back",
    ],
    [
      "the takeover failed before the switch (slot too small): failed",
      signal("SUCCESS", { node_state: { slot: "A", digest: OLD, trial: false, good: true }, upgrade: { from: OLD, to: NEW, result: "failed", reason: "does not fit" } }),
      "failed",
    ],
  ] as const)("%s", (_, s, expected) => {
    const v = judgeSignal(s, OLD, NEW);
    expect(v.final ? v.result : undefined).toBe(expected);
  });
});
