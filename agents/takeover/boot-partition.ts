import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { log } from "../../lib/log.ts";
import { Lock } from "../refresh/lock.ts";
import { isMountPoint, mountFs, remount } from "../mounts.ts";
import { BOOT_FILES, DISK, ENV_BLOCK_SIZE, mountType, parseEnv, renderEnv, SLOT_RECORD_BYTES, type BootEnv, type Slot } from "../../wire/boot.ts";
import { decodeRecord, encodeRecord, RecordTooLarge } from "./record-file.ts";
import { SlotRecord } from "./records.ts";

/**
 * The boot partition (wire/boot.ts: the EFI system partition, FAT32, with
 * grub.cfg, the environment block, ooo's slot records). Mounted read-only
 * once and left so: every configuration run reads it (mark-good, takeover)
 * and should not pay a mount and an unmount each time. It is remounted
 * read-write (sync) only while we change it (by syscall: agents/mounts.ts).
 *
 * How a change survives a power cut, on a filesystem without a journal:
 * FAT's structure is spread over its two allocation tables and the
 * directory entries, and creating, truncating, renaming or removing a file
 * rewrites several of them. A cut between two of those writes leaves lost
 * clusters or, worse, two entries sharing one chain of clusters, and a later
 * write through one then changes or frees the other's data. The usual "new
 * file, fsync, rename over the old" is such a case: Linux's vfat rewrites
 * the target's entry in one sector, then removes the new file's own entry
 * in another, and a cut in between leaves both naming the same clusters.
 * Rewriting bytes a file already has changes none of the structure: only
 * the file's own sectors (and its entry's time). So the node writes in
 * place only, into files the builder made at their final size (no
 * allocation ever), and makes each write all-or-nothing by its format:
 *  - the environment block, as GRUB's save_env rewrites it: its lines stay
 *    in its first sector (wire/boot.ts: ENV_ATOMIC_BYTES), the rest is '#'
 *    before and after, so a write changes one sector, old or new after a cut;
 *  - a slot record, which may be longer than a sector: two checksummed
 *    copies in its file, the write going to the older one
 *    (record-file.ts), so a cut tears only the copy being replaced.
 * Each write is fsynced (on a sync mount) before the next begins, so the
 * order of changes on disk is the order they were made in.
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
      // The changes are durable already (sync mount, fsync): staying read-write is untidy, not unsafe.
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

  /** Write `data` at `offset` into an existing file of `size` bytes, in place, and wait until it is on disk. */
  private overwrite(path: string, size: number, offset: number, data: Buffer) {
    requireFile(path, size);
    this.makeWritable();
    const fd = openSync(path, "r+");
    try {
      for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done, offset + done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  get envPath() {
    return join(this.dir, BOOT_FILES.env);
  }

  readEnv(): BootEnv {
    return parseEnv(readFileSync(this.envPath, "latin1"));
  }

  writeEnv(env: BootEnv) {
    this.overwrite(this.envPath, ENV_BLOCK_SIZE, 0, Buffer.from(renderEnv(env), "latin1"));
  }

  private recordPath(slot: Slot) {
    return join(this.dir, BOOT_FILES.slotRecord(slot));
  }

  readRecord(slot: Slot): SlotRecord | undefined {
    const path = this.recordPath(slot);
    if (!existsSync(path)) return undefined;
    const parsed = SlotRecord.safeParse(decodeRecord(readFileSync(path)));
    return parsed.success ? parsed.data : undefined;
  }

  writeRecord(slot: Slot, record: SlotRecord) {
    const path = this.recordPath(slot);
    const file = readFileSync(requireFile(path, SLOT_RECORD_BYTES));
    let fitted = SlotRecord.parse(record);
    for (;;) {
      try {
        const { offset, bytes } = encodeRecord(file, fitted);
        return this.overwrite(path, SLOT_RECORD_BYTES, offset, bytes);
      } catch (e) {
        // Only the free texts can be long (a failing script's output): shorten them until the record fits.
        const cut = (t?: string) => (t && t.length > 64 ? `${t.slice(0, Math.floor(t.length / 2))}…` : t);
        const shorter = { ...fitted, reason: cut(fitted.reason), note: cut(fitted.note) };
        if (!(e instanceof RecordTooLarge) || (shorter.reason === fitted.reason && shorter.note === fitted.note)) throw e;
        fitted = shorter;
      }
    }
  }
}

/** The node only rewrites files in place: one that is missing or of another size was not made by ooo's builder as this agent knows it. */
function requireFile(path: string, size: number): string {
  if (!existsSync(path) || statSync(path).size !== size)
    throw new Error(`${path} is missing or not ${size} bytes: this boot partition was not made by the builder of this agent's ooo version`);
  return path;
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
