import { closeSync, existsSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { MissingRequirement } from "../../lib/errors.ts";
import { run } from "../../lib/run.ts";
import { BOOT_FILES, DISK, FILESYSTEMS, SLOT_PARTITIONS } from "../../wire/boot.ts";
import { SECTOR, type Partition } from "./layout.ts";

/**
 * GRUB for both firmwares, installed without grub-install (which wants a
 * real block device and a mounted ESP):
 *  - UEFI: grub-mkimage -O x86_64-efi makes one EFI binary, which the
 *    builder puts on the EFI system partition at the removable path
 *    (wire/boot.ts: BOOT_FILES.efiBinary);
 *  - BIOS: we build the i386-pc core image with grub-mkimage and do the two
 *    things grub-bios-setup does for a GPT disk with a BIOS boot partition —
 *     1. put boot.img's code into the MBR (keeping the protective partition
 *        table), pointing it at the first sector of the core image;
 *     2. write the core image into the BIOS boot partition, with the blocklist
 *        in its first sector (diskboot.img) pointing at the rest.
 * Both images carry the same early config (find the boot partition by its
 * filesystem UUID, load grub.cfg from there) and the same modules, so one
 * grub.cfg and one environment block choose the slot in both modes.
 *
 * Offsets are GRUB's (include/grub/i386/pc/boot.h):
 */
const BOOT_KERNEL_SECTOR = 0x5c; // u64: LBA of the core image's first sector
const BOOT_DRIVE_CHECK = 0x66; // 2-byte jmp replaced by NOPs for hard disks
const BOOT_BPB_START = 0x03;
const BOOT_BPB_END = 0x5a;
const MBR_CODE_END = 440; // disk signature and partition table follow
const BLOCKLIST_SIZE = 12; // u64 start, u16 length, u16 segment, at the end of sector 0

const BIOS_DIR = "/usr/lib/grub/i386-pc";
const EFI_DIR = "/usr/lib/grub/x86_64-efi";

/**
 * Everything the images need; nothing is loaded from disk at boot.
 * GRUB reads the boot partition (grub.cfg, the environment block) and the
 * root slots (kernel, initrd): their filesystems' modules come from the contract.
 */
const FS_MODULES = [DISK.boot, ...Object.values(SLOT_PARTITIONS)].map((p) => FILESYSTEMS[p.fs].grubModule);
const MODULES = [
  "part_gpt",
  ...FS_MODULES,
  "normal",
  "configfile",
  "search",
  "search_fs_uuid",
  "loadenv",
  "test",
  "linux",
  "echo",
  "probe",
  "regexp",
  "serial",
  "terminal",
  "sleep",
  "reboot",
  "halt",
];
/** biosdisk: the BIOS's disk calls. efi_gop: a video mode to hand the kernel (else GRUB warns and boots blind). */
const PLATFORM_MODULES = { bios: ["biosdisk"], efi: ["efi_gop"] };
const modules = (platform: keyof typeof PLATFORM_MODULES) => [...new Set([...PLATFORM_MODULES[platform], ...MODULES])];

export function requireGrub() {
  if (!existsSync(join(BIOS_DIR, "boot.img")) || !Bun.which("grub-mkimage"))
    throw new MissingRequirement("GRUB for BIOS (grub-pc-bin, grub-common)", "apt-get install grub-pc-bin grub-common");
  if (!existsSync(join(EFI_DIR, "kernel.img")))
    throw new MissingRequirement("GRUB for UEFI (grub-efi-amd64-bin)", "apt-get install grub-efi-amd64-bin");
}

/** The config both images start with: the boot partition by its filesystem UUID, then grub.cfg from there. */
async function writeEarlyConfig(scratch: string, bootFsUuid: string): Promise<string> {
  const early = join(scratch, "grub-early.cfg");
  await Bun.write(early, `search --no-floppy --fs-uuid --set=root ${bootFsUuid}\nset prefix=($root)/${BOOT_FILES.grubDir}\n`);
  return early;
}

async function mkimage(format: "i386-pc" | "x86_64-efi", out: string, options: { bootFsUuid: string; scratch: string }) {
  const [dir, platform] = format === "i386-pc" ? [BIOS_DIR, "bios" as const] : [EFI_DIR, "efi" as const];
  const early = await writeEarlyConfig(options.scratch, options.bootFsUuid);
  await run("grub-mkimage", ["-O", format, "-d", dir, "-o", out, "-c", early, "-p", `/${BOOT_FILES.grubDir}`, ...modules(platform)], {
    what: `building GRUB's ${format} image (grub-mkimage)`,
  });
}

/** GRUB's EFI binary, for the EFI system partition's removable path. */
export async function makeGrubEfi(options: { out: string; bootFsUuid: string; scratch: string }) {
  requireGrub();
  await mkimage("x86_64-efi", options.out, options);
}

/** Build the core image and install it into `file` (MBR + BIOS boot partition). */
export async function installGrubBios(options: {
  file: string;
  biosBoot: Partition;
  bootFsUuid: string;
  scratch: string;
}) {
  requireGrub();
  const core = join(options.scratch, "core.img");
  await mkimage("i386-pc", core, options);

  const coreImage = readFileSync(core);
  const sectors = Math.ceil(coreImage.length / SECTOR);
  const padded = Buffer.alloc(sectors * SECTOR);
  coreImage.copy(padded);
  if (padded.length > options.biosBoot.size) throw new Error(`GRUB core image (${padded.length} B) does not fit the BIOS boot partition`);
  const embedLba = options.biosBoot.offset / SECTOR;
  const list = SECTOR - BLOCKLIST_SIZE;
  padded.writeBigUInt64LE(BigInt(embedLba + 1), list);
  padded.writeUInt16LE(sectors - 1, list + 8); // the segment (0x820) stays as grub-mkimage set it

  const bootImg = readFileSync(join(BIOS_DIR, "boot.img"));
  const fd = openSync(options.file, "r+");
  try {
    const mbr = Buffer.alloc(SECTOR);
    readSync(fd, mbr, 0, SECTOR, 0);
    const code = Buffer.from(bootImg.subarray(0, MBR_CODE_END));
    mbr.copy(code, BOOT_BPB_START, BOOT_BPB_START, BOOT_BPB_END); // keep whatever BPB the sector had
    code.writeBigUInt64LE(BigInt(embedLba), BOOT_KERNEL_SECTOR);
    code[BOOT_DRIVE_CHECK] = 0x90;
    code[BOOT_DRIVE_CHECK + 1] = 0x90;
    code.copy(mbr, 0);
    writeSync(fd, mbr, 0, SECTOR, 0);
    writeSync(fd, padded, 0, padded.length, options.biosBoot.offset);
  } finally {
    closeSync(fd);
  }
}
