import type { EventRow } from "../../deployer/state.ts";

/** The time the events of a timeline test count from. */
export const T0 = 1_700_000_000_000;

let id = 0;

/** One of web-0's event rows, `sec` seconds after T0, as the state database holds it. */
export const ev = (sec: number, kind: string, detail?: Record<string, unknown>, to?: EventRow["to_state"]): EventRow => ({
  id: ++id,
  at: T0 + sec * 1000,
  node: "web-0",
  run: 1,
  kind,
  from_state: null,
  to_state: to ?? null,
  detail: detail ?? null,
});
