import { describe } from "bun:test";
import { join } from "node:path";
import { EXIT } from "../lib/errors.ts";
import { type BadInput, badInputTable } from "../test/support/bad-inputs.ts";
import { requireRoot } from "../test/support/require.ts";

/**
 * `ooo build-image` and `ooo element-info` given what a new user gets wrong
 * (issue 24). Every row is refused before a build starts — no work folder,
 * no log — except the few that build busybox-base (about a second) to show
 * what a finished build may leave. Runs as root, as build-image does.
 */
const FIXTURES = join(import.meta.dir, "../fixtures/elements");
const USAGE = EXIT.usage.code;
/** The image cache in the row's folder: nothing under the user's home is touched. */
const CACHE = "cache";

const rows: BadInput[] = [
  // Paths (issue 24, item 1)
  { name: "-o in a read-only folder", argv: ["build-image", "-o", "ro/img", "--image-cache", CACHE, "busybox-base"], files: { ro: { readOnlyDir: true } }, exit: USAGE, says: "-o ro/img.manifest.json: its folder", },
  { name: "--logfile names a folder", argv: ["build-image", "-o", "img", "--logfile", "logs", "--image-cache", CACHE, "busybox-base"], files: { logs: { dir: true } }, exit: USAGE, says: "--logfile logs: is a folder" },
  { name: "-o X where X.tar is a folder", argv: ["build-image", "-o", "X", "--image-cache", CACHE, "busybox-base"], files: { "X.tar": { dir: true } }, exit: USAGE, says: "-o X.tar: is a folder" },
  { name: "-o ending in a slash", argv: ["build-image", "-o", "out/", "--image-cache", CACHE, "busybox-base"], exit: USAGE, says: "-o out/: names a folder" },
  { name: "-o inside a file", argv: ["build-image", "-o", "afile/img", "--image-cache", CACHE, "busybox-base"], files: { afile: "x" }, exit: USAGE, says: "afile is a file, not a folder" },
  { name: "--image-cache is a file", argv: ["build-image", "-o", "img", "--image-cache", "afile", "busybox-base"], files: { afile: "x" }, exit: USAGE, says: "--image-cache afile: is a file, not a folder" },
  { name: "--progress-file is a folder", argv: ["build-image", "-o", "img", "--progress-file", "p", "--image-cache", CACHE, "busybox-base"], files: { p: { dir: true } }, exit: USAGE, says: "--progress-file p: is a folder" },
  { name: "--elements-path that does not exist", argv: ["build-image", "-o", "img", "--elements-path", "/nonexistent", "--image-cache", CACHE, "busybox-base"], exit: USAGE, says: "'/nonexistent' is not a directory" },
  { name: "--elements-path that is a file", argv: ["build-image", "-o", "img", "--elements-path", "afile", "--image-cache", CACHE, "busybox-base"], files: { afile: "x" }, exit: USAGE, says: "is not a directory" },
  // Outputs that exist (item 2)
  {
    name: "files of the output's names exist, and no ooo manifest lists them",
    argv: ["build-image", "-o", "img", "--image-cache", CACHE, "busybox-base"],
    files: { "img.tar": "precious", "img.manifest.json": "{}" },
    exit: USAGE,
    says: "img.manifest.json and img.tar exist; nothing was written",
  },
  { name: "--checksum's files exist", argv: ["build-image", "-o", "img", "--checksum", "--image-cache", CACHE, "busybox-base"], files: { "img.tar.md5": "x" }, exit: USAGE, says: "img.tar.md5 exists" },
  { name: "a raw disk's kernel beside it exists", argv: ["build-image", "-o", "img", "-t", "raw", "--image-cache", CACHE, "busybox-base"], files: { "img.vmlinuz": "x" }, exit: USAGE, says: "img.vmlinuz exists" },
  {
    name: "no elements: says first that it builds the default image",
    argv: ["build-image", "--image-cache", CACHE],
    files: { "out/default.raw": "an earlier build" },
    exit: USAGE,
    says: /no elements given: building the default image \(debian-minimal ooo-node redis\) to out\/default[\s\S]*out\/default.raw exists/,
  },
  // Architectures (item 4)
  { name: "-a zz80", argv: ["build-image", "-a", "zz80", "-o", "img", "--image-cache", CACHE, "busybox-base"], exit: USAGE, says: "-a: zz80 is no architecture Debian builds for" },
  { name: "-a empty", argv: ["build-image", "-a", "", "-o", "img", "--image-cache", CACHE, "busybox-base"], exit: USAGE, says: "-a:  is no architecture" },
  // Values in the code's words (item 8)
  { name: "--image-size abc", argv: ["build-image", "--image-size", "abc", "busybox-base"], exit: USAGE, says: "--image-size: must be a number" },
  { name: "--image-size 0", argv: ["build-image", "--image-size", "0", "busybox-base"], exit: USAGE, says: "--image-size: must be more than 0" },
  { name: "--hook-timeout -1", argv: ["build-image", "--hook-timeout", "-1", "busybox-base"], exit: USAGE, says: "--hook-timeout: must be at least 0" },
  { name: "-o given twice", argv: ["build-image", "-o", "a", "-o", "b", "busybox-base"], exit: USAGE, says: "-o was given 2 times (a, b); give it once" },
  { name: "-o empty", argv: ["build-image", "-o", "", "busybox-base"], exit: USAGE, says: "-o: must not be empty" },
  { name: "--env-keep not a variable name", argv: ["build-image", "--env-keep", "A B", "busybox-base"], exit: USAGE, says: "--env-keep: must be a variable name" },
  { name: "-t empty", argv: ["build-image", "-t", "", "-o", "img", "--image-cache", CACHE, "busybox-base"], exit: USAGE, says: "-t: must not be empty" },
  { name: "-t floppy", argv: ["build-image", "-t", "raw,floppy", "-o", "img", "--image-cache", CACHE, "busybox-base"], exit: USAGE, says: "unknown output type 'floppy' in -t" },
  { name: "an unknown flag", argv: ["build-image", "--imagesize", "3", "busybox-base"], exit: USAGE, says: "unknown option --imagesize" },
  // Elements
  { name: "an element that does not exist", argv: ["build-image", "-o", "img", "--image-cache", CACHE, "busybox-bsae"], exit: USAGE, says: "Element 'busybox-bsae' not found" },
  { name: "no operating system element", argv: ["build-image", "-o", "img", "--image-cache", CACHE, "install-bin"], exit: USAGE, says: "Please include an operating system element" },
  { name: "a dependency that does not exist", argv: ["build-image", "-o", "img", "--image-cache", CACHE, "--elements-path", FIXTURES, "busybox-base", "broken-deps"], exit: USAGE, says: "not found (required by broken-deps)" },
  { name: "two elements with the same hook", argv: ["build-image", "-o", "img", "--image-cache", CACHE, "--elements-path", FIXTURES, "busybox-base", "dup-hook-a", "dup-hook-b"], exit: USAGE, says: "duplicated hook", leaves: ["img.log", CACHE] },
  // What a finished or failed build may leave
  {
    name: "-t raw of a root without a kernel: built, with a warning that it will not boot",
    argv: ["build-image", "-o", "img", "-t", "raw", "--image-cache", CACHE, "busybox-base"],
    exit: EXIT.ok.code,
    says: "the root has no kernel and initrd (/boot/vmlinuz, /boot/initrd.img)",
    leaves: ["img.raw", "img.disk-map.json", "img.disk-pack", "img.manifest.json", "img.log", CACHE],
  },
  { name: "--force replaces outputs that exist", argv: ["build-image", "-o", "img", "--force", "--image-cache", CACHE, "busybox-base"], files: { "img.tar": "old" }, exit: EXIT.ok.code, says: "image digest", leaves: ["img.tar", "img.entries.json", "img.manifest.json", "img.log", CACHE] },
  { name: "a hook that fails leaves only the log", argv: ["build-image", "-o", "img", "--image-cache", CACHE, "--elements-path", FIXTURES, "busybox-base", "fail-hook"], exit: EXIT.failed.code, says: "hook install.d/", leaves: ["img.log", CACHE] },
  // element-info (item 9: --elements-path no longer swallows the elements)
  { name: "element-info: --elements-path before the element", argv: ["element-info", "--elements-path", FIXTURES, "no-such-element"], exit: USAGE, says: "Element 'no-such-element' not found" },
  { name: "element-info: no element and no --list", argv: ["element-info"], exit: USAGE, says: "element-info needs at least one element (or --list)" },
  { name: "element-info: --elements-path that does not exist", argv: ["element-info", "--elements-path", "/nonexistent", "busybox-base"], exit: USAGE, says: "'/nonexistent' is not a directory" },
];

describe("ooo build-image and element-info refuse bad input cleanly", () => {
  requireRoot();
  badInputTable(rows);
});
