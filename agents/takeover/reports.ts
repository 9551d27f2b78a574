import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { UpgradeOutcome } from "../../wire/signal.ts";
import { slotState, type BootEnv } from "../../wire/boot.ts";
import type { NodeDisk } from "./disk.ts";

/**
 * Files the takeover commands leave for os-refresh-config's completion
 * signal (agents/refresh/signal.ts). Apart from takeover.ts so mark-good,
 * run at every configuration, does not load the store client.
 */
export const UPGRADE_REPORT = "/run/ooo/upgrade.json";
export const NODE_STATE = "/run/ooo/node-state.json";

function writeJson(path: string, value: unknown) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(value, null, 2) + "\n");
}

export function writeUpgradeReport(outcome: UpgradeOutcome) {
  writeJson(UPGRADE_REPORT, outcome);
}

export function writeNodeState(disk: NodeDisk, env: BootEnv) {
  const here = slotState(env, disk.booted);
  writeJson(NODE_STATE, { slot: disk.booted, digest: here.digest, trial: disk.trial && !here.ok, good: here.ok });
}
