import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireCommand } from "../../test/support/require.ts";
import { compareRunParts, orderEnvironmentFiles, orderRunParts, runPartsRegex } from "./run-parts.ts";

const DIB_RUN_PARTS = "/usr/lib/python3/dist-packages/diskimage_builder/lib/dib-run-parts";

/** The reference: GNU sort in the C locale, as dib-run-parts calls it. */
function cSortN(lines: string[]): string[] {
  const r = spawnSync("sort", ["-n"], { input: lines.join("\n") + "\n", env: { ...process.env, LC_ALL: "C" } });
  return r.stdout.toString().split("\n").filter(Boolean);
}

describe("orderRunParts: dib-run-parts order (LANG=C sort -n) and names", () => {
  const cases: [string, string[], string[]][] = [
    [
      "the reference example",
      ["100-a", "Zed", "10a", "01-z", "99-x", "foo", "5-a", "10-b", "-x", "05_x", "1-a", "10-a"],
      ["-x", "Zed", "foo", "01-z", "1-a", "05_x", "5-a", "10-a", "10-b", "10a", "99-x", "100-a"],
    ],
    ["numeric, not lexical", ["10-b", "9-a", "100-c"], ["9-a", "10-b", "100-c"]],
    ["no number sorts as 0, before 1", ["1-a", "zz", "AA"], ["AA", "zz", "1-a"]],
    ["leading zeros do not count; ties bytewise", ["010-x", "10-a", "0010-b"], ["0010-b", "010-x", "10-a"]],
    ["bytewise tie-break: upper case before lower, '-' before '_'", ["50_b", "50-b", "50B", "50b"], ["50-b", "50B", "50_b", "50b"]],
    ["dotted names are not run (default regex)", ["10-a.sh", "10-a", "README.rst", "20_b"], ["10-a", "20_b"]],
    ["names with spaces, '~' or '.' are skipped", ["10 a", "10-a~", ".10-a", "10-a"], ["10-a"]],
  ];
  for (const [name, input, expected] of cases) {
    test(name, () => {
      expect(orderRunParts(input)).toEqual(expected);
    });
  }

  test("RUN_PARTS_REGEX replaces the name rule", () => {
    const regex = runPartsRegex({ RUN_PARTS_REGEX: "^[0-9]+-.*\\.sh$" });
    expect(orderRunParts(["10-a.sh", "10-a", "5-b.sh", "x.sh"], regex)).toEqual(["5-b.sh", "10-a.sh"]);
    expect(runPartsRegex({})).toEqual(/^[0-9A-Za-z_-]+$/);
  });

  test("agrees with GNU `LC_ALL=C sort -n` on 2,000 random names", () => {
    requireCommand("sort");
    let seed = 42;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const alphabet = "0123456789-_aAzZ.";
    const names = new Set<string>();
    while (names.size < 2000) {
      const len = 1 + rand(6);
      let s = "";
      for (let i = 0; i < len; i++) s += alphabet[rand(alphabet.length)];
      names.add(s);
    }
    const list = [...names];
    expect([...list].sort(compareRunParts)).toEqual(cSortN(list));
  });
});

describe("orderEnvironmentFiles: environment.d as dib-run-parts sources it", () => {
  const cases: [string, string[], string[]][] = [
    ["byte order, not numeric (sort -n sees the whole path)", ["9-a", "10-b", "A10", "01-z"], ["01-z", "10-b", "9-a", "A10"]],
    ["dots allowed, no other punctuation", ["10-x.bash", "20-y.sh~", "30 z", "05-a"], ["05-a", "10-x.bash"]],
  ];
  for (const [name, input, expected] of cases) {
    test(name, () => {
      expect(orderEnvironmentFiles(input)).toEqual(expected);
    });
  }

  test("the same order as diskimage-builder's dib-run-parts", () => {
    requireCommand("bash", DIB_RUN_PARTS);
    const dir = mkdtempSync(join(tmpdir(), "ooo-envd-"));
    try {
      mkdirSync(join(dir, "environment.d"));
      mkdirSync(join(dir, "x.d"));
      const files = ["9-a", "10-b", "A10", "01-z", "10-x.bash", "_u", "zz.sh", "100"];
      for (const f of files) writeFileSync(join(dir, "environment.d", f), `true\n`);
      writeFileSync(join(dir, "x.d", "10-hook"), "#!/bin/sh\n");
      chmodSync(join(dir, "x.d", "10-hook"), 0o755);
      const r = spawnSync("bash", [DIB_RUN_PARTS, join(dir, "x.d")], { env: { ...process.env, LC_ALL: "C" } });
      const sourced = [...r.stderr.toString().matchAll(/Sourcing environment file .*\/environment\.d\/(\S+)/g)].map((m) => m[1]);
      expect(sourced.length).toBe(files.length);
      expect(orderEnvironmentFiles(files)).toEqual(sourced as string[]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
