import { describe } from "bun:test";
import { EXIT } from "../lib/errors.ts";
import { type BadInput, badInputTable } from "../test/support/bad-inputs.ts";

/** `ooo` itself given what a new user gets wrong (issue 24, item 9): the command line before any command runs. */
const USAGE = EXIT.usage.code;

const rows: BadInput[] = [
  { name: "a command that does not exist", argv: ["nosuchcmd"], exit: USAGE, says: "unknown command: ooo nosuchcmd. The commands are: build-image, element-info," },
  { name: "a command one letter off", argv: ["build-imag", "busybox-base"], exit: USAGE, says: "Did you mean ooo build-image?" },
  { name: "no command", argv: [], exit: USAGE, says: "name a command: build-image, element-info, test-image, store, publish, promote, key, deploy" },
  { name: "an option and no command", argv: ["--verbose"], exit: USAGE, says: "unknown option --verbose; name a command" },
  { name: "a subcommand one letter off", argv: ["store", "lsit"], exit: USAGE, says: "Did you mean ooo store list?" },
  { name: "an unknown option of a command", argv: ["store", "list", "--al"], exit: USAGE, says: "unknown option --al" },
  { name: "a missing argument", argv: ["status"], exit: USAGE, says: "missing STACK: ooo status <stack>" },
  { name: "a missing required option", argv: ["store", "verify", "kv"], exit: USAGE, says: "missing --key" },
  { name: "a choice that is none of them", argv: ["test-image", "x", "--accel", "fast"], exit: USAGE, says: 'accel must be one of "auto", "tcg", "kvm", not "fast"' },
  { name: "a single-value option given twice", argv: ["store", "fetch", "kv", "--store", "http://a:1", "--store", "http://b:1"], exit: USAGE, says: "--store was given 2 times (http://a:1, http://b:1); give it once" },
];

describe("ooo's command line refuses bad input cleanly", () => {
  badInputTable(rows);
});
