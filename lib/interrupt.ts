import { EXIT } from "./errors.ts";

/**
 * Ctrl-C (or SIGTERM) in the middle of a command that changes something
 * outside this process — an image half-published in the store, a stack
 * half-deployed — says what it leaves and how the next run continues,
 * instead of vanishing with a bare "^C". A command says so while it runs:
 *
 *   await whileInterruptible(() => `image ${id} is left queued; run the same publish again`, () => upload());
 *
 * and may give an `undo` for a stretch where nothing is done yet (a deploy
 * still checking): on the signal it runs first, and what it says replaces
 * the description. Then the process exits 130 (143 for SIGTERM). Commands
 * that stop on a signal by themselves (store serve, the build's namespace)
 * do not use this.
 */
interface Stretch {
  describe?: () => string;
  undo?: () => Promise<string | undefined>;
}
const running: Stretch[] = [];
let installed = false;
let stopping = false;

async function onSignal(signal: NodeJS.Signals) {
  if (stopping) return;
  stopping = true;
  let said: string | undefined;
  for (const s of [...running].reverse()) {
    said ??= s.undo ? await Promise.race([s.undo().catch(() => undefined), Bun.sleep(15_000).then(() => undefined)]) : undefined;
    said ??= s.describe?.();
  }
  process.stderr.write(`\ninterrupted by ${signal}${said ? `: ${said}` : ""}\n`);
  process.exit(signal === "SIGINT" ? EXIT.interrupted.code : 128 + 15);
}

async function during<T>(stretch: Stretch, fn: () => Promise<T>): Promise<T> {
  if (!installed) {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    installed = true;
  }
  running.push(stretch);
  try {
    return await fn();
  } finally {
    running.splice(running.lastIndexOf(stretch), 1);
  }
}

export const whileInterruptible = <T>(describe: () => string, fn: () => Promise<T>) => during({ describe }, fn);

/** While `fn` runs, an interrupt first runs `undo`; when it returns a text, that is what the user is told. */
export const undoOnInterrupt = <T>(undo: () => Promise<string | undefined>, fn: () => Promise<T>) => during({ undo }, fn);
