import type { Accel } from "./accel.ts";
import { firmwareArgs, type Firmware } from "./firmware.ts";

/**
 * The qemu machine every ooo node runs on, test VM or deployed node: one
 * definition so both boot the same way.
 * - `-nodefaults`: no VGA, floppy or CD; only the devices listed.
 * - user networking with `restrict=on`: the guest reaches nothing but the
 *   forwards given (guestfwd commands, hostfwd to loopback).
 * - `romfile=` on the NIC: no iPXE option ROM, which the firmware would
 *   otherwise load and run at every power-on (seconds under emulation) for a
 *   network boot we never do.
 * - firmware: SeaBIOS (qemu's own), or OVMF for UEFI (firmware.ts), with the
 *   machine's own variable store.
 */
export interface MachineOptions {
  name: string;
  accel: Accel;
  memoryMiB: number;
  cpus: number;
  guestForwards?: { ip: string; port: number; command: string }[];
  hostForwards?: { hostPort: number; guestPort: number }[];
  /** Default bios. */
  firmware?: Firmware;
  /** The machine's UEFI variable store (firmware uefi). */
  varStore?: string;
}

/**
 * Under TCG, `max` without ERMS/FSRM: with them the guest kernel clears and
 * copies pages with `rep stosb`/`rep movsb`, which TCG emulates a byte at a
 * time; every page a Debian kernel allocates is cleared (init_on_alloc), so
 * a 1-vCPU boot spent 28 s of its 41 in the kernel. Without them: 26 s to
 * ready (20 → 18 s with 2 vCPUs). AVX2 stays: the agent binary needs it.
 * (SVM stays too, though udev loads kvm_amd for it at every boot: with
 * `-svm` qemu 7.2's TCG guest failed every mount systemd makes, EBUSY.)
 * Without AES-NI and PCLMULQDQ: BoringSSL (the agents' bun) then prefers
 * ChaCha20-Poly1305 for TLS, which TCG runs 2.5× faster than AES-GCM on
 * emulated AES-NI (30 against 12 MB/s) — a deploy ramdisk's https download of the disk's data
 * (bench/tcg-crypto.ts). On real CPUs AES-GCM is the fast one; this is
 * about emulation only.
 */
export const TCG_CPU = "max,-erms,-fsrm,-aes,-pclmulqdq";

/**
 * TCG's translation cache: 256 MiB, not qemu 7.2's 1 GiB default. With the
 * default, a node booted to ready in 16.8 s and, after a reset in the same
 * qemu (every reboot: an upgrade's switch to the new slot), in 22-26 s; with
 * 128-256 MiB both took 14.6-15.2 s here (a smaller cache stays warm in the
 * host's caches and TLB). Three nodes also hold 2.3 GiB less between them.
 */
export const TCG_ACCEL = "tcg,tb-size=256";

export function machineArgs(o: MachineOptions): string[] {
  const net = [
    "user,id=net0,restrict=on",
    ...(o.guestForwards ?? []).map((f) => `guestfwd=tcp:${f.ip}:${f.port}-cmd:${f.command}`),
    ...(o.hostForwards ?? []).map((f) => `hostfwd=tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`),
  ].join(",");
  return [
    "-name", o.name,
    "-accel", o.accel === "tcg" ? TCG_ACCEL : o.accel,
    "-cpu", o.accel === "kvm" ? "host" : TCG_CPU,
    "-m", String(o.memoryMiB),
    "-smp", String(o.cpus),
    "-display", "none",
    "-no-user-config",
    "-nodefaults",
    "-netdev", net,
    "-device", "virtio-net-pci,netdev=net0,romfile=",
    "-device", "virtio-rng-pci",
    ...firmwareArgs(o.firmware ?? "bios", o.varStore),
  ];
}
