import { expect, test } from "bun:test";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { REPO } from "./store.ts";

/**
 * Bad inputs as data (issue 24; Ignition's negative tests are the model):
 * each row is what a user typed and the files it names, and what must come
 * of it — the exit code of its class (lib/errors.ts EXIT), a fragment of the
 * message that names the culprit, and nothing left behind: no new file
 * beside the outputs the row allows, no input file changed, no process and
 * no mount that names the row's folder, and never "internal error".
 *
 * Every row runs the real command line in a fresh folder (its cwd), so
 * relative paths in `argv` are the row's own files.
 */
export type FileSpec =
  | string
  | { dir: true }
  /** A folder on a read-only filesystem (a tmpfs mounted read-only). */
  | { readOnlyDir: true }
  | { symlink: string }
  | { text: string; mode: number };

export interface BadInput {
  /** What the user did, in their words. */
  name: string;
  /** The command line after the program (`ooo`, or the agent's name); a function for what is known only when the row runs. */
  argv: string[] | (() => string[]);
  /** Files and folders made in the row's folder first. */
  files?: Record<string, FileSpec>;
  /** Added to the environment; undefined removes a variable. */
  env?: Record<string, string | undefined>;
  /** The exit code (EXIT.*.code). */
  exit: number;
  /** A fragment of stderr that names what is wrong. */
  says: string | RegExp;
  /** Paths (relative to the row's folder) that may be new or changed afterwards: the outputs. */
  leaves?: (string | RegExp)[];
  /** Runs before the command, with the row's folder (to start something the row needs). */
  before?: (dir: string) => Promise<void> | void;
}

export interface TableOptions {
  /** The program: default `bun cli/ooo.ts`. */
  program?: string[];
  /** The environment every row gets (after process.env, before the row's). */
  env?: () => Record<string, string>;
}

const NEVER = /internal error|this is a bug|\n\s+at \S+ \(/;

function make(dir: string, files: Record<string, FileSpec>): string[] {
  const mounts: string[] = [];
  for (const [rel, spec] of Object.entries(files)) {
    const path = join(dir, rel);
    mkdirSync(dirname(path), { recursive: true });
    if (typeof spec === "string") writeFileSync(path, spec);
    else if ("dir" in spec) mkdirSync(path, { recursive: true });
    else if ("symlink" in spec) symlinkSync(spec.symlink, path);
    else if ("readOnlyDir" in spec) {
      mkdirSync(path, { recursive: true });
      const r = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", path]);
      if (r.exitCode !== 0) throw new Error(`this test needs root to mount a read-only tmpfs: ${r.stderr}`);
      mounts.push(path);
    } else {
      writeFileSync(path, spec.text);
      chmodSync(path, spec.mode);
    }
  }
  return mounts;
}

/** Every path under dir with what it is (content for files), skipping read-only mounts' insides. */
function snapshot(dir: string, skip: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const path = join(dir, rel);
    for (const name of readdirSync(path)) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(dir, r);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.set(r, `-> ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(r, "dir");
        if (!skip.includes(p)) walk(r);
      } else out.set(r, st.size < 1 << 20 ? readFileSync(p, "utf8") : `${st.size} bytes`);
    }
  };
  walk("");
  return out;
}

/** Processes whose command line names `dir`: what a row's command may have left running. */
function processesNaming(dir: string): { pid: number; cmdline: string }[] {
  const found: { pid: number; cmdline: string }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmdline.includes(dir)) found.push({ pid: Number(entry), cmdline });
    } catch {}
  }
  return found;
}

const mountsUnder = (dir: string) =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((m): m is string => m !== undefined && m.startsWith(dir));

const allowed = (path: string, leaves: (string | RegExp)[]) =>
  leaves.some((l) => (typeof l === "string" ? path === l || path.startsWith(`${l}/`) : l.test(path)));

export async function runBadInput(row: BadInput, options: TableOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), "ooo-bad-"));
  const fixtureMounts = make(dir, row.files ?? {});
  try {
    await row.before?.(dir);
    const before = snapshot(dir, fixtureMounts);
    const argv = typeof row.argv === "function" ? row.argv() : row.argv;
    const env = Object.fromEntries(
      Object.entries({ ...process.env, NO_COLOR: "1", COLUMNS: "100", ...(options.env?.() ?? {}), ...(row.env ?? {}) }).filter((e): e is [string, string] => e[1] !== undefined),
    );
    const proc = Bun.spawn([...(options.program ?? ["bun", join(REPO, "cli/ooo.ts")]), ...argv], {
      cwd: dir,
      env,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    const left = processesNaming(dir);
    for (const p of left) process.kill(p.pid, "SIGKILL");
    const after = snapshot(dir, fixtureMounts);
    const leaves = row.leaves ?? [];
    const changed = [...after].filter(([p, what]) => before.get(p) !== what && !allowed(p, leaves)).map(([p]) => p);
    const gone = [...before.keys()].filter((p) => !after.has(p) && !allowed(p, leaves));
    const result = {
      exit: code,
      says: typeof row.says === "string" ? stderr.includes(row.says) : row.says.test(stderr),
      internalError: NEVER.test(stderr) || NEVER.test(stdout),
      newOrChanged: changed,
      removed: gone,
      processes: left.map((p) => p.cmdline),
      mounts: mountsUnder(dir).filter((m) => !fixtureMounts.includes(m)),
    };
    const expected = { exit: row.exit, says: true, internalError: false, newOrChanged: [], removed: [], processes: [], mounts: [] };
    if (JSON.stringify(result) !== JSON.stringify(expected)) process.stderr.write(`\n--- ooo ${argv.join(" ")}\n${stderr}${stdout ? `(stdout)\n${stdout}` : ""}\n`);
    expect(result).toEqual(expected);
  } finally {
    for (const m of fixtureMounts.reverse()) Bun.spawnSync(["umount", "-l", m]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One test per row, a few at a time (each is a process start and a little I/O). */
export function badInputTable(rows: BadInput[], options: TableOptions = {}) {
  const names = rows.map((r) => r.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new Error(`two rows are called "${dup}"`);
  for (const row of rows) test.concurrent(row.name, () => runBadInput(row, options), 60_000);
}
