import { closeSync, fstatSync, openSync, readlinkSync, readSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { dlopen, FFIType, ptr } from "bun:ffi";
import { lastErrno } from "../../lib/errno.ts";
import { slotArgs, type Slot } from "../../wire/boot.ts";

/**
 * Loading the new root's kernel for kexec, with the kernel's own
 * kexec_file_load(2): the kernel reads the two files itself, so nothing but
 * this syscall is needed (no kexec-tools, which an image need not carry).
 * Bun's FFI calls libc's syscall(); x86_64 only, where the number is
 * fixed (320). Elsewhere, or when the kernel refuses (lockdown, no
 * CONFIG_KEXEC_FILE), the caller reboots through the firmware instead.
 */
const SYS_KEXEC_FILE_LOAD = 320;
const KEXEC_FILE_UNLOAD = 1;

let libc: ReturnType<typeof openLibc> | undefined | null;
function openLibc() {
  return dlopen("libc.so.6", {
    syscall: { args: [FFIType.i64, FFIType.i64, FFIType.i64, FFIType.u64, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
    strerror: { args: [FFIType.i32], returns: FFIType.cstring },
  }).symbols;
}
function sys() {
  if (libc === undefined) {
    try {
      libc = process.arch === "x64" && process.platform === "linux" ? openLibc() : null;
    } catch {
      libc = null;
    }
  }
  return libc;
}

export type KexecResult = { loaded: true } | { loaded: false; reason: string };

function call(kernelFd: number, initrdFd: number, cmdline: Buffer | null, flags: number): KexecResult {
  const c = sys();
  if (!c) return { loaded: false, reason: `kexec_file_load is not available from here (${process.arch})` };
  const r = Number(c.syscall(SYS_KEXEC_FILE_LOAD, kernelFd, initrdFd, cmdline ? cmdline.length : 0, cmdline ? ptr(cmdline) : null, flags));
  if (r === 0) return { loaded: true };
  const errno = lastErrno();
  return { loaded: false, reason: `kexec_file_load: ${String(c.strerror(errno))} (errno ${errno})` };
}

/** Load `kernel` and `initrd` with `cmdline` as the kernel to kexec into. */
export function loadKexecKernel(o: { kernel: string; initrd: string; cmdline: string }): KexecResult {
  let kernelFd = -1;
  let initrdFd = -1;
  try {
    kernelFd = openSync(o.kernel, "r");
    initrdFd = openSync(o.initrd, "r");
    // The length counts the terminating NUL.
    return call(kernelFd, initrdFd, Buffer.from(`${o.cmdline}\0`), 0);
  } catch (e) {
    return { loaded: false, reason: (e as Error).message };
  } finally {
    if (kernelFd >= 0) closeSync(kernelFd);
    if (initrdFd >= 0) closeSync(initrdFd);
  }
}

/**
 * loadKexecKernel on a worker thread, so that the takeover goes on while
 * the kernel hashes what it loads. Never rejects.
 */
export function loadKexecKernelInBackground(o: { kernel: string; initrd: string; cmdline: string }): Promise<KexecResult> {
  return new Promise((resolve) => {
    let worker: Worker;
    try {
      worker = new Worker(workerPath());
    } catch (e) {
      return resolve({ loaded: false, reason: `no worker thread: ${(e as Error).message}` });
    }
    const done = (r: KexecResult) => {
      worker.terminate();
      resolve(r);
    };
    worker.onmessage = (event: MessageEvent<KexecResult>) => done(event.data);
    worker.onerror = (event) => done({ loaded: false, reason: `the kexec worker failed: ${event.message}` });
    worker.postMessage(o);
  });
}

/** As lib/parallel-hash.ts: inside the agent's executable the worker is an entry point under its repository path. */
function workerPath(): string {
  return Bun.main.startsWith("/$bunfs/") ? "./agents/takeover/kexec-worker.ts" : new URL("./kexec-worker.ts", import.meta.url).href;
}

/** Whether two files hold the same bytes (a kernel, an initrd: tens of MiB, read in pieces). */
export function sameContent(a: string, b: string): boolean {
  let fa = -1;
  let fb = -1;
  try {
    fa = openSync(a, "r");
    fb = openSync(b, "r");
    if (fstatSync(fa).size !== fstatSync(fb).size) return false;
    const ba = Buffer.alloc(1 << 20);
    const bb = Buffer.alloc(1 << 20);
    for (;;) {
      const na = readSync(fa, ba, 0, ba.length, null);
      const nb = readSync(fb, bb, 0, bb.length, null);
      if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
      if (na === 0) return true;
    }
  } catch {
    return false;
  } finally {
    if (fa >= 0) closeSync(fa);
    if (fb >= 0) closeSync(fb);
  }
}

/** Forget a loaded kernel, so that nothing kexecs into it by surprise. */
export function unloadKexecKernel(): void {
  call(-1, -1, null, KEXEC_FILE_UNLOAD);
}

/**
 * The command line GRUB's `linux` line (wire/boot.ts: grubConfig) would
 * give for `slot`: the running kernel's own, as GRUB built it, with the
 * slot's root, slot name and trial flag in place of the running ones, and
 * without the BOOT_IMAGE= GRUB adds in front of it.
 */
export function kexecCmdline(running: string, to: { partuuid: string; slot: Slot; trial: boolean }): string {
  const replaced: Record<string, string> = {};
  for (const [key, value] of slotArgs(to)) if (value !== undefined) replaced[key] = value;
  const words = running
    .trim()
    .split(/\s+/)
    .filter((w) => w && !w.startsWith("BOOT_IMAGE="))
    .map((w) => {
      const key = w.includes("=") ? w.slice(0, w.indexOf("=")) : w;
      return key in replaced ? `${key}=${replaced[key]}` : w;
    });
  for (const [key, value] of Object.entries(replaced)) if (!words.some((w) => w.startsWith(`${key}=`))) words.push(`${key}=${value}`);
  return words.join(" ");
}

/** `path` under `root`, its symlinks followed inside `root` (as GRUB reads the slot's filesystem), never out of it. */
export function insideRoot(root: string, path: string): string {
  let rel = posix.join("/", path);
  for (let hops = 0; hops < 16; hops++) {
    let link: string;
    try {
      link = readlinkSync(join(root, rel));
    } catch {
      return join(root, rel);
    }
    rel = link.startsWith("/") ? posix.normalize(link) : posix.join(dirname(rel), link);
  }
  throw new Error(`${path} in ${root}: too many symbolic links`);
}
