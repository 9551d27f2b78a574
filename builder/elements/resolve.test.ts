import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { AlreadyProvided, InvalidElementDir, MissingElement, MissingOS } from "../errors.ts";
import { discoverElements } from "./discover.ts";
import { dibInputElements, expandDependencies } from "./resolve.ts";

/**
 * Every case of DIB's own element-deps unit tests (test_elementdeps.py), on
 * the same fixture rebuilt as files in fixtures/elements-deps, with
 * ELEMENTS_PATH=element-override:elements as there.
 */
const FIXTURE = realpathSync(resolve(import.meta.dir, "../../fixtures/elements-deps"));
const ELEMENTS = join(FIXTURE, "elements");
const OVERRIDE = join(FIXTURE, "element-override");
const PATH = [OVERRIDE, ELEMENTS];

/** (name, dir) pairs, sorted: DIB's tests compare them with assertCountEqual. */
function expand(requested: string[], path = PATH) {
  return expandDependencies(requested, discoverElements(path))
    .map((e) => [e.name, e.dir] as const)
    .sort();
}
const e = (name: string) => [name, join(ELEMENTS, name)] as const;
const eo = (name: string) => [name, join(OVERRIDE, name)] as const;

describe("expandDependencies: DIB's test_elementdeps cases", () => {
  const ok: [string, string[], (readonly [string, string])[]][] = [
    ["test_non_transitive_deps", ["requires-foo"], [e("foo"), e("requires-foo")]],
    ["test_transitive_deps", ["requires-requires-foo"], [e("requires-requires-foo"), e("requires-foo"), e("foo")]],
    ["test_no_deps", ["foo"], [e("foo")]],
    ["test_self", ["self", "foo"], [e("self"), e("foo")]],
    ["test_circular", ["circular1"], [e("circular1"), e("circular2")]],
    ["test_provide", ["provides_virtual", "requires_virtual"], [e("requires_virtual"), e("provides_virtual")]],
    [
      "test_provide_virtual_ordering",
      ["requires_new_virtual", "provides_new_virtual"],
      [e("requires_new_virtual"), e("provides_new_virtual")],
    ],
    ["test_element_override", ["override_element", "foo"], [e("foo"), eo("override_element")]],
    ["test_expand_dependencies_deprecated", ["foo", "requires-foo"], [e("foo"), e("requires-foo")]],
  ];
  for (const [name, requested, expected] of ok) {
    test(`${name}: ${requested.join(" ")}`, () => {
      expect(expand(requested)).toEqual([...expected].sort());
    });
  }

  test("test_missing_deps: [fake] → MissingElement \"Element 'fake' not found\"", () => {
    expect(() => expand(["fake"])).toThrow(MissingElement);
    expect(() => expand(["fake"])).toThrow("Element 'fake' not found");
  });

  test("test_invalid_element_dir: [fake] with :/not/a/dir → InvalidElementDir, before MissingElement", () => {
    const run = () => expand(["fake"], [...PATH, "/not/a/dir"]);
    expect(run).toThrow(InvalidElementDir);
    expect(run).toThrow("ELEMENTS_PATH entry '/not/a/dir' is not a directory");
  });

  test("test_provide_conflict: [virtual, provides_virtual] → AlreadyProvided (requested and provided)", () => {
    expect(() => expand(["virtual", "provides_virtual"])).toThrow(AlreadyProvided);
  });

  test("test_elements_provide_same: two providers → \"virtual: already provided by ['provides_virtual']\"", () => {
    const run = () => expand(["provides_virtual", "also_provides_virtual"]);
    expect(run).toThrow(AlreadyProvided);
    expect(run).toThrow("virtual: already provided by ['provides_virtual']");
  });

  test("test_no_os_element: [provides_virtual] → MissingOS", () => {
    expect(() => expand(["provides_virtual"])).toThrow(MissingOS);
    expect(() => expand(["provides_virtual"])).toThrow("Please include an operating system element");
  });

  test("test_duplicated_os_passed_as_element: [circular1, operating-system] → AlreadyProvided naming circular1", () => {
    const run = () => expand(["circular1", "operating-system"]);
    expect(run).toThrow(AlreadyProvided);
    expect(run).toThrow("operating-system : already provided by ['circular1']");
  });
});

describe("expandDependencies: beyond DIB's tests", () => {
  function tree(elements: Record<string, { deps?: string[]; provides?: string[] }>) {
    const dir = mkdtempSync(join(tmpdir(), "ooo-resolve-"));
    for (const [name, { deps = [], provides = [] }] of Object.entries(elements)) {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, "element-deps"), deps.join("\n") + "\n");
      writeFileSync(join(dir, name, "element-provides"), provides.join("\n") + "\n");
    }
    return { dir: realpathSync(dir), [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
  }

  test("a missing dependency names the element that required it", () => {
    using t = tree({ os: { provides: ["operating-system"] }, app: { deps: ["lib"] }, lib: { deps: ["ghost"] } });
    let error: unknown;
    try {
      expand(["os", "app"], [t.dir]);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(MissingElement);
    expect((error as MissingElement).element).toBe("ghost");
    expect((error as MissingElement).requiredBy).toEqual(["lib"]);
    expect((error as Error).message).toBe("Element 'ghost' not found (required by lib)");
  });

  test("a missing element asked for on the command line says so", () => {
    using t = tree({ os: { provides: ["operating-system"] } });
    expect(() => expand(["os", "nope"], [t.dir])).toThrow("Element 'nope' not found (requested on the command line)");
  });

  test("InvalidElementDir comes first, and for the LAST bad entry (DIB scans the path from the end)", () => {
    expect(() => expand(["fake"], ["/not/first", ...PATH, "/not/last"])).toThrow("'/not/last'");
    // a regular file is not a directory either
    using t = tree({});
    writeFileSync(join(t.dir, "file"), "");
    expect(() => expand(["foo"], [...PATH, join(t.dir, "file")])).toThrow(InvalidElementDir);
  });

  test("a provided name is dropped from the result even when a real element of that name exists", () => {
    // requires_virtual provides operating-system; provides_virtual provides "virtual",
    // and a real element called "virtual" exists: it must not be pulled in.
    expect(expand(["provides_virtual", "requires_virtual"]).map(([n]) => n)).not.toContain("virtual");
  });

  test("'# comment' lines are names, as in DIB", () => {
    using t = tree({ os: { provides: ["operating-system"], deps: ["# not a comment"] } });
    expect(() => expand(["os"], [t.dir])).toThrow("Element '# not a comment' not found");
  });

  test("blank lines and surrounding spaces are ignored", () => {
    using t = tree({ os: { provides: ["  operating-system  ", ""] , deps: ["", "  lib ", ""] }, lib: {} });
    expect(expand(["os"], [t.dir]).map(([n]) => n)).toEqual(["lib", "os"]);
  });

  test("an element reached through a symlink is named by its real folder", () => {
    using t = tree({ os: { provides: ["operating-system"] } });
    const links = mkdtempSync(join(tmpdir(), "ooo-resolve-links-"));
    try {
      symlinkSync(join(t.dir, "os"), join(links, "alias"));
      expect(expand(["os"], [links]).map(([n]) => n)).toEqual(["os"]);
    } finally {
      rmSync(links, { recursive: true, force: true });
    }
  });
});

describe("dibInputElements: disk-image-create's element list (arg_to_elements)", () => {
  const cases: [string, string[], { skipBase?: boolean; arch?: string }, string[]][] = [
    ["base first", ["debian-minimal"], {}, ["base", "debian-minimal"]],
    ["-n: no base", ["debian-minimal"], { skipBase: true }, ["debian-minimal"]],
    ["vm without block-device-*: block-device-mbr appended", ["debian-minimal", "vm"], {}, ["base", "debian-minimal", "vm", "block-device-mbr"]],
    ["vm on arm64: block-device-efi", ["debian-minimal", "vm"], { arch: "arm64" }, ["base", "debian-minimal", "vm", "block-device-efi"]],
    ["vm with a block-device-* element: nothing added", ["vm", "block-device-gpt", "debian-minimal"], {}, ["base", "vm", "block-device-gpt", "debian-minimal"]],
  ];
  for (const [name, elements, opts, expected] of cases) {
    test(name, () => {
      expect(dibInputElements(elements, { skipBase: opts.skipBase ?? false, arch: opts.arch ?? "amd64" })).toEqual(expected);
    });
  }
});
