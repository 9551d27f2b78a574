import { describe, expect, test } from "bun:test";
import { cpSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { requireCommand } from "../../test/support/require.ts";

/**
 * os-apply-config side by side: Debian's python3-os-apply-config and ours
 * render every case under fixtures/oac into fresh output roots, and the two
 * trees must be identical — paths, file types, permission bits, owners,
 * symlink targets and every byte. Error cases must fail with the same exit
 * code and leave the tree as it was.
 *
 * A case is a folder: templates/, metadata/*.json (passed with -m in name
 * order), optional existing/ (copied into the output root first), args (one
 * extra argument per line) and exit (the expected exit code). The templates
 * our elements ship are cases too, rendered with fixtures/oac/ooo-node's
 * metadata.
 */
const PYTHON_OAC = "/usr/bin/os-apply-config";
const FIXTURES = resolve(import.meta.dir, "../../fixtures/oac");
const MAIN = resolve(import.meta.dir, "../main.ts");

const ELEMENTS = resolve(import.meta.dir, "../../elements");

/** The corpus, plus every element's os-apply-config/ templates rendered with the ooo-node metadata. */
const cases = [
  ...readdirSync(FIXTURES).sort(),
  ...readdirSync(ELEMENTS)
    .filter((e) => existsSync(join(ELEMENTS, e, "os-apply-config")))
    .sort()
    .map((e) => `element:${e}`),
];

function caseDirs(name: string) {
  if (!name.startsWith("element:")) return { dir: join(FIXTURES, name), templates: join(FIXTURES, name, "templates"), metadata: join(FIXTURES, name, "metadata") };
  const element = name.slice("element:".length);
  return { dir: join(ELEMENTS, element), templates: join(ELEMENTS, element, "os-apply-config"), metadata: join(FIXTURES, "ooo-node/metadata") };
}

/**
 * An element's templates may name an owner that only exists inside the
 * image (redis): both tools would refuse it on the build host. A copy with
 * such owners set to root compares everything else; the corpus's own cases
 * cover owner handling.
 */
function hostOwnedTemplates(templates: string, work: string): string {
  const copy = join(work, "templates");
  cpSync(templates, copy, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  const known = (file: string, name: string) => readFileSync(file, "utf8").split("\n").some((l) => l.split(":")[0] === name);
  const rewrite = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) rewrite(path);
      else if (e.name.endsWith(".oac")) {
        const text = readFileSync(path, "utf8").replace(/^(owner|group):\s*(\S+)\s*$/gm, (line, key: string, who: string) =>
          /^\d+$/.test(who) || known(key === "owner" ? "/etc/passwd" : "/etc/group", who) ? line : `${key}: root`,
        );
        writeFileSync(path, text);
      }
    }
  };
  rewrite(copy);
  return copy;
}

function env() {
  const e: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("OS_CONFIG")) e[k] = v;
  return e;
}

/** path → description of everything that makes two trees differ. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const r = `${rel}/${name}`;
      const st = lstatSync(path);
      const meta = `mode=${(st.mode & 0o7777).toString(8)} uid=${st.uid} gid=${st.gid}`;
      if (st.isSymbolicLink()) out.set(r, `symlink -> ${readlinkSync(path)}`);
      else if (st.isDirectory()) {
        out.set(r, `dir ${meta}`);
        walk(path, r);
      } else out.set(r, `file ${meta} ${readFileSync(path).toString("base64")}`);
    }
  };
  walk(root, "");
  return out;
}

function run(cmd: string[], cwd: string) {
  const r = Bun.spawnSync(cmd, { cwd, env: env(), stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function oacArgs(name: string, out: string, templates: string): string[] {
  const c = caseDirs(name);
  const metadata = readdirSync(c.metadata)
    .sort()
    .map((f) => join(c.metadata, f));
  const extra = existsSync(join(c.dir, "args")) ? readFileSync(join(c.dir, "args"), "utf8").split("\n").filter(Boolean) : [];
  return ["-t", templates, "-o", out, "--fallback-metadata", ...extra, "-m", ...metadata];
}

describe("os-apply-config side by side with python3-os-apply-config", () => {
  test("the corpus has at least 30 templates", () => {
    let n = 0;
    const count = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) count(join(dir, e.name));
        else if (!e.name.endsWith(".oac")) n++;
      }
    };
    for (const c of cases) count(caseDirs(c).templates);
    expect(n).toBeGreaterThanOrEqual(30);
  });

  test.each(cases)("%s", (name) => {
    requireCommand(PYTHON_OAC);
    const caseDir = caseDirs(name).dir;
    const work = mkdtempSync(join(tmpdir(), `oac-${name.replace(":", "-")}-`));
    try {
      const outPy = join(work, "python");
      const outOoo = join(work, "ooo");
      for (const out of [outPy, outOoo]) {
        if (existsSync(join(caseDir, "existing"))) cpSync(join(caseDir, "existing"), out, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      }
      const before = existsSync(outOoo) ? snapshot(outOoo) : new Map();
      const templates = name.startsWith("element:") ? hostOwnedTemplates(caseDirs(name).templates, work) : caseDirs(name).templates;
      const py = run([PYTHON_OAC, ...oacArgs(name, outPy, templates)], caseDir);
      const ours = run(["bun", MAIN, "os-apply-config", ...oacArgs(name, outOoo, templates)], caseDir);
      const expectedExit = existsSync(join(caseDir, "exit")) ? Number(readFileSync(join(caseDir, "exit"), "utf8")) : 0;
      expect({ python: py.code, ooo: ours.code }).toEqual({ python: expectedExit, ooo: expectedExit });
      if (expectedExit !== 0) {
        expect(existsSync(outOoo) ? snapshot(outOoo) : new Map()).toEqual(before);
        return;
      }
      expect(Object.fromEntries(snapshot(outOoo))).toEqual(Object.fromEntries(snapshot(outPy)));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  const keyCases: [string, string[]][] = [
    ["string", ["--key", "hostname", "--type", "netaddress"]],
    ["int", ["--key", "int", "--type", "int"]],
    ["negative int is not int", ["--key", "negative", "--type", "int"]],
    ["float as raw", ["--key", "pi", "--type", "raw"]],
    ["bool prints as JSON", ["--key", "t", "--type", "raw"]],
    ["bool passes default (str() is True)", ["--key", "t"]],
    ["dict needs raw", ["--key", "dict", "--type", "raw"]],
    ["dict fails default", ["--key", "dict"]],
    ["list index", ["--key", "list.1"]],
    ["negative list index", ["--key", "list.-2", "--type", "raw"]],
    ["null is missing", ["--key", "nothing"]],
    ["missing with default", ["--key", "nope.deeper", "--key-default", "fallback value"]],
    ["missing without default", ["--key", "nope"]],
    ["unicode needs raw", ["--key", "unicode", "--type", "raw"]],
    ["boolean true", ["--boolean-key", "t"]],
    ["boolean false", ["--boolean-key", "f"]],
    ["boolean of a string", ["--boolean-key", "hostname"]],
  ];
  test.each(keyCases)("--key: %s", (_, args) => {
    requireCommand(PYTHON_OAC);
    const metadata = join(FIXTURES, "basics/metadata/00-main.json");
    const py = run([PYTHON_OAC, "--fallback-metadata", ...args, "-m", metadata], FIXTURES);
    const ours = run(["bun", MAIN, "os-apply-config", "--fallback-metadata", ...args, "-m", metadata], FIXTURES);
    expect({ code: ours.code, stdout: ours.stdout }).toEqual({ code: py.code, stdout: py.stdout });
  });
});
