import { expect, test } from "bun:test";
import { parseJson } from "../pyjson/parse.ts";
import type { PyDict } from "../pyjson/value.ts";
import { namedDigest } from "./check.ts";

const digest = `sha256:${"ab".repeat(32)}`;
const metadata = (json: unknown) => parseJson(JSON.stringify(json)) as PyDict;

test.each([
  ["no ooo block: nothing to do", { motd: "hi" }, null],
  ["the digest the image names", { ooo: { image: { name: "kv", digest } } }, digest],
  ["an ooo block that is not an object: the full check reports it", { ooo: "kv" }, undefined],
  ["no image: the full check reports it", { ooo: { node: "kv-0" } }, undefined],
  ["a digest that is not sha256:<64 hex>: the full check reports it", { ooo: { image: { digest: "sha256:../../etc" } } }, undefined],
])("%s", (_, json, expected) => {
  expect(namedDigest(metadata(json))).toBe(expected as string | null | undefined);
});
