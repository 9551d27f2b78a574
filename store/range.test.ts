import { expect, test } from "bun:test";
import { BadRequest, RangeNotSatisfiable } from "./errors.ts";
import { parseRange } from "./range.ts";

test.each([
  ["bytes=0-99", 1000, { start: 0, end: 100 }],
  ["bytes=900-", 1000, { start: 900, end: 1000 }],
  ["bytes=-100", 1000, { start: 900, end: 1000 }],
  ["bytes=-5000", 1000, { start: 0, end: 1000 }],
  ["bytes=10-5000", 1000, { start: 10, end: 1000 }],
  ["bytes=999-999", 1000, { start: 999, end: 1000 }],
] as const)("Range %s of %d bytes", (header, size, expected) => {
  expect(parseRange(header, null, size)).toEqual(expected);
});

test.each([["bytes=1000-"], ["bytes=5-1"], ["bytes=-0"], ["items=0-1"], ["bytes=a-b"], ["bytes=-"]])("Range %s is 416", (h) => {
  expect(() => parseRange(h, null, 1000)).toThrow(RangeNotSatisfiable);
});

test("several ranges are a 400, no range is the whole", () => {
  expect(() => parseRange("bytes=0-1,5-6", null, 1000)).toThrow(BadRequest);
  expect(parseRange(null, null, 1000)).toBeUndefined();
});

test("the legacy Content-Range request header", () => {
  expect(parseRange(null, "bytes 10-19/*", 1000)).toEqual({ start: 10, end: 20 });
  expect(() => parseRange(null, "bytes 10-19", 1000)).toThrow(RangeNotSatisfiable);
});
