import { describe, expect, test } from "bun:test";
import { parseModuleIndex, selectModules } from "./modules.ts";

/** A cut of Debian 6.1's depmod files: ext4's hard and soft dependencies, virtio, a builtin, an alias. */
const index = parseModuleIndex({
  dep: [
    "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko",
    "kernel/lib/crc16.ko:",
    "kernel/fs/mbcache.ko:",
    "kernel/fs/jbd2/jbd2.ko:",
    "kernel/crypto/crc32c_generic.ko:",
    "kernel/arch/x86/crypto/crc32c-intel.ko:",
    "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko",
    "kernel/drivers/virtio/virtio_ring.ko:",
    "kernel/drivers/virtio/virtio.ko:",
    "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko",
  ].join("\n"),
  builtin: "kernel/drivers/tty/serial/8250/8250.ko\n",
  softdep: "# Soft dependencies extracted from modules themselves.\nsoftdep ext4 pre: crc32c\n",
  alias: "alias crypto-crc32c crc32c_generic\nalias crc32c crc32c_generic\nalias crc32c crc32c_intel\nalias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n",
});

describe("the modules a ramdisk carries", () => {
  test("hard dependencies come along; soft ones (by alias) are loaded first", () => {
    const s = selectModules(index, ["ext4", "virtio-blk"]);
    expect(s.load).toEqual(["crc32c_generic", "crc32c_intel", "ext4", "virtio_blk"]);
    expect(s.files).toEqual([
      "kernel/arch/x86/crypto/crc32c-intel.ko",
      "kernel/crypto/crc32c_generic.ko",
      "kernel/drivers/block/virtio_blk.ko",
      "kernel/drivers/virtio/virtio.ko",
      "kernel/drivers/virtio/virtio_ring.ko",
      "kernel/fs/ext4/ext4.ko",
      "kernel/fs/jbd2/jbd2.ko",
      "kernel/fs/mbcache.ko",
      "kernel/lib/crc16.ko",
    ]);
    expect(s.missing).toEqual([]);
  });

  test("PCI drivers are loaded for the devices present, the rest by name", () => {
    const s = selectModules(index, ["virtio-pci", "ext4", "virtio-blk"]);
    expect(s.pci).toEqual(["virtio_pci"]);
    expect(s.byName).toEqual(["crc32c_generic", "crc32c_intel", "ext4", "virtio_blk"]);
    expect(s.load).toEqual(["virtio_pci", ...s.byName]);
  });

  test("built in, or absent from this kernel: said, nothing copied", () => {
    const s = selectModules(index, ["8250", "ice", "ext4", "ext4"]);
    expect(s.builtin).toEqual(["8250"]);
    expect(s.missing).toEqual(["ice"]);
    expect(s.load.filter((m) => m === "ext4")).toHaveLength(1);
  });
});
