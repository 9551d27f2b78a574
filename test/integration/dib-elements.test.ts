import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { PHASES } from "../../builder/elements/phases.ts";
import { asHooksSeeThem } from "../support/hook-paths.ts";
import { requireCommand, requireRoot } from "../support/require.ts";

/**
 * DIB's own debian-minimal, from Debian's python3-diskimage-builder tree,
 * unchanged, built through ooo with that tree first on the elements path —
 * and the environment each phase's hooks get, next to what DIB's own
 * disk-image-create gives the same hooks (the env-probe fixture element
 * records every phase's whole environment in both builds).
 *
 * The differences allowed are the ones builder/environment.ts documents;
 * everything else must be equal, name for name and value for value once
 * each build's own paths are written as placeholders.
 *
 * Slow (two Debian builds from the network, four to six minutes each, run
 * side by side): both use the default image cache, so DIB's debootstrap
 * tarball and ooo's base root are built once per machine. bookworm from deb.debian.org only: DIB 3.13's
 * debian-minimal points security at a path Debian no longer serves.
 */
const REPO = resolve(import.meta.dir, "../..");
const CLI = join(REPO, "cli/ooo.ts");
const DIB_TREE = "/usr/lib/python3/dist-packages/diskimage_builder/elements";
const ELEMENTS = ["debian-minimal", "env-probe"];
const SETTINGS = { DIB_RELEASE: "bookworm", DIB_APT_SOURCES_CONF: "default:deb http://deb.debian.org/debian bookworm main" };
/** In both builds' environment: DIB hands them to every hook, ooo to none. */
const SECRETS = { OOO_STORE_TOKEN: "store-token-value", OOO_SWIFT_KEY: "swift-key-value", CI_DEPLOY_TOKEN: "deploy-token-value" };

/** Differences builder/environment.ts documents (DIB_EXPORTS): in names … */
const ONLY_DIB_INSIDE = ["SUDO_COMMAND"]; // sudo's record of DIB's chroot command
const ONLY_OOO = ["SOURCE_DATE_EPOCH"]; // ooo's one addition
/** … and in values, checked one by one below. */
const OWN_VALUES = new Set(["DIB_ARGS", "DIB_ENV", "ELEMENTS_PATH", "IMAGE_ELEMENT", "IMAGE_ELEMENT_YAML", "BASH_FUNC_get_image_element_array%%", "DIB_IMAGE_SIZE", "DIB_ROOT_LABEL", "IMAGE_BLOCK_DEVICE", "IMAGE_BLOCK_DEVICES", "PATH"]);
/** Kept by the shells themselves, not by either builder. */
const SHELLS = new Set(["_", "SHLVL"]);

let scratch: string;
interface Built {
  out: string;
  probe: string;
  seconds: number;
  /** Every phase's environment, by phase. */
  env: Map<string, Record<string, string>>;
}
let dib: Built;
let ooo: Built;

function readEnviron(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of readFileSync(file, "utf8").split("\0").filter(Boolean)) {
    const eq = entry.indexOf("=");
    env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

async function run(cmd: string[], env: Record<string, string>, log: string): Promise<number> {
  const t0 = performance.now();
  const child = spawn(cmd[0]!, cmd.slice(1), { cwd: scratch, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const code = await new Promise<number | null>((r) => child.on("close", r));
  writeFileSync(log, output);
  if (code !== 0) throw new Error(`${cmd.slice(0, 3).join(" ")} … failed (exit ${code}); its last output:\n${output.split("\n").slice(-30).join("\n")}`);
  return (performance.now() - t0) / 1000;
}

/** One build: DIB's disk-image-create or ooo's build-image, same elements, same caller environment. */
async function buildWith(who: "dib" | "ooo", elementsDir: string): Promise<Built> {
  const out = join(scratch, who, "image");
  const probe = join(scratch, `${who}-probe`);
  mkdirSync(probe, { recursive: true });
  const env = { ...(process.env as Record<string, string>), ...SETTINGS, ...SECRETS, ENV_PROBE_DIR: probe, NO_COLOR: "1" };
  const args = ["-t", "tar", "-o", out, ...ELEMENTS];
  const seconds =
    who === "dib"
      ? await run(["disk-image-create", ...args], { ...env, ELEMENTS_PATH: elementsDir }, join(scratch, "dib.log"))
      : await run([process.execPath, CLI, "build-image", "--elements-path", `${DIB_TREE}:${elementsDir}`, ...args], env, join(scratch, "ooo.log"));
  const inside = join(scratch, `${who}-inside`);
  mkdirSync(inside);
  execFileSync("tar", ["-C", inside, "-xf", `${out}.tar`, "./var/lib/env-probe"]);
  const phases = new Map<string, Record<string, string>>();
  for (const p of PHASES) {
    const file = join(p.where === "target" ? join(inside, "var/lib/env-probe") : probe, `${p.name}.environ`);
    if (existsSync(file)) phases.set(p.name, readEnviron(file));
  }
  return { out, probe, seconds, env: phases };
}

/** A value with the build's own paths as placeholders, so that the two builds' values compare. */
function placeholders(value: string, e: Record<string, string>, out: string): string {
  return value
    .replaceAll(e.TMP_MOUNT_PATH!, "{root}")
    .replaceAll(e.TMP_HOOKS_PATH!, "{hooks}")
    .replaceAll(e.TMP_IMAGE_DIR!, "{image}")
    .replaceAll(e.TMP_BUILD_DIR!, "{build}")
    .replaceAll(out, "{out}")
    .replaceAll(`${scratch}/dib-probe`, "{probe}")
    .replaceAll(`${scratch}/ooo-probe`, "{probe}");
}

beforeAll(async () => {
  requireRoot();
  requireCommand("/usr/bin/disk-image-create", "debootstrap", "tar", "unshare", "chroot", "sudo");
  if (!existsSync(join(DIB_TREE, "debian-minimal")))
    throw new Error(`this test needs Debian's python3-diskimage-builder (${DIB_TREE}); install it with: sh tools/ensure.sh`);
  const mirror = await fetch("http://deb.debian.org/debian/dists/bookworm/InRelease", { method: "HEAD" }).catch((e: Error) => e);
  if (mirror instanceof Error || !mirror.ok) throw new Error(`this test needs Debian's mirror (deb.debian.org): ${mirror instanceof Error ? mirror.message : mirror.status}`);
  scratch = mkdtempSync("/var/tmp/ooo-dib-env-");
  // env-probe with a fresh file in it: ooo's layers after root.d are not
  // reused, so every probe hook runs again (the base root stays cached).
  const elements = join(scratch, "elements");
  cpSync(join(REPO, "fixtures/elements/env-probe"), join(elements, "env-probe"), { recursive: true });
  writeFileSync(join(elements, "env-probe", "nonce"), `${process.pid}-${Date.now()}\n`);
  // Side by side: each waits mostly on dpkg, and they share no work folder (DIB's cache
  // files and ooo's layers live apart in the image cache; DIB's locks guard the rest).
  [dib, ooo] = await Promise.all([buildWith("dib", elements), buildWith("ooo", elements)]);
  process.stderr.write(`side by side: DIB's disk-image-create ${dib.seconds.toFixed(0)} s, ooo build-image ${ooo.seconds.toFixed(0)} s (debian-minimal env-probe, -t tar)\n`);
}, 30 * 60_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("DIB's own debian-minimal, unchanged, through ooo", () => {
  test("builds, with DIB's elements, every phase's hooks run", () => {
    expect([...ooo.env.keys()]).toEqual(PHASES.map((p) => p.name));
    expect([...dib.env.keys()]).toEqual(PHASES.map((p) => p.name));
    const os = readFileSync(join(scratch, "ooo-inside/var/lib/env-probe/install.d.env"), "utf8");
    expect(os).toContain("element=debootstrap"); // DIB's debian-minimal pulled in DIB's debootstrap
    expect(execFileSync("tar", ["-xOf", `${ooo.out}.tar`, "./etc/debian_version"]).toString()).toMatch(/^12\./);
  });

  for (const { name: phase, where } of PHASES) {
    test(`${phase}: the same variables as under disk-image-create`, () => {
      const theirs = Object.keys(dib.env.get(phase)!).filter((k) => !SHELLS.has(k) && !(k in SECRETS));
      const mine = Object.keys(ooo.env.get(phase)!).filter((k) => !SHELLS.has(k));
      const expected = [...theirs.filter((k) => !(where === "target" && ONLY_DIB_INSIDE.includes(k))), ...ONLY_OOO].sort();
      expect({ phase, names: mine.sort() }).toEqual({ phase, names: expected });
    });

    test(`${phase}: the same values, but for ooo's own paths and the differences it documents`, () => {
      const d = dib.env.get(phase)!;
      const o = ooo.env.get(phase)!;
      const mismatched = Object.keys(o)
        .filter((k) => k in d && !SHELLS.has(k) && !OWN_VALUES.has(k))
        .filter((k) => placeholders(d[k]!, d, dib.out) !== placeholders(o[k]!, o, ooo.out))
        .map((k) => `${k}: DIB ${JSON.stringify(placeholders(d[k]!, d, dib.out))}, ooo ${JSON.stringify(placeholders(o[k]!, o, ooo.out))}`);
      expect({ phase, mismatched }).toEqual({ phase, mismatched: [] });

      const words = (s?: string) => (s ?? "").split(/\s+/).filter(Boolean).sort();
      expect(words(o.IMAGE_ELEMENT)).toEqual(words(d.IMAGE_ELEMENT));
      expect(o.IMAGE_ELEMENT_YAML!.split("\n").sort()).toEqual(placeholders(d.IMAGE_ELEMENT_YAML!, d, dib.out).split("\n").sort());
      expect(placeholders(o.DIB_ARGS!, o, ooo.out)).toBe(`--elements-path ${DIB_TREE}:${scratch}/elements ${placeholders(d.DIB_ARGS!, d, dib.out)}`);
      const envLines = (e: Record<string, string>, out: string) => placeholders(e.DIB_ENV!, e, out).split("\n").filter((l) => !l.startsWith("declare -x DIB_ARGS="));
      expect(envLines(o, ooo.out)).toEqual(envLines(d, dib.out));
      // ooo's own elements come last: DIB's tree and the fixture still win, as they do under DIB.
      expect(o.ELEMENTS_PATH!.split(":")).toEqual(asHooksSeeThem([DIB_TREE, `${scratch}/elements`, join(REPO, "elements")]));
      expect(o.DIB_ROOT_LABEL).toBe("ooo-root");
      if (where === "host") {
        expect(o.PATH).toBe(d.PATH!);
        expect(words(o["BASH_FUNC_get_image_element_array%%"]?.replace(/^\(\) \{\s+echo "|"\s*\}$/g, ""))).toEqual(
          words(d["BASH_FUNC_get_image_element_array%%"]?.replace(/^\(\) \{\s+echo "|"\s*\}$/g, "")),
        );
      } else expect(d.PATH).toBe(`$PATH:${o.PATH}`); // DIB's quoting slip, left out
      if ("DIB_IMAGE_SIZE" in d) {
        // Computed DIB's way from each build's own root: close, a multiple of 64 KiB.
        expect(Number(o.DIB_IMAGE_SIZE) % 64).toBe(0);
        expect(Math.abs(Number(o.DIB_IMAGE_SIZE) / Number(d.DIB_IMAGE_SIZE) - 1)).toBeLessThan(0.1);
      }
      if ("IMAGE_BLOCK_DEVICE" in d) expect([o.IMAGE_BLOCK_DEVICE, o.IMAGE_BLOCK_DEVICES]).toEqual(["", ""]); // no loop device in ooo
    });
  }

  test("secrets: DIB hands the caller's tokens and keys to every hook, ooo to none", () => {
    for (const { name: phase } of PHASES) {
      expect({ phase, dib: Object.keys(SECRETS).filter((k) => k in dib.env.get(phase)!) }).toEqual({ phase, dib: Object.keys(SECRETS) });
      expect({ phase, ooo: Object.keys(SECRETS).filter((k) => k in ooo.env.get(phase)!) }).toEqual({ phase, ooo: [] });
    }
  });
});
