import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cacheRelevantEnvironment, sourcedEnvironment, targetEnvironment } from "./environment.ts";

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

describe("hook environment helpers", () => {
  test("inside the chroot PATH and HOME are DIB's, TMPDIR and VIRTUAL_ENV unset; the rest passes through", () => {
    const env = targetEnvironment({ PATH: "/host/bin", HOME: "/home/me", DIB_X: "1", TMPDIR: "/var/tmp", VIRTUAL_ENV: "/venv" });
    expect(env).toEqual({ PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/root", DIB_X: "1" });
  });

  test("cache keys see DIB_* settings and ARCH, not paths of this build", () => {
    const key = cacheRelevantEnvironment({ DIB_RELEASE: "bookworm", ARCH: "amd64", TMP_MOUNT_PATH: "/x", DIB_IMAGE_CACHE: "/c", HOME: "/root" });
    expect(key).toBe("ARCH=amd64\nDIB_RELEASE=bookworm");
  });
});
