import { readFileSync } from "node:fs";
import { log } from "../lib/log.ts";
import { HostTooSmall } from "./errors.ts";
import type { Stack } from "./stack.ts";

/**
 * Nodes that run on this host (the qemu driver's VMs) must fit in it: a
 * node asking for more memory than the host has, or a stack whose VMs
 * together want more than its memory and swap, is refused before anything
 * starts — not found out when the kernel's OOM killer takes a VM mid-boot.
 * More than is free now is only a warning: guests touch their memory
 * lazily, and others may free theirs.
 */
const LOCAL_DRIVERS = new Set(["qemu"]);

function meminfo(text = readFileSync("/proc/meminfo", "utf8")): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(\w+):\s+(\d+) kB$/gm)) out[m[1]!] = Number(m[2]) / 1024;
  return out;
}

export function checkHostCapacity(stack: Stack, host = meminfo()) {
  const local = stack.nodes.filter((n) => LOCAL_DRIVERS.has(n.driver));
  if (!local.length) return;
  const total = host.MemTotal ?? Infinity;
  const gib = (mib: number) => `${(mib / 1024).toFixed(1)} GiB`;
  const biggest = local.reduce((a, b) => (b.size.memoryMiB > a.size.memoryMiB ? b : a));
  if (biggest.size.memoryMiB > total)
    throw new HostTooSmall(`node ${biggest.name} asks for ${gib(biggest.size.memoryMiB)} of memory; this host has ${gib(total)}`, "Give the role a smaller size.memory, or run it on a bigger host.");
  const wanted = local.reduce((n, node) => n + node.size.memoryMiB, 0);
  const room = total + (host.SwapTotal ?? 0);
  if (wanted > room)
    throw new HostTooSmall(
      `the stack's ${local.length} VMs ask for ${gib(wanted)} of memory together; this host has ${gib(total)}${host.SwapTotal ? ` and ${gib(host.SwapTotal)} of swap` : ""}`,
      "Lower roles' counts or size.memory, or spread the roles over more hosts.",
    );
  if (host.MemAvailable !== undefined && wanted > host.MemAvailable)
    log.warn(`the stack's VMs ask for ${gib(wanted)} of memory together; ${gib(host.MemAvailable)} is free now`);
}
