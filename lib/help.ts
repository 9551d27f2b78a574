import type { Argv } from "yargs";

/**
 * Examples as `--help` shows them: a note is a comment line above its
 * command, never a second column — yargs wraps a two-column example in the
 * middle of the command. Every command line stays whole, at any width.
 */
export function withExamples<T>(y: Argv<T>, examples: [command: string, note?: string][]): Argv<T> {
  for (const [command, note] of examples) {
    if (note) y.example(`# ${note}`, "");
    y.example(command, "");
  }
  return y;
}
