import { describe, expect, test } from "bun:test";
import { pyDumps } from "./dumps.ts";
import { JsonSyntaxError, parseJson } from "./parse.ts";
import { pyRepr, pyStr, reprBytes, reprString, reprTuple } from "./repr.ts";
import { pyEqual } from "./value.ts";

// Expected values are what Python 3.11's json.dumps / str() print for the same text.
describe("parse then dumps, like Python", () => {
  const table: [string, string, string][] = [
    ["1", "1", "1"],
    ["1.0", "1.0", "1.0"],
    ["1e20", "1e+20", "1e+20"],
    ["1e-7", "1e-07", "1e-07"],
    ["0.0001", "0.0001", "0.0001"],
    ["0.00001", "1e-05", "1e-05"],
    ["1e16", "1e+16", "1e+16"],
    ["1e15", "1000000000000000.0", "1000000000000000.0"],
    ["123456789012345678.0", "1.2345678901234568e+17", "1.2345678901234568e+17"],
    ["-0.0", "-0.0", "-0.0"],
    ["-0", "0", "0"],
    ["100000000000000000000000000000", "100000000000000000000000000000", "100000000000000000000000000000"],
    ["9007199254740993", "9007199254740993", "9007199254740993"],
    ['[1, "a", {"k": "v"}]', '[1, "a", {"k": "v"}]', "[1, 'a', {'k': 'v'}]"],
    ['"\\u00e9\\ud83d\\ude00"', '"\\u00e9\\ud83d\\ude00"', "é😀"],
    ["1.5e300", "1.5e+300", "1.5e+300"],
    ["0.1", "0.1", "0.1"],
    ["1E400", "Infinity", "inf"],
    ["NaN", "NaN", "nan"],
    ["-Infinity", "-Infinity", "-inf"],
    ['{"b":1,"a":2,"b":3}', '{"b": 3, "a": 2}', "{'b': 3, 'a': 2}"],
    ['{"2":1,"1":2}', '{"2": 1, "1": 2}', "{'2': 1, '1': 2}"],
    ['"\\u007f\\u0001"', '"\\u007f\\u0001"', "\x7f\x01"],
    ["2.5e-5", "2.5e-05", "2.5e-05"],
    ["12345678901234567890.0", "1.2345678901234567e+19", "1.2345678901234567e+19"],
    ["[true, false, null]", "[true, false, null]", "[True, False, None]"],
  ];
  test.each(table)("%s", (text, dumped, str) => {
    const v = parseJson(text);
    expect(pyDumps(v)).toBe(dumped);
    expect(pyStr(v)).toBe(str);
  });

  test("indent like json.dumps(indent=1)", () => {
    expect(pyDumps(parseJson('{"a":[1,{"b":null}],"c":{}}'), { indent: 1 })).toBe(
      '{\n "a": [\n  1,\n  {\n   "b": null\n  }\n ],\n "c": {}\n}',
    );
    expect(pyDumps(parseJson('{"a":[],"c":"é"}'), { indent: 2 })).toBe('{\n  "a": [],\n  "c": "\\u00e9"\n}');
  });
});

describe("text Python refuses", () => {
  test.each([
    ["byte-order mark", "\ufeff{}"],
    ["trailing comma in object", '{"a":1,}'],
    ["trailing comma in list", "[1,]"],
    ["raw newline in string", '"a\nb"'],
    ["leading zero", "01"],
    ["single quotes", "{'a': 1}"],
    ["int of 4301 digits", "1".repeat(4301)],
    ["empty text", ""],
    ["extra data", "[1] x"],
    ["unknown escape", '"\\x41"'],
  ])("%s", (_, text) => {
    expect(() => parseJson(text)).toThrow(JsonSyntaxError);
  });
});

describe("Python equality", () => {
  test.each([
    ["1", "1.0", true],
    ["1", "true", true],
    ["0", "false", true],
    ['{"a":1,"b":2}', '{"b":2,"a":1}', true],
    ["[1,2]", "[2,1]", false],
    ["NaN", "NaN", false],
    ['"1"', "1", false],
    ["null", "false", false],
    ["9007199254740993", "9007199254740992.0", false],
    ['{"a":[1,{"b":null}]}', '{"a":[1.0,{"b":null}]}', true],
  ])("%s == %s is %p", (a, b, eq) => {
    expect(pyEqual(parseJson(a), parseJson(b))).toBe(eq as boolean);
  });
});

describe("repr", () => {
  test.each([
    ["it's", `"it's"`],
    [`say "hi"`, `'say "hi"'`],
    [`both ' and "`, `'both \\' and "'`],
    ["tab\there\n", "'tab\\there\\n'"],
    ["\x00\x7f\u00a0é\u2028", "'\\x00\\x7f\\xa0é\\u2028'"],
  ])("%j", (s, r) => {
    expect(reprString(s)).toBe(r);
  });
  test("bytes and tuples", () => {
    expect(reprBytes(Buffer.from("ok\n\x01é'"))).toBe(`b"ok\\n\\x01\\xc3\\xa9'"`);
    expect(reprTuple(["mode '0o755' is not numeric", "t/etc/x"])).toBe(`("mode '0o755' is not numeric", 't/etc/x')`);
    expect(pyRepr(parseJson('{"k": [1.5, null]}'))).toBe("{'k': [1.5, None]}");
  });
});
