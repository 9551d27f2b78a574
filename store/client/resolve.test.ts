import { expect, test } from "bun:test";
import { parseImageRef } from "./resolve.ts";

const D = `sha256:${"a".repeat(64)}`;
test.each([
  ["11111111-2222-3333-4444-555555555555", { id: "11111111-2222-3333-4444-555555555555" }],
  [D, { ooo_digest: D }],
  ["debian-minimal", { name: "debian-minimal" }],
  ["debian-minimal:stable", { name: "debian-minimal", tag: "stable" }],
  ["debian-minimal@7", { name: "debian-minimal", ooo_version: "7" }],
  [`debian-minimal@${D}`, { name: "debian-minimal", ooo_digest: D }],
])("%s", (ref, query) => {
  expect(parseImageRef(ref)).toEqual(query);
});
