import { closeSync, existsSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { MissingRequirement } from "../../lib/errors.ts";
import { run } from "../../lib/run.ts";
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

/** Everything the core image needs; nothing is loaded from disk at boot. */
const MODULES = [
  "biosdisk",
  "part_gpt",
  "ext2",
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

export function requireGrub() {
  if (!existsSync(join(GRUB_DIR, "boot.img")) || !Bun.which("grub-mkimage"))
    throw new MissingRequirement("GRUB for BIOS (grub-pc-bin, grub-common)", "apt-get install grub-pc-bin grub-common");
}

/** The slot-picking boot script. The environment block (grubenv) overrides the defaults. */
export function grubConfig(kernelCmdline: string): string {
  return `# ooo: boot the root slot the environment block (grubenv) picks.
# ORDER lists slots by preference. A slot boots if X_OK=1 (known good), or
# once "on trial" if X_TRY=1: the try is used up before booting, so a trial
# boot that never reaches "good" (the node marks it, with grub-editenv or
# ooo-agent) falls back to the next slot in ORDER on the next boot.
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set ORDER="A B"
set A_OK=1
set A_TRY=0
set B_OK=0
set B_TRY=0
set EXTRA_CMDLINE=""
load_env ORDER A_OK A_TRY B_OK B_TRY EXTRA_CMDLINE
regexp --set=1:bootdisk '^([^,]+)' "$root"
set slot=""
set trial=0
for s in $ORDER; do
  if [ -z "$slot" ]; then
    if [ "$s" = "A" ]; then set ok="$A_OK"; set try="$A_TRY"; fi
    if [ "$s" = "B" ]; then set ok="$B_OK"; set try="$B_TRY"; fi
    if [ "$ok" = "1" ]; then
      set slot="$s"
    elif [ "$try" = "1" ]; then
      set slot="$s"
      set trial=1
      if [ "$s" = "A" ]; then set A_TRY=0; save_env A_TRY; fi
      if [ "$s" = "B" ]; then set B_TRY=0; save_env B_TRY; fi
    fi
  fi
done
if [ -z "$slot" ]; then
  echo "ooo: no bootable slot (ORDER=$ORDER A_OK=$A_OK B_OK=$B_OK); trying A"
  set slot=A
fi
if [ "$slot" = "A" ]; then set part=gpt3; else set part=gpt4; fi
probe --set=partuuid --part-uuid ($bootdisk,$part)
echo "ooo: booting slot $slot from ($bootdisk,$part) trial=$trial"
linux ($bootdisk,$part)/vmlinuz root=PARTUUID=$partuuid ro ooo.slot=$slot ooo.trial=$trial ${kernelCmdline} $EXTRA_CMDLINE
initrd ($bootdisk,$part)/initrd.img
boot
`;
}

/** GRUB's environment block format: a 1024-byte file, `#`-padded. */
export function grubEnvBlock(vars: Record<string, string>): Buffer {
  const body = "# GRUB Environment Block\n" + Object.entries(vars).map(([k, v]) => `${k}=${v}\n`).join("");
  if (body.length > 1024) throw new Error("GRUB environment block overflow");
  return Buffer.from(body.padEnd(1024, "#"), "ascii");
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
  await Bun.write(early, `search --no-floppy --fs-uuid --set=root ${options.bootFsUuid}\nset prefix=($root)/grub\n`);
  const core = join(options.scratch, "core.img");
  await run("grub-mkimage", ["-O", "i386-pc", "-d", GRUB_DIR, "-o", core, "-c", early, "-p", "/grub", ...MODULES], {
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
