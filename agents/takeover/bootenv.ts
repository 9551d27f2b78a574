/**
 * GRUB's environment block, which the ooo disk's grub.cfg reads to pick the
 * root slot (builder/disk/grub.ts): ORDER, A_OK, A_TRY, B_OK, B_TRY, and
 * ooo's A_DIGEST / B_DIGEST. The format is GRUB's: a 1024-byte file,
 * "# GRUB Environment Block\n", then NAME=VALUE lines, padded with '#'.
 * GRUB itself rewrites it in place when a trial boot uses up its try.
 */
export const ENV_SIZE = 1024;
const HEADER = "# GRUB Environment Block\n";

export type Slot = "A" | "B";
export const SLOTS: readonly Slot[] = ["A", "B"];
export const other = (s: Slot): Slot => (s === "A" ? "B" : "A");

export type BootEnv = Map<string, string>;

export function parseEnv(block: string): BootEnv {
  const env: BootEnv = new Map();
  if (!block.startsWith(HEADER)) throw new Error("not a GRUB environment block");
  for (const line of block.slice(HEADER.length).split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq > 0) env.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return env;
}

export function renderEnv(env: BootEnv): string {
  const body = HEADER + [...env].map(([k, v]) => `${k}=${v}\n`).join("");
  if (body.length > ENV_SIZE) throw new Error(`GRUB environment block too large (${body.length} > ${ENV_SIZE} bytes)`);
  return body.padEnd(ENV_SIZE, "#");
}

/** The slot facts the upgrade logic reasons about. */
export interface SlotState {
  ok: boolean;
  try: boolean;
  digest?: string;
}

export function slotState(env: BootEnv, slot: Slot): SlotState {
  const digest = env.get(`${slot}_DIGEST`);
  return { ok: env.get(`${slot}_OK`) === "1", try: env.get(`${slot}_TRY`) === "1", digest: digest || undefined };
}

export function setSlot(env: BootEnv, slot: Slot, state: Partial<SlotState>): void {
  if (state.ok !== undefined) env.set(`${slot}_OK`, state.ok ? "1" : "0");
  if (state.try !== undefined) env.set(`${slot}_TRY`, state.try ? "1" : "0");
  if (state.digest !== undefined) env.set(`${slot}_DIGEST`, state.digest);
}

/** Prefer `first`, fall back to the other slot. */
export function setOrder(env: BootEnv, first: Slot): void {
  env.set("ORDER", `${first} ${other(first)}`);
}

/**
 * The slot GRUB's script (builder/disk/grub.ts) boots from `env`: the
 * first in ORDER that is good, or else on trial, using up its try as
 * GRUB's save_env does. Changes `env` as GRUB would change the block.
 */
export function grubChoice(env: BootEnv): { slot: Slot; trial: boolean } | undefined {
  for (const s of (env.get("ORDER") ?? "A B").split(/\s+/)) {
    if (s !== "A" && s !== "B") continue;
    const state = slotState(env, s);
    if (state.ok) return { slot: s, trial: false };
    if (state.try) {
      setSlot(env, s, { try: false });
      return { slot: s, trial: true };
    }
  }
  return undefined;
}
