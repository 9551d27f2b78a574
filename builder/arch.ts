import { readFileSync } from "node:fs";
import { MissingRequirement } from "../lib/errors.ts";

/**
 * `-a ARCH`: Debian's architecture names (DIB's ARCH), and what building
 * for one that is not this machine's needs. A build runs the target's own
 * programs in its chroot (every hook of a target phase), so a foreign
 * architecture needs the kernel to run them: binfmt_misc with Debian's
 * qemu-user-static, registered with the F flag (the emulator is opened when
 * registered, so it works inside a chroot that lacks it; qemu-user-binfmt's
 * dynamic emulators do not). Without that the
 * build is refused before it starts, rather than writing a manifest that
 * calls x86-64 content "arm64".
 */

/** Debian's ports, and qemu's name for each (binfmt_misc entries are qemu-<name>). */
export const DEBIAN_ARCHES: Record<string, string> = {
  amd64: "x86_64",
  arm64: "aarch64",
  armel: "arm",
  armhf: "arm",
  i386: "i386",
  loong64: "loongarch64",
  mips64el: "mips64el",
  ppc64el: "ppc64le",
  riscv64: "riscv64",
  s390x: "s390x",
};

/** DIB also takes the kernel's names for some (disk-image-create -a x86_64). */
const ALIASES: Record<string, string> = { x86_64: "amd64", aarch64: "arm64", ppc64le: "ppc64el" };

/** Architectures this machine's CPU runs without emulation. */
const NATIVE: Record<string, string[]> = { amd64: ["amd64", "i386"], arm64: ["arm64"] };

/** The Debian name of `-a`'s value, or undefined for an architecture Debian does not have. */
export function debianArch(given: string): string | undefined {
  const name = ALIASES[given] ?? given;
  return name in DEBIAN_ARCHES ? name : undefined;
}

export const UNKNOWN_ARCH = `is no architecture Debian builds for; one of: ${Object.keys(DEBIAN_ARCHES).join(", ")}`;

/** Debian's name for the machine's architecture, as DIB's ARCH (x86_64 → amd64). */
export function hostArch(): string {
  return process.arch === "x64" ? "amd64" : process.arch === "arm64" ? "arm64" : process.arch;
}

function binfmtEnabled(qemuName: string, binfmtDir: string): boolean {
  try {
    const entry = readFileSync(`${binfmtDir}/qemu-${qemuName}`, "utf8");
    return /^enabled$/m.test(entry) && /^flags:.*F/m.test(entry);
  } catch {
    return false;
  }
}

/** Refuse a foreign architecture this host cannot run programs of (checked before the build starts). */
export function checkArchRunnable(arch: string, host = hostArch(), binfmtDir = "/proc/sys/fs/binfmt_misc") {
  if ((NATIVE[host] ?? [host]).includes(arch)) return;
  const qemu = DEBIAN_ARCHES[arch]!;
  if (binfmtEnabled(qemu, binfmtDir)) return;
  throw new MissingRequirement(
    `building for ${arch} on this ${host} machine runs ${arch} programs in the chroot: an emulator registered with binfmt_misc (${binfmtDir}/qemu-${qemu}, flag F)`,
    `Install Debian's qemu-user-static (apt-get install qemu-user-static; binfmt_misc must be mounted), or build on a machine of that architecture.`,
  );
}
