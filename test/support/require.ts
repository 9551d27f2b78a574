import { existsSync } from "node:fs";

/**
 * Tests that need root, a program, qemu or Debian's mirror check for it and
 * fail with a clear message — they never skip silently. CI has them all
 * (.ci/run installs them); on a developer machine `sh tools/ensure.sh` does.
 */
export function requireRoot() {
  if (process.getuid?.() !== 0) throw new Error("this test needs root (it builds images: chroot, mounts, namespaces)");
}

export function requireCommand(...programs: string[]) {
  const missing = programs.filter((p) => !Bun.which(p) && !existsSync(p));
  if (missing.length)
    throw new Error(`this test needs ${missing.join(", ")}; install them with: sh tools/ensure.sh`);
}
