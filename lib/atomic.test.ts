import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withCrashableFs } from "../test/support/scratch-fs.ts";
import { publishAtomically, stageFile } from "./atomic.ts";

/**
 * lib/atomic.ts's promises, each checked for real: a reader never sees half a
 * file, a failed or killed writer leaves nothing, and what was published
 * survives a power cut right after the call returned (ext4 on a loop device,
 * cut with the kernel's shutdown ioctl — without the folder's fsync the new
 * name is lost).
 */
const write = (text: string) => async (path: string) => writeFileSync(path, text);

describe("publishAtomically", () => {
  test("a published file survives a power cut, new or replacing an older one", async () => {
    await withCrashableFs(async (fs) => {
      await publishAtomically(join(fs.dir, "new.json"), write("first\n"));
      await fs.crash();
      expect(readFileSync(join(fs.dir, "new.json"), "utf8")).toBe("first\n");
      // A record changed (a deactivation) must not come back as it was.
      await publishAtomically(join(fs.dir, "new.json"), write("second\n"));
      await fs.crash();
      expect(readFileSync(join(fs.dir, "new.json"), "utf8")).toBe("second\n");
      expect(readdirSync(fs.dir).sort()).toEqual(["lost+found", "new.json"]);
    });
  }, 60_000);

  test("a writer that fails leaves the old file and no other name", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ooo-atomic-"));
    try {
      await publishAtomically(join(dir, "f"), write("old"));
      const failing = publishAtomically(join(dir, "f"), async (p) => {
        writeFileSync(p, "half");
        throw new Error("disk on fire");
      });
      await expect(failing).rejects.toThrow("disk on fire");
      expect(readFileSync(join(dir, "f"), "utf8")).toBe("old");
      expect(readdirSync(dir)).toEqual(["f"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a writer killed mid-write (SIGKILL) leaves the old file and no other name", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ooo-atomic-"));
    try {
      writeFileSync(join(dir, "f"), "old");
      const script = `
        import { publishAtomically } from ${JSON.stringify(join(import.meta.dir, "atomic.ts"))};
        import { writeFileSync } from "node:fs";
        await publishAtomically(${JSON.stringify(join(dir, "f"))}, async (p) => {
          writeFileSync(p, "half written");
          process.kill(process.pid, "SIGKILL");
          await new Promise(() => {});
        });`;
      const child = Bun.spawn(["bun", "-e", script], { stdout: "ignore", stderr: "ignore" });
      await child.exited;
      expect(child.signalCode).toBe("SIGKILL");
      expect(readFileSync(join(dir, "f"), "utf8")).toBe("old");
      expect(readdirSync(dir)).toEqual(["f"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("stageFile", () => {
  test("published durable, the name survives a power cut; discarded, nothing is left", async () => {
    await withCrashableFs(async (fs) => {
      const kept = stageFile(fs.dir);
      writeFileSync(kept.path, "blob");
      kept.publish(join(fs.dir, "blob"));
      const dropped = stageFile(fs.dir);
      writeFileSync(dropped.path, "never named");
      dropped.discard();
      await fs.crash();
      expect(readFileSync(join(fs.dir, "blob"), "utf8")).toBe("blob");
      expect(readdirSync(fs.dir).sort()).toEqual(["blob", "lost+found"]);
    });
  }, 60_000);
});
