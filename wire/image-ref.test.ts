import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { IMAGE_REF_FORMS, ImageRefText, parseImageRef } from "./image-ref.ts";

const HEX = "0123456789abcdef".repeat(4);
const D = `sha256:${HEX}`;
const ID = "11111111-2222-3333-4444-55555555abcd";

test.each([
  [ID, { form: "id", id: ID }],
  [ID.toUpperCase(), { form: "id", id: ID.toUpperCase() }],
  [D, { form: "digest", digest: D }],
  ["debian-minimal", { form: "name", name: "debian-minimal" }],
  ["debian-minimal:stable", { form: "tag", name: "debian-minimal", tag: "stable" }],
  ["kv@live", { form: "tag-or-version", name: "kv", label: "live" }],
  ["kv@7", { form: "tag-or-version", name: "kv", label: "7" }],
  ["kv@1.2+deb12", { form: "tag-or-version", name: "kv", label: "1.2+deb12" }],
  [`debian-minimal@${D}`, { form: "name-digest", name: "debian-minimal", digest: D }],
  ["Node_1.x", { form: "name", name: "Node_1.x" }],
])("%s", (text, expected) => {
  expect(parseImageRef(text)).toEqual({ ref: { text, ...expected } as never });
  expect(ImageRefText.safeParse(text).success).toBe(true);
});

const grammar = `must be ${IMAGE_REF_FORMS}`;
const badDigest = `${grammar}; a digest is sha256: and 64 lowercase hex digits`;
test.each([
  ["", grammar],
  ["node stable", grammar],
  ["-node", grammar],
  ["kv@", grammar],
  ["kv:", grammar],
  ["kv@live@x", grammar],
  ["kv:a:b", grammar],
  ["a/b", grammar],
  ["sha256:abc", badDigest],
  [`sha256:${HEX.toUpperCase()}`, badDigest],
  ["kv@sha256:abc", badDigest],
  [`kv:${D}`, grammar],
])("refused: %p", (text, problem) => {
  expect(parseImageRef(text)).toEqual({ problem });
  expect(ImageRefText.safeParse(text).error?.issues.map((i) => i.message)).toEqual([problem]);
});

test("the README states the grammar as the parser does, in both sections", () => {
  const readme = readFileSync(join(import.meta.dir, "..", "README.md"), "utf8");
  const sections = ["## The image store", "## Deploying: the lean deployer"].map((h) => readme.slice(readme.indexOf(h), readme.indexOf("\n## ", readme.indexOf(h) + 1)));
  for (const section of sections) expect(section).toContain(IMAGE_REF_FORMS);
});
