import { dlopen, FFIType, ptr } from "bun:ffi";
import { describeErrno } from "../../lib/errno.ts";

/**
 * The few system calls the deploy ramdisk makes that Node has no API for,
 * by bun:ffi into libc (the ramdisk carries no util-linux for blkdiscard,
 * blockdev or kexec): zeroing ranges of a disk without writing zeros,
 * re-reading a partition table, a block device's size, and the last
 * reboot — into a loaded kernel, or off.
 */
const libc = dlopen("libc.so.6", {
  ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  fallocate: { args: [FFIType.i32, FFIType.i32, FFIType.i64, FFIType.i64], returns: FFIType.i32 },
  reboot: { args: [FFIType.i32], returns: FFIType.i32 },
  sync: { args: [], returns: FFIType.void },
}).symbols;

// linux/fs.h
const BLKRRPART = 0x125f;
const BLKGETSIZE64 = 0x80081272;
const BLKZEROOUT = 0x127f;
const BLKFLSBUF = 0x1261;
// linux/falloc.h
const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;
const FALLOC_FL_ZERO_RANGE = 0x10;
// linux/reboot.h
const LINUX_REBOOT_CMD_KEXEC = 0x45584543;
const LINUX_REBOOT_CMD_POWER_OFF = 0x4321fedc;
const LINUX_REBOOT_CMD_RESTART = 0x01234567;

export class SyscallFailed extends Error {}

function check(r: number, what: string) {
  if (r !== 0) throw new SyscallFailed(`${what}: ${describeErrno()}`);
}

/** Zeros in [offset, offset+length) of a block device: the device's own write-zeroes (or unmap) where it has one. */
export function zeroOutBlock(fd: number, offset: number, length: number) {
  const range = new BigUint64Array([BigInt(offset), BigInt(length)]);
  check(libc.ioctl(fd, BLKZEROOUT, ptr(range)), `BLKZEROOUT ${offset}+${length}`);
}

/** Zeros in a range of a regular file as a hole (it stays thin); else as unwritten extents. */
export function zeroOutFile(fd: number, offset: number, length: number) {
  if (libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) === 0) return;
  check(libc.fallocate(fd, FALLOC_FL_ZERO_RANGE, offset, length), `fallocate zero range ${offset}+${length}`);
}

export function blockDeviceSize(fd: number): number {
  const size = new BigUint64Array(1);
  check(libc.ioctl(fd, BLKGETSIZE64, ptr(size)), "BLKGETSIZE64");
  return Number(size[0]);
}

/** The kernel forgets a disk's partitions and reads its table again (partition nodes follow in /dev). */
export function rereadPartitions(fd: number) {
  check(libc.ioctl(fd, BLKRRPART, null), "re-reading the partition table (BLKRRPART)");
}

/** Drop the device's cached blocks, so that what another path to the disk wrote is read (BLKFLSBUF). */
export function flushBuffers(fd: number) {
  check(libc.ioctl(fd, BLKFLSBUF, null), "BLKFLSBUF");
}

export function syncAll() {
  libc.sync();
}

/** Start the kernel loaded with kexec_file_load. Returns only if the kernel refused. */
export function rebootIntoLoadedKernel(): string {
  libc.sync();
  libc.reboot(LINUX_REBOOT_CMD_KEXEC);
  return describeErrno();
}

/** Power off now (the disks were synced). Returns only if the kernel refused. */
export function powerOff(): string {
  libc.sync();
  libc.reboot(LINUX_REBOOT_CMD_POWER_OFF);
  return describeErrno();
}

/** Reset through the firmware (the disks were synced). Returns only if the kernel refused. */
export function restart(): string {
  libc.sync();
  libc.reboot(LINUX_REBOOT_CMD_RESTART);
  return describeErrno();
}
