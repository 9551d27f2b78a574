import { describe, expect, test } from "bun:test";
import { KeyNotFound, TypeMismatch, UnknownValueType } from "../errors.ts";
import { parseJson } from "../pyjson/parse.ts";
import type { PyDict } from "../pyjson/value.ts";
import { booleanKey, ensureType, printKey } from "./key.ts";

const md = parseJson(
  '{"a": {"b": [10, {"c": "deep"}, null]}, "n": null, "t": true, "f": false, "s": "abc\\n", "d": {"k": 1}, "i": 42, "fl": 1.0}',
) as PyDict;

describe("--key lookups", () => {
  // [key, --type, printed]
  const found: [string, string, string][] = [
    ["a.b.0", "int", "10"],
    ["a.b.1.c", "default", "deep"],
    ["a.b.-2.c", "default", "deep"],
    ["a.b. 1 .c", "default", "deep"],
    ["t", "raw", "true"],
    ["f", "raw", "false"],
    ["d", "raw", '{"k": 1}'],
    ["a.b", "raw", '[10, {"c": "deep"}, null]'],
    ["s", "default", "abc\n"],
    ["fl", "raw", "1.0"],
  ];
  test.each(found)("%s as %s", (key, type, printed) => {
    expect(printKey(md, key, type, undefined, [])).toBe(printed);
  });

  test.each([["n"], ["a.b.2"], ["a.b.3"], ["a.x"], ["s.x"], ["i.0"], ["a.b.x"]])("%s is missing", (key) => {
    expect(() => printKey(md, key, "raw", undefined, ["m.json"])).toThrow(KeyNotFound);
    expect(printKey(md, key, "int", "not checked!", [])).toBe("not checked!");
  });

  test("types are checked against Python's str()", () => {
    expect(printKey(md, "t", "default", undefined, [])).toBe("true"); // str(True) is "True": a word
    expect(() => printKey(md, "d", "default", undefined, [])).toThrow(new TypeMismatch("{'k': 1}", "default"));
    expect(() => printKey(md, "fl", "int", undefined, [])).toThrow(new TypeMismatch("1.0", "int"));
    expect(() => printKey(md, "i", "colour", undefined, [])).toThrow(UnknownValueType);
  });

  test.each([
    ["mysql://user:pw@host/db?x=1", "dsn", true],
    ["mysql:/nope", "dsn", false],
    ["r1z1-10.0.0.1:%PORT%/sdb1,r1z2-10.0.0.2:%PORT%/sdb1", "swiftdevices", true],
    ["eth0.100", "netdevice", true],
    ["bad name", "username", false],
    ["007", "int", true],
    ["7\n", "int", true],
    ["7\n\n", "int", false],
  ])("%j is %s: %p", (value, type, ok) => {
    if (ok) ensureType(value as string, type as string);
    else expect(() => ensureType(value as string, type as string)).toThrow(TypeMismatch);
  });

  test("--boolean-key", () => {
    expect([booleanKey(md, "t"), booleanKey(md, "f"), booleanKey(md, "s"), booleanKey(md, "nope")]).toEqual([0, 1, 255, 255]);
  });
});
