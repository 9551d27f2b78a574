import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { requireCommand } from "../../test/support/require.ts";
import { discoverElements } from "./discover.ts";
import type { Element } from "./element.ts";
import { dibInputElements, expandDependencies } from "./resolve.ts";

/**
 * Our expansion against the original: Debian's python3-diskimage-builder
 * (element_dependencies.py) run on its own shipped element tree, for a few
 * real image recipes and then for every element of the tree, alone and on
 * top of two operating systems. Same set, or the same kind of error.
 *
 * /usr/bin/python3 on purpose: a python3 earlier on PATH (pyenv, a venv) does
 * not see Debian's dist-packages.
 */
const PYTHON = "/usr/bin/python3";
const DIB_ELEMENTS = "/usr/lib/python3/dist-packages/diskimage_builder/elements";

const ORACLE = `
import json, logging, sys
logging.disable(logging.CRITICAL)
from diskimage_builder import element_dependencies as ed
cases = json.load(sys.stdin)
all_elements = ed._find_all_elements(${JSON.stringify(DIB_ELEMENTS)})
out = []
for requested in cases:
    try:
        got = ed._expand_element_dependencies(requested, all_elements)
        out.append({"ok": sorted(e.name for e in got)})
    except Exception as e:
        out.append({"error": type(e).__name__, "message": str(e)})
print(json.dumps(out))
`;

type Outcome = { ok: string[] } | { error: string; message: string };

/** DIB's exception class names for ours. */
const DIB_NAME: Record<string, string> = {
  MissingElement: "MissingElementException",
  AlreadyProvided: "AlreadyProvidedException",
  MissingOS: "MissingOSException",
  InvalidElementDir: "InvalidElementDir",
};

let all: Map<string, Element>;
let names: string[];

function ours(requested: string[]): Outcome {
  try {
    return { ok: expandDependencies(requested, all).map((e) => e.name).sort() };
  } catch (e) {
    return { error: DIB_NAME[(e as Error).name] ?? (e as Error).name, message: (e as Error).message };
  }
}

async function dib(cases: string[][]): Promise<Outcome[]> {
  const proc = Bun.spawn([PYTHON, "-c", ORACLE], {
    stdin: new Blob([JSON.stringify(cases)]),
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, PYTHONHASHSEED: "0", PYTHONDONTWRITEBYTECODE: "1" },
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`diskimage-builder's element_dependencies failed (exit ${code}):\n${err}`);
  return JSON.parse(out) as Outcome[];
}

/** Compare outcomes: the same set, or the same error class (and DIB's message where it has one of ours). */
function same(requested: string[], theirs: Outcome, mine: Outcome) {
  const label = requested.join(" ");
  if ("ok" in theirs) {
    expect({ label, ...mine }).toEqual({ label, ...theirs });
    return;
  }
  expect({ label, error: "error" in mine ? mine.error : `no error, got ${JSON.stringify(mine)}` }).toEqual({ label, error: theirs.error });
  // MissingElement and two-provider messages are DIB's text plus our context.
  if (theirs.message && "error" in mine && theirs.error === "MissingElementException") {
    expect(mine.message.startsWith(theirs.message)).toBe(true);
  }
}

beforeAll(async () => {
  requireCommand(PYTHON);
  if (!existsSync(join(DIB_ELEMENTS, "debian-minimal")))
    throw new Error(`this test needs Debian's python3-diskimage-builder (${DIB_ELEMENTS}); install it with: sh tools/ensure.sh`);
  all = discoverElements([DIB_ELEMENTS]);
  names = readdirSync(DIB_ELEMENTS, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== "__pycache__")
    .map((d) => d.name)
    .sort();
});

describe("expandDependencies vs diskimage-builder on its own element tree", () => {
  // Recipes as a user types them to element-info, and as disk-image-create
  // hands them to the resolver (base first; vm gets block-device-mbr).
  const recipes = [
    "debian-minimal vm",
    "ubuntu-minimal",
    "centos-minimal vm",
    "ironic-agent",
    "fedora-minimal vm",
    "debian vm cloud-init growroot",
    "ubuntu vm dhcp-all-interfaces",
    "opensuse-minimal vm",
    "debian-minimal ramdisk",
    "centos-minimal deploy-baremetal",
    "rhel vm",
    "gentoo",
  ].map((r) => r.split(" "));

  test("recipes, as typed (element-info)", async () => {
    const theirs = await dib(recipes);
    recipes.forEach((r, i) => same(r, theirs[i]!, ours(r)));
    // ironic-agent left diskimage-builder for ironic-python-agent-builder before
    // 3.13: both must say it is missing.
    expect(ours(["ironic-agent"])).toMatchObject({ error: "MissingElementException" });
  });

  test("recipes, as disk-image-create resolves them (base first, vm → block-device-mbr)", async () => {
    const cases = recipes.map((r) => dibInputElements(r, { skipBase: false, arch: "amd64" }));
    const theirs = await dib(cases);
    cases.forEach((r, i) => same(r, theirs[i]!, ours(r)));
    expect(ours(cases[0]!)).toMatchObject({ ok: expect.arrayContaining(["debian-minimal", "vm", "block-device-mbr", "base"]) });
  });

  test("every element of the tree: alone, on debian-minimal, on centos-minimal vm", async () => {
    const cases = names.flatMap((n) => [
      [n],
      ["base", "debian-minimal", n],
      ["base", "centos-minimal", "vm", "block-device-mbr", n],
    ]);
    const theirs = await dib(cases);
    cases.forEach((r, i) => same(r, theirs[i]!, ours(r)));
    // The comparison is not vacuous: most of these resolve.
    expect(theirs.filter((o) => "ok" in o).length).toBeGreaterThan(names.length);
  });
});

describe("ooo element-info vs DIB's element-info", () => {
  const FIXTURE = join(import.meta.dir, "../../fixtures/elements-deps");
  const CLI = join(import.meta.dir, "../../cli/ooo.ts");
  /** Evaluates --env output in bash and prints it in a fixed order (DIB's own order is a set's). */
  const NORMALIZE = `eval "$1"
printf '%s\\n' $IMAGE_ELEMENT | sort; echo ---
printf '%s' "$IMAGE_ELEMENT_YAML" | sort; echo ---
eval "declare -A a=($(get_image_element_array))"
for k in "\${!a[@]}"; do echo "$k=\${a[$k]}"; done | sort`;

  async function output(cmd: string[], elementsPath: string): Promise<string> {
    const proc = Bun.spawn(cmd, { env: { ...process.env, ELEMENTS_PATH: elementsPath }, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new Error(`${cmd.join(" ")} failed:\n${err}`);
    return out;
  }
  async function normalized(envOutput: string) {
    return output(["bash", "-c", NORMALIZE, "bash", envOutput], "");
  }

  const cases: [string, string[]][] = [
    ["DIB's test_output_sanity fixture", ["foo", "requires-foo"]],
    ["DIB's tree", ["debian-minimal", "vm", "block-device-mbr"]],
  ];
  for (const [name, elements] of cases) {
    test(`--env, ${name}: ${elements.join(" ")}`, async () => {
      const path = name.includes("fixture") ? `${FIXTURE}/element-override:${FIXTURE}/elements` : DIB_ELEMENTS;
      const theirs = await output([PYTHON, "-c", "import sys; from diskimage_builder.element_dependencies import main; sys.exit(main())", "--env", ...elements], path);
      const mine = await output([process.execPath, CLI, "element-info", "--env", ...elements], path);
      expect(await normalized(mine)).toBe(await normalized(theirs));
      expect((await normalized(mine)).split("---")[2]!.trim().split("\n").length).toBeGreaterThan(1);
    });
    test(`plain, ${name}: ${elements.join(" ")}`, async () => {
      const path = name.includes("fixture") ? `${FIXTURE}/element-override:${FIXTURE}/elements` : DIB_ELEMENTS;
      const theirs = await output([PYTHON, "-c", "import sys; from diskimage_builder.element_dependencies import main; sys.exit(main())", ...elements], path);
      const mine = await output([process.execPath, CLI, "element-info", "--expand-dependencies", ...elements], path);
      expect(mine.trim().split(" ").sort()).toEqual(theirs.trim().split(" ").sort());
    });
  }
});

