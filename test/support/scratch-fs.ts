import { dlopen, FFIType, ptr } from "bun:ffi";
import { closeSync, constants, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireCommand, requireRoot } from "./require.ts";

/**
 * Small filesystems of a test's own, mounted and always unmounted: a tmpfs
 * that fills up (a store whose disk is full), and an ext4 on a loop device
 * whose power can be "cut" — the kernel's shutdown ioctl without a log
 * flush, as xfstests simulate a crash: what was not made durable is gone
 * at the next mount.
 */
async function sh(cmd: string[]) {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
  const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} failed (${code}): ${err.trim()}`);
}

/** A tmpfs of `size` (e.g. "24M") for the length of `fn`. */
export async function withTmpfs<T>(size: string, fn: (dir: string) => Promise<T>): Promise<T> {
  requireRoot();
  const dir = mkdtempSync(join(tmpdir(), "ooo-tmpfs-"));
  await sh(["mount", "-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir]);
  try {
    return await fn(dir);
  } finally {
    await sh(["umount", "-l", dir]).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

const FS_IOC_SHUTDOWN = 0x8004587dn; // _IOR('X', 125, __u32)
const FS_SHUTDOWN_FLAGS_NOLOGFLUSH = 2;
const libc = dlopen("libc.so.6", { ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 } });

export interface CrashableFs {
  /** Where it is mounted now (the same path after crash()). */
  dir: string;
  /** Cut the power: everything not yet durable is lost; then mount it again. */
  crash(): Promise<void>;
}

/** An ext4 on a loop device for the length of `fn`. */
export async function withCrashableFs<T>(fn: (fs: CrashableFs) => Promise<T>): Promise<T> {
  requireRoot();
  requireCommand("mkfs.ext4", "mount", "umount");
  const work = mkdtempSync(join(tmpdir(), "ooo-crashfs-"));
  const image = join(work, "fs.img");
  const dir = join(work, "mnt");
  await sh(["truncate", "-s", "64M", image]);
  await sh(["mkfs.ext4", "-q", "-F", image]);
  await sh(["mkdir", dir]);
  await sh(["mount", "-o", "loop", image, dir]);
  try {
    return await fn({
      dir,
      async crash() {
        const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
        try {
          if (libc.symbols.ioctl(fd, FS_IOC_SHUTDOWN, ptr(new Uint32Array([FS_SHUTDOWN_FLAGS_NOLOGFLUSH]))) !== 0)
            throw new Error("the shutdown ioctl failed: this kernel's ext4 cannot simulate a power cut");
        } finally {
          closeSync(fd);
        }
        await sh(["umount", dir]);
        await sh(["mount", "-o", "loop", image, dir]);
      },
    });
  } finally {
    await sh(["umount", dir]).catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }
}
