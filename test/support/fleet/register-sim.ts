/**
 * Preloaded into an `ooo` command (`bun --preload test/support/fleet/register-sim.ts cli/ooo.ts status …`)
 * so that it can read a simulated fleet's nodes: their power is in their folders (sim-driver.ts).
 */
import { registerSimDriver } from "./sim-driver.ts";

registerSimDriver();
