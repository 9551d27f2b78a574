import { EXIT } from "./errors.ts";

/**
 * Ctrl-C (or SIGTERM) in the middle of a command that changes something
 * outside this process — an image half-published in the store, a stack
 * half-deployed — says what it leaves and how the next run continues,
 * instead of vanishing with a bare "^C". A command says so while it runs:
 *
 *   await whileInterruptible(() => `image ${id} is left queued; run the same publish again`, () => upload());
 *
 * The innermost running description is printed; the process then exits 130
 * (143 for SIGTERM) at once. Commands that stop on a signal by themselves
 * (store serve, the build's namespace) do not use this.
 */
type Describe = () => string;
const running: Describe[] = [];
let installed = false;

function onSignal(signal: NodeJS.Signals) {
  const said = running.at(-1)?.();
  process.stderr.write(`\ninterrupted by ${signal}${said ? `: ${said}` : ""}\n`);
  process.exit(signal === "SIGINT" ? EXIT.interrupted.code : 128 + 15);
}

export async function whileInterruptible<T>(describe: Describe, fn: () => Promise<T>): Promise<T> {
  if (!installed) {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    installed = true;
  }
  running.push(describe);
  try {
    return await fn();
  } finally {
    running.splice(running.lastIndexOf(describe), 1);
  }
}
