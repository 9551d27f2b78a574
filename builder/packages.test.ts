import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { loadPackageInstalls } from "./elements/element.ts";
import { PackageInstalls } from "./elements/schema.ts";
import { requireCommand } from "../test/support/require.ts";
import { InvalidElement } from "./errors.ts";
import { squashFiles, type PackagePlan } from "./packages.ts";
import "../lib/zod-messages.ts"; // the messages users see (cli/ooo.ts loads it first)

/**
 * package-installs squash, as DIB's package-installs-squash (collect_data)
 * and its unit tests (test_package_squash.py) define it: input files →
 * per-phase install and uninstall lists.
 */
function squash(yaml: string, env: Record<string, string> = {}, arch = "amd64", element = "test_element"): PackagePlan {
  const file = PackageInstalls.parse(parseYaml(yaml));
  return squashFiles([{ element, file }], arch, { ARCH: arch, ...env });
}

const empty = { install: [], uninstall: [] };
const plan = (p: Partial<PackagePlan>): PackagePlan => ({
  "pre-install.d": empty,
  "install.d": empty,
  "post-install.d": empty,
  ...p,
});

describe("squash: DIB's test_package_squash cases", () => {
  test("test_simple: `test_package: ''`", () => {
    expect(squash("test_package: ''")).toEqual(plan({ "install.d": { install: ["test_package"], uninstall: [] } }));
  });

  test("test_arch: arch and not-arch on arm64", () => {
    const yaml = "test_package: ''\ntest_arm64_package: {arch: arm64}\ndo_not_install: {not-arch: arm64}\n";
    expect(squash(yaml, {}, "arm64")["install.d"].install).toEqual(["test_arm64_package", "test_package"]);
  });

  const kernel = `
linux-image-generic:
  - not-arch: arm64
    when: DIB_UBUNTU_KERNEL = linux-image-generic
  - arch: arm64
    when:
      - DIB_RELEASE != xenial
      - DIB_UBUNTU_KERNEL = linux-image-generic
linux-generic-hwe-16.04:
  arch: arm64
  when:
    - DIB_RELEASE = xenial
    - DIB_UBUNTU_KERNEL = linux-image-generic
`;
  const kernels: [string, string, string, string][] = [
    ["test_param_list_x86", "x86_64", "focal", "linux-image-generic"],
    ["test_param_list_arm64_xenial", "arm64", "xenial", "linux-generic-hwe-16.04"],
    ["test_param_list_arm64_focal", "arm64", "focal", "linux-image-generic"],
  ];
  for (const [name, arch, release, expected] of kernels) {
    test(`${name}: parameter lists with when (${arch}, ${release})`, () => {
      const env = { DIB_UBUNTU_KERNEL: "linux-image-generic", DIB_RELEASE: release };
      expect(squash(kernel, env, arch)["install.d"].install).toEqual([expected]);
    });
  }

  test("test_skip_when: = and != with spaces or none", () => {
    const yaml = `
skipped_package: {when: DIB_FEATURE=0}
not_skipped_package: {when: DIB_FEATURE=1}
not_equal_package: {when: DIB_FEATURE!=0}
not_equal_skipped_package: {when: DIB_FEATURE!=1}
`;
    expect(squash(yaml, { DIB_FEATURE: "1" })["install.d"].install).toEqual(["not_equal_package", "not_skipped_package"]);
  });

  test("test_skip_no_var: `when` on an unset variable is an error", () => {
    expect(() => squash("package: {when: MISSING_VAR=1}")).toThrow(InvalidElement);
    expect(() => squash("package: {when: MISSING_VAR=1}")).toThrow("when: the variable <MISSING_VAR> is not set");
  });

  test("test_skip_when_list: every statement of a list must hold", () => {
    const yaml = `
not_skipped_package: {when: [DIB_A_FEATURE=1, DIB_B_FEATURE=1, DIB_C_FEATURE=1]}
skipped_package: {when: [DIB_A_FEATURE=1, DIB_B_FEATURE=0, DIB_C_FEATURE=1]}
`;
    const env = { DIB_A_FEATURE: "1", DIB_B_FEATURE: "1", DIB_C_FEATURE: "1" };
    expect(squash(yaml, env)["install.d"].install).toEqual(["not_skipped_package"]);
  });
});

describe("squash: phases, uninstall, build-only, installtype, python version", () => {
  const cases: [string, string, Record<string, string>, Partial<PackagePlan>][] = [
    ["null value (`pkg:`) installs in install.d", "rsync:\n", {}, { "install.d": { install: ["rsync"], uninstall: [] } }],
    ["empty list and empty map mean the defaults too (DIB: `if not params`)", "a: []\nb: {}\n", {}, { "install.d": { install: ["a", "b"], uninstall: [] } }],
    [
      "phase puts it in that phase's lists",
      "a: {phase: pre-install.d}\nb: {phase: post-install.d}\nc: {phase: install.d}\n",
      {},
      {
        "pre-install.d": { install: ["a"], uninstall: [] },
        "install.d": { install: ["c"], uninstall: [] },
        "post-install.d": { install: ["b"], uninstall: [] },
      },
    ],
    ["uninstall: removed, not installed (even `uninstall:` with no value)", "a: {uninstall: true}\nb: {uninstall: }\n", {}, { "install.d": { install: [], uninstall: ["a", "b"] } }],
    [
      "build-only: installed, then removed in the same phase",
      "gcc: {build-only: true, phase: post-install.d}\n",
      {},
      { "post-install.d": { install: ["gcc"], uninstall: ["gcc"] } },
    ],
    [
      "installtype: only for the element's install type (default source)",
      "src: {installtype: source}\npkg: {installtype: package}\n",
      {},
      { "install.d": { install: ["src"], uninstall: [] } },
    ],
    [
      "installtype: DIB_INSTALLTYPE_<element> picks the other",
      "src: {installtype: source}\npkg: {installtype: package}\n",
      { DIB_INSTALLTYPE_test_element: "package" },
      { "install.d": { install: ["pkg"], uninstall: [] } },
    ],
    [
      "installtype: DIB_DEFAULT_INSTALLTYPE for every element",
      "src: {installtype: source}\npkg: {installtype: package}\n",
      { DIB_DEFAULT_INSTALLTYPE: "package" },
      { "install.d": { install: ["pkg"], uninstall: [] } },
    ],
    [
      "dib_python_version: only when DIB_PYTHON_VERSION matches (DIB's own elements use it)",
      "python3-dev: {dib_python_version: 3}\npython-dev: {dib_python_version: 2}\n",
      { DIB_PYTHON_VERSION: "3" },
      { "install.d": { install: ["python3-dev"], uninstall: [] } },
    ],
    ["arch list: comma-separated", "a: {arch: 'ppc64el,amd64'}\nb: {arch: arm64}\n", {}, { "install.d": { install: ["a"], uninstall: [] } }],
    ["not-arch list", "a: {not-arch: 'arm64,amd64'}\nb: {not-arch: arm64}\n", {}, { "install.d": { install: ["b"], uninstall: [] } }],
    ["the same package from two entries is listed once", "a: [{phase: install.d}, {phase: install.d}]\n", {}, { "install.d": { install: ["a"], uninstall: [] } }],
  ];
  for (const [name, yaml, env, expected] of cases) {
    test(name, () => {
      expect(squash(yaml, env)).toEqual(plan(expected));
    });
  }

  test("several elements merge into one transaction per phase", () => {
    const a = PackageInstalls.parse(parseYaml("rsync:\ncurl: {phase: pre-install.d}\n"));
    const b = PackageInstalls.parse(parseYaml("rsync:\njq:\n"));
    expect(squashFiles([{ element: "a", file: a }, { element: "b", file: b }], "amd64", {})).toEqual(
      plan({ "pre-install.d": { install: ["curl"], uninstall: [] }, "install.d": { install: ["jq", "rsync"], uninstall: [] } }),
    );
  });

  test("a malformed when is an error naming the statement", () => {
    expect(() => squash("a: {when: 'DIB_X'}", { DIB_X: "1" })).toThrow("malformed when: <DIB_X>");
  });
});

describe("package-installs.yaml validation", () => {
  const bad: [string, string, string][] = [
    ["unknown phase", "a: {phase: finalise.d}", "a.phase"],
    ["unknown key (typo)", "a: {phsae: install.d}", "a"],
    ["arch and not-arch together", "a: {arch: amd64, not-arch: arm64}", "arch and not-arch given together"],
    ["a list at the top", "- a\n- b\n", "must be a mapping (key: value), not a list"],
  ];
  for (const [name, yaml, message] of bad) {
    test(`rejected: ${name}`, () => {
      const r = PackageInstalls.safeParse(parseYaml(yaml));
      expect(r.success).toBe(false);
      expect(JSON.stringify(r.error?.issues)).toContain(message.split(".").pop()!);
    });
  }

  test("every package-installs file shipped with diskimage-builder parses", () => {
    const root = "/usr/lib/python3/dist-packages/diskimage_builder/elements";
    requireCommand(join(root, "package-installs/bin/package-installs-squash")); // python3-diskimage-builder
    let count = 0;
    for (const name of readdirSync(root)) {
      for (const f of ["package-installs.yaml", "package-installs.json"]) {
        let text: string;
        try {
          text = readFileSync(join(root, name, f), "utf8");
        } catch {
          continue;
        }
        const element = { name, dir: join(root, name), deps: new Set<string>(), provides: new Set<string>() };
        expect(() => loadPackageInstalls(element)).not.toThrow();
        expect(text.length).toBeGreaterThan(0);
        count++;
      }
    }
    expect(count).toBeGreaterThan(30);
  });
});
