import { describe, expect, test } from "bun:test";
import { asUserError, EXIT, OutputExists, PathProblem } from "../lib/errors.ts";
import { yargsFailure } from "./usage.ts";

describe("errors in the user's words", () => {
  const usage = (commands: string[], line = "$0") => ({ getCommands: () => commands.map((c) => [c] as [string]), getUsage: () => [[line, ""]] as [string, string][] });

  test.each([
    ["Unknown argument: nosuch", usage(["deploy <stack>", "status <stack>"]), ["nosuch"], "unknown command: ooo nosuch. The commands are: deploy, status"],
    ["Unknown argument: deplyo", usage(["deploy <stack>"]), ["deplyo"], "unknown command: ooo deplyo. Did you mean ooo deploy? The commands are: deploy"],
    ["Not enough non-option arguments: got 0, need at least 1", usage(["serve", "fetch <image>"], "$0 store <command>"), ["store"], "name a store command: serve, fetch"],
    ["Not enough non-option arguments: got 1, need at least 3", usage([], "$0 power <stack> <node> <target>"), ["power", "s.yaml"], "missing NODE and TARGET: ooo power <stack> <node> <target>"],
    ["Unknown arguments: foo, b", usage([], "$0 deploy <stack>"), ["deploy", "s", "--foo", "b"], "unknown option --foo; unexpected argument b (usage: ooo deploy <stack>)"],
    ["Missing required argument: tag", usage([], "$0 promote <image> [label]"), ["promote", "x"], "missing --tag: ooo promote <image> [label]"],
    ['Invalid values:\n  Argument: boot, Given: "x", Choices: "a", "b"', usage([], "$0 test-image <image>"), [], 'boot must be one of "a", "b", not "x"'],
  ])("%s", (message, view, argv, expected) => {
    expect(yargsFailure(message, view, argv)).toBe(expected);
  });

  test("a system error on a path is the user's to fix, named, with the usage exit code; a full disk is a failure", () => {
    const enoent = Object.assign(new Error("ENOENT: no such file or directory, open 'no/such/x'"), { code: "ENOENT", syscall: "open", path: "no/such/x" });
    const e = asUserError(enoent)!;
    expect(e).toBeInstanceOf(PathProblem);
    expect([e.message, e.exitCode]).toEqual(["cannot open no/such/x: its folder no/such does not exist", EXIT.usage.code]);
    expect(asUserError(Object.assign(new Error("x"), { code: "EROFS", syscall: "mkdir", path: "/ro/d" }))!.message).toBe("cannot make the folder /ro/d: it is on a read-only filesystem");
    const full = asUserError(new Error("wrapped", { cause: Object.assign(new Error("ENOSPC"), { code: "ENOSPC", syscall: "write", path: "/x/img.raw" }) }))!;
    expect([full.message, full.exitCode]).toEqual(["cannot write /x/img.raw: no space left on its device", EXIT.failed.code]);
    expect(asUserError(new TypeError("undefined is not a function"))).toBeUndefined();
  });

  test("outputs that exist name every one and how to replace them", () => {
    const e = new OutputExists(["a.tar", "a.raw", "a.manifest.json"]);
    expect([e.message, e.hint]).toEqual(["a.tar, a.raw and a.manifest.json exist; nothing was written", "--force replaces them (each only once the new one is complete); or choose another name."]);
  });
});

test("the README's table of exit codes is EXIT's", async () => {
  const { exitCodesTable } = await import("../lib/errors.ts");
  const readme = await Bun.file(new URL("../README.md", import.meta.url)).text();
  // On a difference, paste exitCodesTable() (bun -e 'import {exitCodesTable} from "./lib/errors.ts"; console.log(exitCodesTable())') into README.md.
  expect(readme).toContain(exitCodesTable());
});
