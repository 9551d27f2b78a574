import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { log } from "../../lib/log.ts";
import { Lock } from "../refresh/lock.ts";
import { isMountPoint, mountFs, remount } from "../mounts.ts";
import { BOOT_FILES, DISK, mountType, parseEnv, renderEnv, type BootEnv, type Slot } from "../../wire/boot.ts";
import { SlotRecord } from "./records.ts";

/**
 * The boot partition (wire/boot.ts: grub.cfg, the environment block, ooo's
 * slot records). Mounted read-only once and left so: every configuration run
 * reads it (mark-good, takeover) and should not pay a mount and an unmount
 * each time. It is remounted read-write (sync) only while we change it
 * (by syscall: agents/mounts.ts). Every change is a new file, fsynced,
 * renamed over the old one, and the folder fsynced: a power cut leaves the
 * old content or the new, never half of each.
 */
const MOUNT = "/run/ooo/boot";
const LOCK = "/run/ooo/boot.lock";

export class BootPartition {
  /** Remounted read-write by this handle (to be made read-only again on close). */
  private writable = false;

  private constructor(
    readonly device: string,
    readonly dir: string,
    private readonly lock: Lock,
  ) {}

  /** Mount the boot partition read-only (or reuse the mount), holding the boot lock. */
  static async open(device: string): Promise<BootPartition> {
    mkdirSync(MOUNT, { recursive: true });
    let lock: Lock | undefined;
    for (let i = 0; !lock; i++) {
      try {
        lock = Lock.acquire(LOCK);
      } catch (e) {
        if (i > 600) throw e;
        await Bun.sleep(100);
      }
    }
    try {
      if (!isMountPoint(MOUNT)) mountFs(device, MOUNT, mountType(DISK.boot), { readOnly: true });
    } catch (e) {
      lock.release();
      throw e;
    }
    return new BootPartition(device, MOUNT, lock);
  }

  async close() {
    try {
      // The changes are durable already (sync mount, fsync, rename): staying read-write is untidy, not unsafe.
      if (this.writable) {
        try {
          remount(MOUNT, { readOnly: true });
        } catch (e) {
          log.warn(`${(e as Error).message}; the boot partition stays mounted read-write (sync) until the next change or reboot`);
        }
      }
    } finally {
      this.lock.release();
    }
  }

  private makeWritable() {
    if (this.writable) return;
    remount(MOUNT, { sync: true });
    this.writable = true;
  }

  private replace(path: string, content: string | Buffer) {
    this.makeWritable();
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.new`;
    const fd = openSync(tmp, "w", 0o644);
    try {
      const data = typeof content === "string" ? Buffer.from(content) : content;
      for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    const dirFd = openSync(dirname(path), "r");
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }

  get envPath() {
    return join(this.dir, BOOT_FILES.env);
  }

  readEnv(): BootEnv {
    return parseEnv(readFileSync(this.envPath, "latin1"));
  }

  writeEnv(env: BootEnv) {
    this.replace(this.envPath, Buffer.from(renderEnv(env), "latin1"));
  }

  readRecord(slot: Slot): SlotRecord | undefined {
    const path = join(this.dir, BOOT_FILES.slotRecord(slot));
    if (!existsSync(path)) return undefined;
    const parsed = SlotRecord.safeParse(JSON.parse(readFileSync(path, "utf8")));
    return parsed.success ? parsed.data : undefined;
  }

  writeRecord(slot: Slot, record: SlotRecord) {
    this.replace(join(this.dir, BOOT_FILES.slotRecord(slot)), JSON.stringify(SlotRecord.parse(record), null, 2) + "\n");
  }
}

/** Run `use` with the boot partition open (its lock held), and close it after, whatever happens. */
export async function withBootPartition<T>(device: string, use: (boot: BootPartition) => T | Promise<T>): Promise<T> {
  const boot = await BootPartition.open(device);
  try {
    return await use(boot);
  } finally {
    await boot.close();
  }
}
