import { expect, test } from "bun:test";
import { nodeTimeline } from "../timeline.ts";
import { ev, T0 } from "../../test/support/node-events.ts";

/** A bare-metal node's timeline from the events its deploy records: cold (firmware → ramdisk → write → kexec) and fast track. */

const TAIL = [
  ev(60, "ramdisk", { machine: "m1", phase: "selecting-disk" }),
  ev(61, "ramdisk", { machine: "m1", phase: "writing", bytes_done: 0 }),
  ev(70, "ramdisk", { machine: "m1", phase: "writing", bytes_done: 5 }),
  ev(90, "ramdisk", { machine: "m1", phase: "restarting" }),
  ev(91, "ramdisk-result", { machine: "m1", action: "deploy", status: "success", step: "restarting", restart: "kexec" }),
  ev(130, "metadata-collected", { serial: 1 }),
  ev(140, "signalled", { serial: 1, status: "SUCCESS" }),
  ev(140, "transition", {}, "active"),
  ev(142, "booted", { uptime: 50 }),
];

test("cold: ramdisk boot (power-on → lookup), the image written by the ramdisk, kexec, the node's boot", () => {
  const t = nodeTimeline("web-0", [ev(0, "deploy-command", { machine: "m1" }), ev(1, "power-on", { machine: "m1", boot: "network" }), ev(40, "ramdisk-lookup", { machine: "m1" }), ...TAIL], T0, T0 + 150_000);
  expect(t.spans.map((s) => [s.phase, s.start, s.end])).toEqual([
    ["ramdisk boot", 1, 40],
    ["image write", 61, 90],
    ["boot", 91, 142],
    ["configure", 130, 140],
  ]);
  expect(t.marks.map((m) => m.kind)).toEqual(["power-on", "lookup", "kexec", "metadata collected", "signalled", "booted"]);
  expect(t.result).toBe("active");
  expect(t.seconds).toBe(140);
});

test("fast track: no power-on, no ramdisk boot", () => {
  const t = nodeTimeline("web-0", [ev(0, "deploy-command", { machine: "m1" }), ev(0.5, "fast-track", { machine: "m1" }), ...TAIL], T0, T0 + 150_000);
  expect(t.spans.map((s) => s.phase)).toEqual(["image write", "boot", "configure"]);
  expect(t.marks[0]).toMatchObject({ kind: "fast track", at: 0.5 });
  expect(t.marks.some((m) => m.kind === "power-on")).toBe(false);
});
