import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { optionsFromArgs } from "./cli.ts";
import { DEFAULT_IMAGE } from "./defaults.ts";
import { FLAGS, flagsTable } from "./options.ts";

const README = join(import.meta.dir, "../README.md");

describe("build-image flags, declared once (options.ts)", () => {
  test("the README's flag table is the declaration's", () => {
    const text = readFileSync(README, "utf8");
    const start = text.indexOf("| flag | meaning |");
    expect(start).toBeGreaterThan(0);
    const table = text.slice(start, text.indexOf("\n\n", start));
    // On a difference, paste flagsTable() (`bun -e 'import {flagsTable} from "./builder/options.ts"; console.log(flagsTable())'`) into README.md.
    expect(table).toBe(flagsTable());
  });

  test("every flag reaches its option: lists split, counts counted, switches on", () => {
    const o = optionsFromArgs(
      {
        elements: ["debian-minimal"],
        o: "out/x",
        t: "raw,tar",
        a: "arm64",
        n: true,
        p: ["vim,less", "curl"],
        x: 2,
        u: true,
        "image-size": 3,
        checksum: true,
        offline: true,
        logfile: "x.log",
        "elements-path": ["/a:/b", "/c"],
        "image-cache": "/cache",
        "no-cache": true,
        "hook-timeout": 30,
        "env-keep": ["MY_TOKEN,OTHER_KEY"],
        json: true,
        "progress-file": "p.jsonl",
      },
      ["-o", "out/x"],
    );
    expect(o).toMatchObject({
      elements: ["debian-minimal"],
      output: "out/x",
      types: ["raw", "tar"],
      arch: "arm64",
      skipBase: true,
      packages: ["vim", "less", "curl"],
      trace: 2,
      uncompressed: true,
      imageSize: 3,
      checksum: true,
      offline: true,
      noTmpfs: false,
      logfile: "x.log",
      elementsPath: ["/a", "/b", "/c"],
      imageCache: "/cache",
      noCache: true,
      hookTimeout: 30,
      envKeep: ["MY_TOKEN", "OTHER_KEY"],
      json: true,
      progressFile: "p.jsonl",
      args: ["-o", "out/x"],
    });
  });

  test("the rules between flags: no elements is the default image, --keep-failed builds on disk", () => {
    const o = optionsFromArgs({ "keep-failed": true }, []);
    expect(o).toMatchObject({ elements: DEFAULT_IMAGE.elements, output: DEFAULT_IMAGE.output, types: DEFAULT_IMAGE.types, keepFailed: true, noTmpfs: true });
    expect(optionsFromArgs({ elements: ["busybox-base"] }, [])).toMatchObject({ output: "image", types: ["tar"], trace: 0 });
  });

  test("a bad value names its flag", () => {
    expect(() => optionsFromArgs({ elements: ["x"], "env-keep": "NOT A NAME" }, [])).toThrow(/--env-keep: must be a variable name/);
    expect(() => optionsFromArgs({ elements: ["x"], "image-size": -1 }, [])).toThrow(/--image-size: must be more than 0/);
  });

  test("-a takes Debian's names (and DIB's kernel names for some), nothing else", () => {
    expect(optionsFromArgs({ elements: ["x"], a: "x86_64" }, []).arch).toBe("amd64");
    expect(optionsFromArgs({ elements: ["x"], a: "aarch64" }, []).arch).toBe("arm64");
    expect(() => optionsFromArgs({ elements: ["x"], a: "zz80" }, [])).toThrow(/-a: zz80 is no architecture Debian builds for; one of: amd64, arm64/);
  });

  test("every flag has a description and a distinct spelling", () => {
    const flags = Object.values(FLAGS).map((f) => f.flag);
    expect(new Set(flags).size).toBe(flags.length);
    for (const f of Object.values(FLAGS)) expect(f.describe.length).toBeGreaterThan(5);
  });
});
