import { InvalidInput } from "../../lib/errors.ts";
import { parseStack } from "../../deployer/stack.ts";

/** The problem lines of a stack file that must be refused (it fails the test when the stack is accepted). */
export function stackProblems(text: string, file: string): string[] {
  try {
    parseStack(text, file);
  } catch (e) {
    if (e instanceof InvalidInput) return e.message.split("\n").slice(1).map((l) => l.replace(/^ {2}- /, ""));
    throw e;
  }
  throw new Error("the stack was accepted");
}
