/**
 * The boot contract of an ooo disk, defined once for everything that reads
 * or writes it: the builder lays the disk out and installs GRUB for both
 * firmwares (builder/disk/), GRUB picks a root slot at every boot, the
 * node's agents find the disk and change the boot environment
 * (agents/takeover/), the deployer grows the state partition
 * (deployer/drivers/qemu-disk.ts).
 *
 * One disk boots under UEFI and under legacy BIOS: the boot partition is an
 * EFI system partition holding GRUB for x86_64-efi at the removable path
 * (no NVRAM entry needed), and the BIOS boot partition holds GRUB's i386-pc
 * core image. Both GRUBs read the same grub.cfg and environment block there.
 *
 *  - the partitions: number, GPT name and type, filesystem and label, size;
 *  - the files on the boot partition: GRUB's EFI binary, grub.cfg, the environment block, the slot records;
 *  - GRUB's environment block: its format, keys and defaults;
 *  - the slot-choice rule, as GRUB script (grubConfig) and as TypeScript
 *    (chooseSlot) side by side: builder/disk/grub.test.ts runs the script in
 *    grub-emu over a table of blocks and holds both to the same answers;
 *  - the kernel arguments that boot a slot (root=PARTUUID=…, ooo.slot=, ooo.trial=).
 *
 * Changing the boot partition's filesystem or type, or adding a partition,
 * is a change to the data here, plus the code that makes a new kind of
 * filesystem (builder/disk/mkfs.ts) and fills a new partition
 * (builder/outputs/steps.ts). No imports: the agents load this at every
 * configuration run.
 */

export const SLOTS = ["A", "B"] as const;
export type Slot = (typeof SLOTS)[number];
export const other = (s: Slot): Slot => (s === "A" ? "B" : "A");
export const isSlot = (s: string | undefined): s is Slot => (SLOTS as readonly (string | undefined)[]).includes(s);

// ---------------------------------------------------------------- partitions

export const MiB = 2 ** 20;

/** GPT partition types: BIOS boot (GRUB's), EFI system (the UEFI spec's), and the Discoverable Partitions Specification's. */
export const GPT_TYPES = {
  biosBoot: "21686148-6449-6E6F-744E-656564454649",
  esp: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
  rootX86_64: "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
  linuxData: "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
} as const;

/** Filesystems on an ooo disk: the type Linux mounts it as, the GRUB module that reads it. */
export const FILESYSTEMS = {
  vfat: { linux: "vfat", grubModule: "fat" },
  ext4: { linux: "ext4", grubModule: "ext2" },
} as const;
export type Filesystem = keyof typeof FILESYSTEMS;

export interface PartitionSpec {
  /** GRUB names a partition by its number (gpt3); the state partition is last, so that it can grow. */
  number: number;
  /** The GPT partition name: how the node finds it (PARTNAME in sysfs) and the builder places it. */
  name: string;
  type: string;
  /** No filesystem: the BIOS boot partition holds GRUB's core image as raw sectors. */
  fs?: Filesystem;
  label?: string;
  /** Bytes; "slot": a root slot's size (the builder's to choose); "rest": what the disk has left. */
  size: number | "slot" | "rest";
}

/**
 * The golden disk, in disk order:
 *   1 bios-boot   1 MiB   GRUB's i386-pc core image (a BIOS boots it through the MBR)
 *   2 ooo-boot   64 MiB   the EFI system partition (FAT32): GRUB's EFI binary (UEFI boots it),
 *                         grub.cfg and the environment block that picks the slot (both GRUBs
 *                         read them), the slot records
 *   3 ooo-root-a  slot    the root, read-only on the node
 *   4 ooo-root-b  slot    empty: an in-place upgrade writes the next root here
 *   5 ooo-state   rest    precious data, never written by an upgrade; grows with the disk
 *
 * The boot partition is FAT32, not FAT16: the UEFI spec ("File System Format") has
 * firmware read FAT12/16 on removable media and FAT32 on the system
 * partition of a fixed disk, and some firmware refuses a FAT16 ESP there.
 * FAT32 needs at least 65,525 clusters; 64 MiB in 512-byte clusters has
 * about 130,000, the layout Windows itself gives its 100 MB ESP, which every
 * PC firmware has met. The files need about 2 MiB (no kernels here: they
 * stay in the root slots); the rest leaves room for a signed shim and
 * GRUB (Secure Boot). A hole in the image file costs nothing.
 */
export const DISK = {
  biosBoot: { number: 1, name: "bios-boot", type: GPT_TYPES.biosBoot, size: 1 * MiB },
  boot: { number: 2, name: "ooo-boot", type: GPT_TYPES.esp, fs: "vfat", label: "OOO-BOOT", size: 64 * MiB },
  rootA: { number: 3, name: "ooo-root-a", type: GPT_TYPES.rootX86_64, fs: "ext4", label: "ooo-root", size: "slot" },
  rootB: { number: 4, name: "ooo-root-b", type: GPT_TYPES.rootX86_64, fs: "ext4", label: "ooo-root", size: "slot" },
  state: { number: 5, name: "ooo-state", type: GPT_TYPES.linuxData, fs: "ext4", label: "ooo-state", size: "rest" },
} as const satisfies Record<string, PartitionSpec>;
export type PartitionRole = keyof typeof DISK;
export type PartitionName = (typeof DISK)[PartitionRole]["name"];

/** Every partition with its role, in disk order. */
export const PARTITIONS = (Object.entries(DISK) as [PartitionRole, PartitionSpec][])
  .map(([role, spec]) => ({ role, ...spec }))
  .sort((a, b) => a.number - b.number);

export const SLOT_PARTITIONS: Record<Slot, (typeof DISK)["rootA" | "rootB"]> = { A: DISK.rootA, B: DISK.rootB };

/** The filesystem type Linux mounts a partition's filesystem as. */
export const mountType = (p: { fs: Filesystem }) => FILESYSTEMS[p.fs].linux;

/**
 * Files on the boot partition, relative to its root. FAT has no journal, so
 * the node never changes the filesystem's structure (no file created,
 * renamed, truncated or removed): every file it writes is made by the
 * builder at its final size and rewritten in place, which touches only the
 * file's own sectors (and its directory entry's time), as GRUB's save_env
 * does. agents/takeover/boot-partition.ts says why that is the safe way.
 */
export const BOOT_FILES = {
  /** The UEFI removable-media path for x86_64 (UEFI spec, "Removable Media Boot Behavior"): firmware boots it with no NVRAM entry. */
  efiBinary: "EFI/BOOT/BOOTX64.EFI",
  /** GRUB's prefix: both GRUB images load the rest from here. */
  grubDir: "grub",
  grubConfig: "grub/grub.cfg",
  env: "grub/grubenv",
  /** What the node remembers of a slot's latest takeover (agents/takeover/records.ts), SLOT_RECORD_BYTES long. */
  slotRecord: (slot: Slot) => `ooo/slot-${slot}.rec`,
} as const;

/**
 * A slot record file's size. The builder writes it as zeros (no record yet);
 * the node keeps two copies of the record in it (agents/takeover/record-file.ts).
 */
export const SLOT_RECORD_BYTES = 8192;

/** In a root slot: the kernel and initrd GRUB (or kexec) boots, Debian's links at the root. */
export const SLOT_FILES = { kernel: "vmlinuz", initrd: "initrd.img" } as const;

// ---------------------------------------------------------------- environment block

/**
 * GRUB's environment block (grub-editenv's format): 1024 bytes, this
 * header, NAME=VALUE lines, '#' to the end. GRUB's save_env rewrites it in
 * place, which is why its size never changes. ooo keeps the lines within
 * the first ENV_ATOMIC_BYTES (one disk sector): the rest stays '#', so a
 * rewrite in place changes one sector only, which a power cut leaves old or
 * new, never half of each (ooo's keys take about 230 bytes).
 */
export const ENV_BLOCK_SIZE = 1024;
export const ENV_ATOMIC_BYTES = 512;
const ENV_HEADER = "# GRUB Environment Block\n";

export type BootEnv = Map<string, string>;

export const ENV_KEYS = {
  /** Slots by preference, separated by spaces. */
  order: "ORDER",
  /** "1": the slot is known good. */
  ok: (s: Slot) => `${s}_OK`,
  /** "1": the slot may boot once, on trial; GRUB clears it before booting it. */
  try: (s: Slot) => `${s}_TRY`,
  /** The image digest the slot holds (ooo's key; GRUB does not read it). */
  digest: (s: Slot) => `${s}_DIGEST`,
  /** Kernel arguments added to every slot's command line. */
  extraCmdline: "EXTRA_CMDLINE",
} as const;

/** What a new disk's block says (the first slot good, the others empty), and what GRUB assumes for a key the block lacks. */
const DEFAULTS: [string, string][] = [
  [ENV_KEYS.order, SLOTS.join(" ")],
  ...SLOTS.flatMap((s, i): [string, string][] => [
    [ENV_KEYS.ok(s), i === 0 ? "1" : "0"],
    [ENV_KEYS.try(s), "0"],
  ]),
];
const GRUB_DEFAULTS: [string, string][] = [...DEFAULTS, [ENV_KEYS.extraCmdline, ""]];
const valueOf = (env: BootEnv, key: string) => env.get(key) ?? GRUB_DEFAULTS.find(([k]) => k === key)?.[1];

export function parseEnv(block: string): BootEnv {
  const env: BootEnv = new Map();
  if (!block.startsWith(ENV_HEADER)) throw new Error("not a GRUB environment block");
  for (const line of block.slice(ENV_HEADER.length).split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq > 0) env.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return env;
}

/** The block as bytes are written (latin1: one byte a character, as GRUB counts). */
export function renderEnv(env: BootEnv): string {
  const body = ENV_HEADER + [...env].map(([k, v]) => `${k}=${v}\n`).join("");
  if (body.length > ENV_ATOMIC_BYTES)
    throw new Error(`GRUB environment block too large (${body.length} > ${ENV_ATOMIC_BYTES} bytes: ooo keeps it in one sector, so that a rewrite is all or nothing)`);
  return body.padEnd(ENV_BLOCK_SIZE, "#");
}

/** A new disk's block: the first slot holds `digest` and is good. */
export function initialEnv(digest: string): BootEnv {
  const env: BootEnv = new Map(DEFAULTS);
  env.set(ENV_KEYS.digest(SLOTS[0]), digest);
  return env;
}

/** The slot facts the upgrade logic reasons about. */
export interface SlotState {
  ok: boolean;
  try: boolean;
  digest?: string;
}

export function slotState(env: BootEnv, slot: Slot): SlotState {
  const digest = env.get(ENV_KEYS.digest(slot));
  return { ok: valueOf(env, ENV_KEYS.ok(slot)) === "1", try: valueOf(env, ENV_KEYS.try(slot)) === "1", digest: digest || undefined };
}

export function setSlot(env: BootEnv, slot: Slot, state: Partial<SlotState>): void {
  if (state.ok !== undefined) env.set(ENV_KEYS.ok(slot), state.ok ? "1" : "0");
  if (state.try !== undefined) env.set(ENV_KEYS.try(slot), state.try ? "1" : "0");
  if (state.digest !== undefined) env.set(ENV_KEYS.digest(slot), state.digest);
}

/** Prefer `first`, fall back to the others. */
export function setOrder(env: BootEnv, first: Slot): void {
  env.set(ENV_KEYS.order, [first, ...SLOTS.filter((s) => s !== first)].join(" "));
}

export function firstInOrder(env: BootEnv): string | undefined {
  return valueOf(env, ENV_KEYS.order)?.split(/\s+/)[0];
}

export function extraCmdline(env: BootEnv): string[] {
  return (valueOf(env, ENV_KEYS.extraCmdline) ?? "").split(/\s+/).filter(Boolean);
}

// ---------------------------------------------------------------- the slot choice

export interface SlotChoice {
  slot: Slot;
  trial: boolean;
  /** No slot was bootable: GRUB tries the first slot anyway. */
  fallback?: true;
}

/**
 * The slot GRUB boots from `env`, by the rule grubConfig's script follows:
 * the first slot in ORDER that is good, or else on trial (its try used up
 * before it boots); with none, the first slot as a last resort. Changes
 * `env` as GRUB's save_env changes the block.
 */
export function chooseSlot(env: BootEnv): SlotChoice {
  for (const s of (valueOf(env, ENV_KEYS.order) ?? "").split(/\s+/)) {
    if (!isSlot(s)) continue;
    const state = slotState(env, s);
    if (state.ok) return { slot: s, trial: false };
    if (state.try) {
      setSlot(env, s, { try: false });
      return { slot: s, trial: true };
    }
  }
  return { slot: SLOTS[0], trial: false, fallback: true };
}

/**
 * grub.cfg: the same rule as chooseSlot, in GRUB's script. Defaults and
 * keys, slots and their partition numbers come from the data above.
 * `kernelCmdline`: the image's own kernel arguments.
 */
export function grubConfig(kernelCmdline: string): string {
  const quote = (v: string) => (/^[\w.-]+$/.test(v) ? v : `"${v}"`);
  const perSlot = (indent: string, line: (s: Slot) => string) => SLOTS.map((s) => `${indent}if [ "$s" = "${s}" ]; then ${line(s)}; fi`).join("\n");
  const partition = SLOTS.map((s) => `if [ "$slot" = "${s}" ]; then set part=gpt${SLOT_PARTITIONS[s].number}; fi`).join("\n");
  const loaded = GRUB_DEFAULTS.map(([k]) => k).join(" ");
  const args = slotCmdline({ partuuid: "$partuuid", slot: "$slot", trial: "$trial" });
  return `# ooo: boot the root slot the environment block (${BOOT_FILES.env}) picks.
# ${ENV_KEYS.order} lists slots by preference. A slot boots if X_OK=1 (known good), or
# once "on trial" if X_TRY=1: the try is used up before booting, so a trial
# boot that never reaches "good" (the node marks it, with grub-editenv or
# ooo-agent) falls back to the next slot in ${ENV_KEYS.order} on the next boot.
# Under UEFI the terminal is the firmware's console, which OVMF (and firmware
# with console redirection) copies to the serial port: GRUB's own serial
# terminal beside it would print every line twice.
if [ "$grub_platform" = "efi" ]; then
  terminal_input console
  terminal_output console
else
  serial --unit=0 --speed=115200
  terminal_input serial console
  terminal_output serial console
fi
set timeout=0
${GRUB_DEFAULTS.map(([k, v]) => `set ${k}=${quote(v)}`).join("\n")}
load_env ${loaded}
regexp --set=1:bootdisk '^([^,]+)' "$root"
set slot=""
set trial=0
for s in $${ENV_KEYS.order}; do
  if [ -z "$slot" ]; then
${perSlot("    ", (s) => `set ok="$${ENV_KEYS.ok(s)}"; set try="$${ENV_KEYS.try(s)}"`)}
    if [ "$ok" = "1" ]; then
      set slot="$s"
    elif [ "$try" = "1" ]; then
      set slot="$s"
      set trial=1
${perSlot("      ", (s) => `set ${ENV_KEYS.try(s)}=0; save_env ${ENV_KEYS.try(s)}`)}
    fi
  fi
done
if [ -z "$slot" ]; then
  echo "ooo: no bootable slot (${[ENV_KEYS.order, ...SLOTS.map(ENV_KEYS.ok)].map((k) => `${k}=$${k}`).join(" ")}); trying ${SLOTS[0]}"
  set slot=${SLOTS[0]}
fi
${partition}
probe --set=partuuid --part-uuid ($bootdisk,$part)
echo "ooo: booting slot $slot from ($bootdisk,$part) trial=$trial"
linux ($bootdisk,$part)/${SLOT_FILES.kernel} ${args} ${kernelCmdline} $${ENV_KEYS.extraCmdline}
initrd ($bootdisk,$part)/${SLOT_FILES.initrd}
boot
`;
}

// ---------------------------------------------------------------- kernel command line

/** Also read by shell in elements (state-layout's ooo-node-report, ooo-takeover's watchdog): wire/boot.test.ts holds them to these. */
export const CMDLINE_KEYS = { root: "root", slot: "ooo.slot", trial: "ooo.trial" } as const;

/** The kernel arguments that boot a slot, in order; `ro` has no value. Values may be GRUB variables. */
export function slotArgs(to: { partuuid: string; slot: string; trial: boolean | string }): [string, string | undefined][] {
  const trial = typeof to.trial === "boolean" ? (to.trial ? "1" : "0") : to.trial;
  return [
    [CMDLINE_KEYS.root, `PARTUUID=${to.partuuid}`],
    ["ro", undefined],
    [CMDLINE_KEYS.slot, to.slot],
    [CMDLINE_KEYS.trial, trial],
  ];
}

export function slotCmdline(to: Parameters<typeof slotArgs>[0]): string {
  return slotArgs(to)
    .map(([k, v]) => (v === undefined ? k : `${k}=${v}`))
    .join(" ");
}

export function cmdlineValue(cmdline: string, key: string): string | undefined {
  for (const word of cmdline.trim().split(/\s+/)) if (word.startsWith(`${key}=`)) return word.slice(key.length + 1);
  return undefined;
}

/** What the running kernel's command line says of the slot it booted (slotCmdline's inverse). */
export function bootedSlot(cmdline: string): { slot?: Slot; trial: boolean; root?: string; partuuid?: string } {
  const slot = cmdlineValue(cmdline, CMDLINE_KEYS.slot);
  const root = cmdlineValue(cmdline, CMDLINE_KEYS.root);
  return {
    slot: isSlot(slot) ? slot : undefined,
    trial: cmdlineValue(cmdline, CMDLINE_KEYS.trial) === "1",
    root,
    partuuid: root?.startsWith("PARTUUID=") ? root.slice("PARTUUID=".length) : undefined,
  };
}
