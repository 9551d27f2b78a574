import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Element } from "./elements/element.ts";
import { PHASES } from "./elements/phases.ts";
import { cacheRelevantEnvironment, callerEnvironment, dibImageSizeKiB, type EnvContext, hookEnvironment, prepareEnvironment, sourcedEnvironment } from "./environment.ts";
import { BuildOptions } from "./options.ts";

describe("sourcedEnvironment: what DIB's squash sees", () => {
  test("environment.d files are sourced in the order given, on top of the hook environment", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ooo-envd-"));
    try {
      writeFileSync(join(dir, "10-a"), "export DIB_RELEASE=${DIB_RELEASE:-bookworm}\nexport A=1\nB=unexported\n");
      writeFileSync(join(dir, "20-b"), "export A=$((A + 1))\nexport FROM_B=\"$DIB_RELEASE-$A\"\n");
      const env = await sourcedEnvironment({ PATH: process.env.PATH!, KEEP: "yes" }, [join(dir, "10-a"), join(dir, "20-b")]);
      expect(env).toMatchObject({ KEEP: "yes", DIB_RELEASE: "bookworm", A: "2", FROM_B: "bookworm-2" });
      expect(env.B).toBeUndefined();
      const preset = await sourcedEnvironment({ PATH: process.env.PATH!, DIB_RELEASE: "trixie" }, [join(dir, "10-a")]);
      expect(preset.DIB_RELEASE).toBe("trixie");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a failing environment file is an error that says so", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ooo-envd-"));
    try {
      writeFileSync(join(dir, "10-bad"), "echo $UNSET_VARIABLE\n");
      await expect(sourcedEnvironment({ PATH: process.env.PATH! }, [join(dir, "10-bad")])).rejects.toThrow("environment.d");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function context(over: Partial<EnvContext> = {}, options: Record<string, unknown> = {}): EnvContext {
  return {
    options: BuildOptions.parse({ elements: ["busybox-base"], types: ["tar"], output: "out/x", imageCache: "/cache", args: ["-o", "out/x", "busybox-base"], ...options }),
    elements: [
      { name: "base", dir: "/e/base" },
      { name: "busybox-base", dir: "/e/busybox-base" },
    ] as Element[],
    elementsPath: ["/e", "/ooo/elements"],
    dirs: { build: "/w", root: "/w/root", hooks: "/w/hooks", image: "/w/image" },
    caller: { PATH: "/usr/bin:/bin", HOME: "/home/me", TMPDIR: "/var/tmp", DIB_RELEASE: "bookworm" },
    ...over,
  };
}

describe("the hooks' environment, phase by phase (DIB 3.13's table)", () => {
  test("TARGET_ROOT only for root.d and cleanup.d; TMP_MOUNT_PATH everywhere", () => {
    const c = context();
    const seen = PHASES.filter((p) => "TARGET_ROOT" in hookEnvironment(c, p.name, p.where)).map((p) => p.name);
    expect(seen).toEqual(["root.d", "cleanup.d"]);
    for (const p of PHASES) expect(hookEnvironment(c, p.name, p.where).TMP_MOUNT_PATH).toBe("/w/root");
  });

  test("inside the chroot: DIB's PATH, HOME and sudo's user, no TMPDIR and no exported functions; outside, the caller's", () => {
    const c = context();
    const inside = hookEnvironment(c, "install.d", "target");
    expect(inside).toMatchObject({ PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/root", USER: "root", SUDO_UID: "0" });
    expect(Object.keys(inside).filter((k) => k.startsWith("BASH_FUNC_") || k === "TMPDIR" || k === "PS4")).toEqual([]);
    const outside = hookEnvironment(c, "post-root.d", "host");
    expect(outside).toMatchObject({ PATH: "/usr/bin:/bin:/sbin:/usr/sbin:/usr/local/sbin", HOME: "/home/me", TMPDIR: "/var/tmp" });
    expect(outside["BASH_FUNC_get_image_element_array%%"]).toBe('() {  echo "[base]=/e/base [busybox-base]=/e/busybox-base "\n}');
    expect(outside.USER).toBeUndefined();
  });

  test("SHELL inside the chroot: the caller's, else root's login shell, as sudo -E sets it (a CI runner has none)", () => {
    expect(hookEnvironment(context(), "install.d", "target").SHELL).toMatch(/^\/.+sh$/);
    expect(hookEnvironment(context({ caller: { PATH: "/bin", SHELL: "/bin/zsh" } }), "install.d", "target").SHELL).toBe("/bin/zsh");
    expect(hookEnvironment(context(), "post-root.d", "host").SHELL).toBeUndefined();
  });

  test("DIB_IMAGE_SIZE: --image-size until post-root.d, the computed KiB from block-device.d", () => {
    const c = context({ imageSizeKiB: 1698624 }, { imageSize: 2 });
    expect(hookEnvironment(c, "post-root.d", "host").DIB_IMAGE_SIZE).toBe("2");
    expect(hookEnvironment(c, "block-device.d", "host").DIB_IMAGE_SIZE).toBe("1698624");
    expect(hookEnvironment(context(), "install.d", "target").DIB_IMAGE_SIZE).toBeUndefined();
    expect(hookEnvironment(c, "pre-finalise.d", "host")).toMatchObject({ IMAGE_BLOCK_DEVICE: "", IMAGE_BLOCK_DEVICES: "" });
    expect("IMAGE_BLOCK_DEVICE" in hookEnvironment(c, "block-device.d", "host")).toBe(false);
  });

  test("flags export what disk-image-create's do; IMAGE_TYPE stays DIB's default; DIB_ENV is the caller's DIB_* at the start", () => {
    const env = hookEnvironment(context({}, { trace: 2, uncompressed: true, skipBase: true, checksum: true, types: ["tar"], output: "out/x.tar" }), "root.d", "host");
    expect(env).toMatchObject({ DIB_DEBUG_TRACE: "2", COMPRESS_IMAGE: "", SKIP_BASE: "1", DIB_CHECKSUM: "1", IMAGE_TYPE: "qcow2", IMAGE_NAME: "out/x", LC_ALL: "C", SOURCE_DATE_EPOCH: "1704067200" });
    expect(env.IMAGE_TYPES).toBeUndefined();
    expect(env.DIB_ENV!.split("\n")).toEqual([
      'declare -x DIB_ARGS="-o out/x busybox-base"',
      `declare -x DIB_PYTHON_EXEC="${env.DIB_PYTHON_EXEC}"`,
      'declare -x DIB_RELEASE="bookworm"',
    ]);
    expect(hookEnvironment(context(), "root.d", "host").COMPRESS_IMAGE).toBeUndefined();
  });

  test("DIB's disk size: root / 0.6 + a 64 MiB journal, or --image-size, rounded up to 64 KiB", () => {
    expect(dibImageSizeKiB(1000000, {}, [])).toBe(1732224); // 1666666 + 65536 → next multiple of 64
    expect(dibImageSizeKiB(1000000, { DIB_IMAGE_SIZE: "2" }, [])).toBe(2097152);
    expect(dibImageSizeKiB(1000000, { DIB_IMAGE_EXTRA_SIZE: "1" }, ["block-device-efi"])).toBe(1000000 + 1024 + 65536 + 537600);
  });
});

describe("what hooks never see: ooo's secrets", () => {
  test("OOO_*, runtime variables and secret-looking names are withheld unless kept by name", () => {
    const { env, withheld } = callerEnvironment(
      { OOO_STORE_TOKEN: "t", OOO_SWIFT_KEY: "k", GITHUB_TOKEN: "g", AWS_SECRET_ACCESS_KEY: "a", DB_PASSWORD: "p", API_SECRET: "s", NODE_OPTIONS: "x", DIB_ADD_APT_KEYS: "/k", DIB_RELEASE: "b", KEYRING: "r" },
      ["GITHUB_TOKEN"],
    );
    expect(env).toEqual({ GITHUB_TOKEN: "g", DIB_ADD_APT_KEYS: "/k", DIB_RELEASE: "b", KEYRING: "r" });
    expect(withheld).toEqual(["API_SECRET", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "NODE_OPTIONS", "OOO_STORE_TOKEN", "OOO_SWIFT_KEY"]);
  });
});

describe("hook environment helpers", () => {
  test("cache keys see DIB_* settings and ARCH, not paths of this build", () => {
    const key = cacheRelevantEnvironment({ DIB_RELEASE: "bookworm", ARCH: "amd64", TMP_MOUNT_PATH: "/x", DIB_IMAGE_CACHE: "/c", DIB_BLOCK_DEVICE_PARAMS_YAML: "/w/p", HOME: "/root" });
    expect(key).toBe("ARCH=amd64\nDIB_RELEASE=bookworm");
  });
});

describe("prepareEnvironment: element folders whose paths hold blanks", () => {
  test("hooks see them through links, so DIB's unquoted $ELEMENTS_PATH and element arrays still split right", async () => {
    const top = mkdtempSync(join(tmpdir(), "ooo-envpath-"));
    try {
      const spaced = join(top, "my elements");
      mkdirSync(join(spaced, "demo"), { recursive: true });
      const dirs = { build: join(top, "build"), root: join(top, "build/root"), hooks: join(top, "build/hooks"), image: join(top, "build/image") };
      const options = BuildOptions.parse({ elements: ["demo"], types: ["tar"], output: join(top, "x"), imageCache: top, args: [] });
      const demo: Element = { name: "demo", dir: join(spaced, "demo"), deps: new Set(), provides: new Set() };
      const c = await prepareEnvironment(options, [demo], [spaced, "/plain/path"], dirs);
      const env = hookEnvironment(c, "install.d", "host");
      const [first, second] = env.ELEMENTS_PATH!.split(":");
      expect(first).not.toContain(" ");
      expect(realpathSync(first!)).toBe(realpathSync(spaced));
      expect(second).toBe("/plain/path");
      expect(realpathSync(join(first!, "demo"))).toBe(realpathSync(demo.dir));
      expect(env.IMAGE_ELEMENT_YAML).not.toContain("my elements");
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });
});
