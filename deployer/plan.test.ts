import { describe, expect, test } from "bun:test";
import { planNode, type NodeFacts } from "./plan.ts";
import type { NodeSpec } from "./stack.ts";
import type { NodeRow, NodeState } from "./state.ts";

const SPEC: NodeSpec = { name: "web-0", role: "web", index: 0, pool: "local", driver: "qemu", size: { memoryMiB: 1024, cpus: 1 }, metadata: {}, expose: [] };

function row(state: NodeState, more: Partial<NodeRow> = {}): NodeRow {
  return {
    name: "web-0",
    role: "web",
    idx: 0,
    pool: "local",
    pool_config: {},
    machine: null,
    driver: "qemu",
    state,
    size: SPEC.size,
    image_ref: "node@test",
    image_name: "node",
    image_digest: "sha256:aaa",
    token_hash: "h",
    serial: 1,
    metadata: "{}",
    config_hash: "same",
    collected_serial: 1,
    signalled_serial: 1,
    powered_on_at: 1,
    console_offset: 0,
    waiting_since: 1,
    error: null,
    created_at: 1,
    updated_at: 1,
    changed: 1,
    ...more,
  };
}

const facts = (r: NodeRow | undefined, more: Partial<NodeFacts> = {}): NodeFacts => ({ row: r, power: "on", configHash: "same", wantedDigest: "sha256:aaa", ...more });
const failure = { node: "web-0", serial: 1, at: 1, status: "FAILURE" as const, reason: "x", body: "{}" };

describe("deploy plan", () => {
  test.each([
    ["a node the state has never seen", facts(undefined, { power: "off" }), "create"],
    ["active, on, same metadata: nothing (a second deploy is a no-op)", facts(row("active")), "none"],
    ["active, metadata changed", facts(row("active"), { configHash: "new" }), "redeliver"],
    ["active but powered off (the machine went down)", facts(row("active"), { power: "off" }), "power-on"],
    ["killed while writing its image", facts(row("writing-image"), { power: "off" }), "rebuild"],
    ["recorded but never deployed", facts(row("new"), { power: "off" }), "rebuild"],
    ["killed while powering on, and it is on", facts(row("powering-on")), "wait"],
    ["killed while powering on, and it is off", facts(row("powering-on"), { power: "off" }), "power-on"],
    ["killed while it booted", facts(row("booting")), "wait"],
    ["killed while it configured", facts(row("configuring")), "wait"],
    ["configuring, and its metadata changed again", facts(row("configuring"), { configHash: "new" }), "redeliver"],
    ["booting but off", facts(row("booting"), { power: "off" }), "power-on"],
    ["failed configuration run, still on: its metadata again", facts(row("failed"), { signal: failure }), "redeliver"],
    ["failed configuration run, metadata fixed", facts(row("failed"), { signal: failure, configHash: "new" }), "redeliver"],
    ["failed without a failure signal (timeout, driver)", facts(row("failed")), "rebuild"],
    ["failed configuration, but the machine is off", facts(row("failed"), { signal: failure, power: "off" }), "rebuild"],
  ])("%s → %s", (_, f, kind) => {
    expect(planNode(SPEC, f).action.kind).toBe(kind as never);
  });

  test("an image the role no longer names is reported, not re-imaged (that is ooo upgrade)", () => {
    const p = planNode(SPEC, facts(row("active"), { wantedDigest: "sha256:bbb" }));
    expect(p.action.kind).toBe("none");
    expect(p.drift).toEqual({ running: "sha256:aaa", wanted: "sha256:bbb" });
    expect(planNode(SPEC, facts(row("failed"), { wantedDigest: "sha256:bbb" })).drift).toBeUndefined(); // a rebuild takes the new one
  });
});
