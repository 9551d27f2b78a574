import { describe, expect, test } from "bun:test";
import type { BootEnv } from "../../wire/boot.ts";
import { decide, MAX_UNEXPLAINED } from "./decide.ts";
import type { SlotRecord } from "./records.ts";

const V1 = `sha256:${"1".repeat(64)}`;
const V2 = `sha256:${"2".repeat(64)}`;

function env(vars: Record<string, string>): BootEnv {
  return new Map(Object.entries({ ORDER: "A B", A_OK: "1", A_TRY: "0", B_OK: "0", B_TRY: "0", A_DIGEST: V1, ...vars }));
}
function record(r: Partial<SlotRecord>): SlotRecord {
  return { digest: V2, attempt: 0, status: "writing", unexplained: 0, startedAt: 0, ...r };
}

describe("decide: what the node does when the metadata names an image", () => {
  const cases: [string, Parameters<typeof decide>[0], ReturnType<typeof decide>["action"]][] = [
    ["runs the wanted image already", { booted: "A", env: env({}), wanted: { digest: V1, attempt: 0 } }, "none"],
    ["a new image: take it over", { booted: "A", env: env({}), wanted: { digest: V2, attempt: 0 } }, "takeover"],
    ["on slot B, back to the image slot A still holds: switch, fetch nothing", { booted: "B", env: env({ B_OK: "1", B_DIGEST: V2, ORDER: "B A" }), wanted: { digest: V1, attempt: 0 } }, "switch"],
    ["on slot B, a third image goes to A", { booted: "B", env: env({ B_OK: "1", B_DIGEST: V2, ORDER: "B A" }), wanted: { digest: `sha256:${"3".repeat(64)}`, attempt: 0 } }, "takeover"],
    [
      "power cut while writing: start over",
      { booted: "A", env: env({ B_DIGEST: "" }), record: record({ status: "writing" }), wanted: { digest: V2, attempt: 0 } },
      "takeover",
    ],
    [
      "power cut after the switch, trial not yet used: boot it",
      { booted: "A", env: env({ B_DIGEST: V2, B_TRY: "1", ORDER: "B A" }), record: record({ status: "trial" }), wanted: { digest: V2, attempt: 0 } },
      "rearm",
    ],
    [
      "trial used up with no word once: try again",
      { booted: "A", env: env({ B_DIGEST: V2 }), record: record({ status: "trial" }), wanted: { digest: V2, attempt: 0 } },
      "rearm",
    ],
    [
      `no word ${MAX_UNEXPLAINED} times: rolled back`,
      { booted: "A", env: env({ B_DIGEST: V2 }), record: record({ status: "trial", unexplained: MAX_UNEXPLAINED - 1 }), wanted: { digest: V2, attempt: 0 } },
      "rolled-back",
    ],
    [
      "the trial failed: rolled back, no retry",
      { booted: "A", env: env({ B_DIGEST: V2 }), record: record({ status: "failed", reason: "configure.d/50-x failed" }), wanted: { digest: V2, attempt: 0 } },
      "rolled-back",
    ],
    [
      "the trial failed, but a new attempt is asked: try again from scratch",
      { booted: "A", env: env({ B_DIGEST: V2 }), record: record({ status: "failed" }), wanted: { digest: V2, attempt: 1 } },
      "takeover",
    ],
    [
      "another image failed before: irrelevant to this one",
      { booted: "A", env: env({}), record: record({ status: "failed", digest: `sha256:${"3".repeat(64)}` }), wanted: { digest: V2, attempt: 0 } },
      "takeover",
    ],
  ];
  for (const [name, input, action] of cases) test(name, () => expect(decide(input).action).toBe(action));

  test("a rollback carries its reason", () => {
    const d = decide({ booted: "A", env: env({ B_DIGEST: V2 }), record: record({ status: "failed", reason: "configure.d/50-x failed: boom" }), wanted: { digest: V2, attempt: 0 } });
    expect(d).toEqual({ action: "rolled-back", target: "B", reason: "configure.d/50-x failed: boom" });
  });
});
