import type { Accel } from "./accel.ts";

/**
 * The qemu machine every ooo node runs on, test VM or deployed node: one
 * definition so both boot the same way.
 * - `-nodefaults`: no VGA, floppy or CD; only the devices listed.
 * - user networking with `restrict=on`: the guest reaches nothing but the
 *   forwards given (guestfwd commands, hostfwd to loopback).
 * - `romfile=` on the NIC: no iPXE option ROM, which the firmware would
 *   otherwise load and run at every power-on (seconds under emulation) for a
 *   network boot we never do.
 */
export interface MachineOptions {
  name: string;
  accel: Accel;
  memoryMiB: number;
  cpus: number;
  guestForwards?: { ip: string; port: number; command: string }[];
  hostForwards?: { hostPort: number; guestPort: number }[];
}

export function machineArgs(o: MachineOptions): string[] {
  const net = [
    "user,id=net0,restrict=on",
    ...(o.guestForwards ?? []).map((f) => `guestfwd=tcp:${f.ip}:${f.port}-cmd:${f.command}`),
    ...(o.hostForwards ?? []).map((f) => `hostfwd=tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`),
  ].join(",");
  return [
    "-name", o.name,
    "-accel", o.accel,
    "-cpu", o.accel === "kvm" ? "host" : "max",
    "-m", String(o.memoryMiB),
    "-smp", String(o.cpus),
    "-display", "none",
    "-no-user-config",
    "-nodefaults",
    "-netdev", net,
    "-device", "virtio-net-pci,netdev=net0,romfile=",
    "-device", "virtio-rng-pci",
  ];
}
