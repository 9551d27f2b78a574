import { log } from "../../lib/log.ts";
import { setLogLevel } from "../log.ts";
import { loadConfig } from "./config.ts";
import { pollLoop, type LoopSignals } from "./loop.ts";

/**
 * os-collect-config. SIGHUP (and a change of the config files after a
 * command run) reloads the configuration in place and restarts the polling
 * ramp — what the original's re-exec achieved; a Bun binary cannot execv
 * itself, and needs not.
 */
export async function collectMain(argv: string[], stop: AbortSignal = new AbortController().signal): Promise<number> {
  const signals: LoopSignals = { stop, hup: { pending: false, wake: new AbortController() } };
  const onHup = () => {
    log.info("Signal received. Reloading the configuration.");
    signals.hup.pending = true;
    signals.hup.wake.abort();
  };
  process.on("SIGHUP", onHup);
  try {
    for (;;) {
      const config = loadConfig(argv);
      if (config.settings.debug) setLogLevel("DEBUG");
      signals.hup = { pending: false, wake: new AbortController() };
      const end = await pollLoop(config, signals);
      if (end !== "reload") return end;
    }
  } finally {
    process.off("SIGHUP", onHup);
  }
}
