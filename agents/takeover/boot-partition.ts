import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { capture, run } from "../../lib/run.ts";
import { Lock } from "../refresh/lock.ts";
import { parseEnv, renderEnv, type BootEnv, type Slot } from "./bootenv.ts";
import { SlotRecord } from "./records.ts";

/**
 * The boot partition (ext2: grub.cfg, the environment block, ooo's slot
 * records), mounted read-write only while we change it. Every change is a
 * new file, fsynced, renamed over the old one, and the folder fsynced: a
 * power cut leaves the old content or the new, never half of each.
 */
const MOUNT = "/run/ooo/boot";
const LOCK = "/run/ooo/boot.lock";

export class BootPartition {
  private constructor(
    readonly device: string,
    readonly dir: string,
    private readonly lock: Lock,
    private readonly mountedHere: boolean,
  ) {}

  /** Mount (or reuse a mount of) the boot partition, holding the boot lock. */
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
    const mounted = (await capture("findmnt", ["-n", "-o", "SOURCE", MOUNT]).catch(() => "")).trim();
    if (!mounted) await run("mount", ["-t", "ext2", "-o", "rw,sync", device, MOUNT], { what: `mounting the boot partition ${device}`, echo: false });
    return new BootPartition(device, MOUNT, lock, !mounted);
  }

  async close() {
    if (this.mountedHere) await run("umount", [MOUNT], { what: "unmounting the boot partition", echo: false }).catch(() => {});
    this.lock.release();
  }

  private replace(path: string, content: string | Buffer) {
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
    return join(this.dir, "grub", "grubenv");
  }

  readEnv(): BootEnv {
    return parseEnv(readFileSync(this.envPath, "latin1"));
  }

  writeEnv(env: BootEnv) {
    this.replace(this.envPath, Buffer.from(renderEnv(env), "latin1"));
  }

  readRecord(slot: Slot): SlotRecord | undefined {
    const path = join(this.dir, "ooo", `slot-${slot}.json`);
    if (!existsSync(path)) return undefined;
    const parsed = SlotRecord.safeParse(JSON.parse(readFileSync(path, "utf8")));
    return parsed.success ? parsed.data : undefined;
  }

  writeRecord(slot: Slot, record: SlotRecord) {
    this.replace(join(this.dir, "ooo", `slot-${slot}.json`), JSON.stringify(SlotRecord.parse(record), null, 2) + "\n");
  }
}
