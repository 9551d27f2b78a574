import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { capture } from "../../lib/run.ts";
import { requireCommand } from "./require.ts";

/**
 * What the test machines boot over the network: a Debian kernel and a tiny
 * initramfs (static busybox, the virtio NIC and disk modules) whose /init
 * prints marker lines on ttyS0, takes a DHCP lease, reports its MAC and
 * address to `ooo.report=URL` from the kernel command line, and then does
 * what the answer says: `wait` (stay up until the BMC powers it off) or
 * anything else: power off by itself.
 * Both are cached in .cache/testbed/ (the kernel per Debian version).
 */
const CACHE = resolve(import.meta.dir, "../../.cache/testbed");

/** Console lines the /init prints; tests wait for them. */
export const MARKER = {
  /** /init started: the initramfs came over the network and the kernel ran it. */
  init: "OOO-TESTBED-INIT",
  /** `OOO-TESTBED-NET mac=… ip=… disks=…`: the ramdisk's own DHCP lease. */
  net: "OOO-TESTBED-NET",
  /** `OOO-TESTBED-DONE next=wait|poweroff`: reported; what it does next. */
  done: "OOO-TESTBED-DONE",
} as const;

/** The kernel's first console line (`Linux version …`, at loglevel 6). */
export const KERNEL_FIRST_LINE = /Linux version \d/;

/** Kernel arguments: console on the first serial port, notices but not every info line. */
export function kernelArgs(reportUrl?: string) {
  return ["console=ttyS0,115200", "loglevel=6", ...(reportUrl ? [`ooo.report=${reportUrl}`] : [])].join(" ");
}

/** Modules the /init loads, in dependency order (each after what its `depends=` names). */
const MODULES = ["virtio_net", "virtio_pci", "virtio_blk"];

export interface NetbootPayload {
  kernel: string;
  initrd: string;
  kernelVersion: string;
}

export async function markerPayload(): Promise<NetbootPayload> {
  requireCommand("apt-get", "apt-cache", "dpkg-deb", "/bin/busybox");
  const { dir, version } = await debianKernel();
  const initrd = join(dir, "marker.initrd");
  const stamp = join(dir, "marker.stamp");
  const want = `${INIT}\n${UDHCPC_SCRIPT}\n${MODULES}`;
  if (!existsSync(initrd) || !existsSync(stamp) || readFileSync(stamp, "utf8") !== want) {
    await buildInitrd(dir, initrd);
    writeFileSync(stamp, want);
  }
  return { kernel: join(dir, "vmlinuz"), initrd, kernelVersion: version };
}

/** The kernel package linux-image-cloud-amd64 currently points at, unpacked once. */
async function debianKernel(): Promise<{ dir: string; version: string }> {
  const deps = await capture("apt-cache", ["depends", "linux-image-cloud-amd64"]);
  const pkg = /Depends: (linux-image-[\w.+-]+)/.exec(deps)?.[1];
  if (!pkg) throw new Error(`apt-cache knows no kernel for linux-image-cloud-amd64:\n${deps}`);
  const version = pkg.replace(/^linux-image-/, "");
  const dir = join(CACHE, `kernel-${version}`);
  if (existsSync(join(dir, "vmlinuz"))) return { dir, version };
  const work = `${dir}.tmp`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  await capture("apt-get", ["download", pkg], { cwd: work, what: `apt-get download ${pkg} (needs Debian's mirror)` });
  const deb = readdirSync(work).find((f) => f.endsWith(".deb"))!;
  await capture("dpkg-deb", ["-x", join(work, deb), join(work, "root")]);
  copyFileSync(join(work, "root/boot", `vmlinuz-${version}`), join(work, "vmlinuz"));
  // Keep only the modules and their dependency closure; drop the 100+ MiB rest.
  const all = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }))
      e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith(".ko") && all.set(e.name.slice(0, -3), join(d, e.name));
  };
  walk(join(work, "root/lib/modules", version));
  mkdirSync(join(work, "modules"));
  for (const m of moduleOrder(MODULES, all)) copyFileSync(all.get(m)!, join(work, "modules", `${m}.ko`));
  writeFileSync(join(work, "modules/order"), moduleOrder(MODULES, all).join("\n") + "\n");
  rmSync(join(work, "root"), { recursive: true });
  rmSync(join(work, deb));
  rmSync(dir, { recursive: true, force: true });
  renameSync(work, dir);
  return { dir, version };
}

/** Dependencies first, read from each module's own `depends=` modinfo string (no kmod needed). */
function moduleOrder(wanted: string[], files: Map<string, string>): string[] {
  const order: string[] = [];
  const visit = (name: string) => {
    if (order.includes(name)) return;
    const file = files.get(name) ?? files.get(name.replaceAll("_", "-"));
    if (!file) throw new Error(`kernel module ${name} is not in the kernel package`);
    const info = readFileSync(file).toString("latin1");
    const deps = /depends=([\w,-]*)/.exec(info)?.[1]?.split(",").filter(Boolean) ?? [];
    for (const d of deps) visit(d);
    order.push(name);
  };
  for (const w of wanted) visit(w);
  return order;
}

const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
esac
`;

// The lines a test waits for carry no colour or prefix; `uptime` is the
// guest's own clock at that point.
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "${MARKER.init} uptime=$(cut -d' ' -f1 /proc/uptime)"
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko || echo "OOO-TESTBED-ERROR insmod $m"; done
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
ip link set eth0 up
mac=$(cat /sys/class/net/eth0/address)
udhcpc -i eth0 -f -q -n -t 10 -T 1 -s /etc/udhcpc.script >/dev/null 2>&1 || echo "OOO-TESTBED-ERROR no DHCP lease"
addr=$(ip -4 -o addr show dev eth0 | sed -n 's/.* inet \\([0-9.]*\\).*/\\1/p')
disks=$(cd /sys/block && ls -d vd* 2>/dev/null | tr '\\n' ',')
echo "${MARKER.net} mac=$mac ip=$addr disks=$disks"
report=$(sed -n 's/.*ooo\\.report=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
next=poweroff
[ -n "$report" ] && next=$(wget -q -O - "$report?mac=$mac&ip=$addr")
echo "${MARKER.done} next=$next"
[ "$next" = wait ] && while :; do sleep 3600; done
poweroff -f
`;

async function buildInitrd(kernelDir: string, out: string) {
  const root = `${out}.root`;
  rmSync(root, { recursive: true, force: true });
  for (const d of ["bin", "proc", "sys", "dev", "etc", "lib/modules"]) mkdirSync(join(root, d), { recursive: true });
  copyFileSync("/bin/busybox", join(root, "bin/busybox"));
  writeFileSync(join(root, "init"), INIT, { mode: 0o755 });
  writeFileSync(join(root, "etc/udhcpc.script"), UDHCPC_SCRIPT, { mode: 0o755 });
  for (const f of readdirSync(join(kernelDir, "modules"))) copyFileSync(join(kernelDir, "modules", f), join(root, "lib/modules", f));
  chmodSync(join(root, "bin/busybox"), 0o755);
  const files: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      files.push(p);
      if (e.isDirectory()) walk(p);
    }
  };
  walk("");
  const cpio = Bun.spawnSync(["/bin/busybox", "cpio", "-o", "-H", "newc"], {
    cwd: root,
    stdin: new TextEncoder().encode(files.join("\n") + "\n"),
  });
  if (cpio.exitCode !== 0) throw new Error(`busybox cpio failed: ${cpio.stderr.toString()}`);
  writeFileSync(`${out}.tmp`, cpio.stdout);
  renameSync(`${out}.tmp`, out);
  rmSync(root, { recursive: true });
}
