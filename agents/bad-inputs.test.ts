import { describe } from "bun:test";
import { join } from "node:path";
import { type BadInput, badInputTable } from "../test/support/bad-inputs.ts";

/**
 * The node agents given bad paths and options (issue 24). Their exit codes
 * are the originals' (agents/main.ts): 1 for any error, argparse's 2 for a
 * command line it refuses. os-apply-config's --strict (ooo's own mode)
 * refuses what Python's 12.0.0 — and ours by default — renders silently.
 * No row reaches the network: each fails, or renders, before any collector.
 */
const FIXTURE = join(import.meta.dir, "../fixtures/oac/basics");
const TEMPLATES = join(FIXTURE, "templates");
const METADATA = join(FIXTURE, "metadata/00-main.json");
const FAILED = 1;
const ARGPARSE = 2;

const rows: BadInput[] = [
  // os-apply-config: strict mode (item 10), and the default kept compatible
  { name: "os-apply-config --strict with a templates root that does not exist", argv: ["os-apply-config", "--strict", "-t", "/nonexistent", "-o", "out", "-m", METADATA], exit: FAILED, says: "the templates root (-t) /nonexistent: does not exist" },
  { name: "os-apply-config --strict with a templates root that is a file", argv: ["os-apply-config", "--strict", "-t", "afile", "-o", "out", "-m", METADATA], files: { afile: "x" }, exit: FAILED, says: "the templates root (-t) afile: is a file, not a folder" },
  { name: "os-apply-config --strict with a metadata file that does not exist", argv: ["os-apply-config", "--strict", "-t", TEMPLATES, "-o", "out", "-m", METADATA, "missing.json"], exit: FAILED, says: "No such metadata file (--strict): missing.json" },
  { name: "os-apply-config strict by OS_APPLY_CONFIG_STRICT", argv: ["os-apply-config", "-t", "/nonexistent", "-o", "out", "-m", METADATA], env: { OS_APPLY_CONFIG_STRICT: "1" }, exit: FAILED, says: "/nonexistent: does not exist" },
  { name: "os-apply-config --strict --key with a metadata file that does not exist", argv: ["os-apply-config", "--strict", "--key", "x", "--key-default", "d", "-m", "missing.json"], exit: FAILED, says: "No such metadata file (--strict): missing.json" },
  { name: "os-apply-config without --strict renders nothing from a root that does not exist, as Python's", argv: ["os-apply-config", "-t", "/nonexistent", "-o", "out", "-m", "missing.json"], exit: 0, says: "success" },
  // os-apply-config: files and values
  { name: "os-apply-config -m not JSON", argv: ["os-apply-config", "-t", TEMPLATES, "-o", "out", "-m", "m.json"], files: { "m.json": "{" }, exit: FAILED, says: "Could not parse metadata file: m.json" },
  { name: "os-apply-config -o inside a file", argv: ["os-apply-config", "-t", TEMPLATES, "-o", "afile", "-m", METADATA], files: { afile: "x" }, exit: FAILED, says: "a part of the path is a file, not a folder" },
  { name: "os-apply-config --type that does not exist", argv: ["os-apply-config", "--key", "int", "--type", "nosuch", "-m", METADATA], exit: FAILED, says: "requested validation of unknown type: nosuch" },
  { name: "os-apply-config --subhash of no hash", argv: ["os-apply-config", "-t", TEMPLATES, "-o", "out", "-s", "nosuch", "-m", METADATA], exit: FAILED, says: "key 'nosuch' does not correspond to a hash" },
  { name: "os-apply-config an option it does not have", argv: ["os-apply-config", "--templates-dir", "x"], exit: ARGPARSE, says: "unrecognized arguments: --templates-dir" },
  // os-collect-config, os-refresh-config: paths the user gave (item 1)
  { name: "os-collect-config --config-file that does not exist", argv: ["os-collect-config", "--config-file", "missing.conf", "--one-time"], exit: FAILED, says: "missing.conf: does not exist" },
  { name: "os-collect-config --config-file that is a folder", argv: ["os-collect-config", "--config-file", "conf", "--one-time"], files: { conf: { dir: true } }, exit: FAILED, says: "conf: is a folder, not a file" },
  { name: "os-collect-config an option it does not have", argv: ["os-collect-config", "--collector", "heat"], exit: ARGPARSE, says: "unrecognized arguments: --collector" },
  { name: "os-refresh-config --lockfile in a folder that does not exist", argv: ["os-refresh-config", "--lockfile", "/no/dir/x"], exit: FAILED, says: "its folder /no/dir does not exist" },
  { name: "os-refresh-config --lockfile that is a folder", argv: ["os-refresh-config", "--lockfile", "locks"], files: { locks: { dir: true } }, exit: FAILED, says: "locks: is a folder, not a file" },
  { name: "os-refresh-config an option it does not have", argv: ["os-refresh-config", "--bogus"], exit: ARGPARSE, says: "unrecognized arguments: --bogus" },
  // the takeover commands: a flag they do not know is refused, not ignored
  { name: "takeover with an option it does not have", argv: ["takeover", "--no-reboots"], exit: ARGPARSE, says: "takeover: unknown option --no-reboots" },
  { name: "trial-watchdog with a time that is no number", argv: ["trial-watchdog", "soon"], exit: ARGPARSE, says: 'trial-watchdog: SECONDS must be a number, not "soon"' },
  { name: "ooo-agent with a command it does not have", argv: ["os-apply-configs"], exit: ARGPARSE, says: "usage: ooo-agent AGENT" },
];

describe("the node agents refuse bad input cleanly", () => {
  badInputTable(rows, { program: ["bun", join(import.meta.dir, "main.ts")] });
});
