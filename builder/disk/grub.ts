import { closeSync, existsSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { MissingRequirement } from "../../lib/errors.ts";
import { run } from "../../lib/run.ts";
import { BOOT_FILES, DISK, FILESYSTEMS, SLOT_PARTITIONS } from "../../wire/boot.ts";
import { SECTOR, type Partition } from "./layout.ts";

/**
 * GRUB for SeaBIOS, installed without grub-install (which wants a real block
 * device): we build the core image with grub-mkimage and do the two things
 * grub-bios-setup does for a GPT disk with a BIOS boot partition —
 *  1. put boot.img's code into the MBR (keeping the protective partition
 *     table), pointing it at the first sector of the core image;
 *  2. write the core image into the BIOS boot partition, with the blocklist
 *     in its first sector (diskboot.img) pointing at the rest.
 * Offsets are GRUB's (include/grub/i386/pc/boot.h):
 */
const BOOT_KERNEL_SECTOR = 0x5c; // u64: LBA of the core image's first sector
const BOOT_DRIVE_CHECK = 0x66; // 2-byte jmp replaced by NOPs for hard disks
const BOOT_BPB_START = 0x03;
const BOOT_BPB_END = 0x5a;
const MBR_CODE_END = 440; // disk signature and partition table follow
const BLOCKLIST_SIZE = 12; // u64 start, u16 length, u16 segment, at the end of sector 0

const GRUB_DIR = "/usr/lib/grub/i386-pc";

/**
 * Everything the core image needs; nothing is loaded from disk at boot.
 * GRUB reads the boot partition (grub.cfg, the environment block) and the
 * root slots (kernel, initrd): their filesystems' modules come from the contract.
 */
const FS_MODULES = [DISK.boot, ...Object.values(SLOT_PARTITIONS)].map((p) => FILESYSTEMS[p.fs].grubModule);
const MODULES = [
  ...new Set([
    "biosdisk",
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
  ]),
];

export function requireGrub() {
  if (!existsSync(join(GRUB_DIR, "boot.img")) || !Bun.which("grub-mkimage"))
    throw new MissingRequirement("GRUB for BIOS (grub-pc-bin, grub-common)", "apt-get install grub-pc-bin grub-common");
}

/** Build the core image and install it into `file` (MBR + BIOS boot partition). */
export async function installGrubBios(options: {
  file: string;
  biosBoot: Partition;
  bootFsUuid: string;
  scratch: string;
}) {
  requireGrub();
  const early = join(options.scratch, "grub-early.cfg");
  await Bun.write(early, `search --no-floppy --fs-uuid --set=root ${options.bootFsUuid}\nset prefix=($root)/${BOOT_FILES.grubDir}\n`);
  const core = join(options.scratch, "core.img");
  await run("grub-mkimage", ["-O", "i386-pc", "-d", GRUB_DIR, "-o", core, "-c", early, "-p", `/${BOOT_FILES.grubDir}`, ...MODULES], {
    what: "building GRUB's core image (grub-mkimage)",
  });

  const coreImage = readFileSync(core);
  const sectors = Math.ceil(coreImage.length / SECTOR);
  const padded = Buffer.alloc(sectors * SECTOR);
  coreImage.copy(padded);
  if (padded.length > options.biosBoot.size) throw new Error(`GRUB core image (${padded.length} B) does not fit the BIOS boot partition`);
  const embedLba = options.biosBoot.offset / SECTOR;
  const list = SECTOR - BLOCKLIST_SIZE;
  padded.writeBigUInt64LE(BigInt(embedLba + 1), list);
  padded.writeUInt16LE(sectors - 1, list + 8); // the segment (0x820) stays as grub-mkimage set it

  const bootImg = readFileSync(join(GRUB_DIR, "boot.img"));
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
