import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { deployBytes, chooseRootDisk } from "../../wire/root-device.ts";
import { byPath } from "./by-path.ts";
import { inventory } from "./inventory.ts";

/**
 * A fake /sys and /proc laid out as a Debian 6.1 kernel lays them out under
 * qemu (virtio-blk, virtio-scsi, AHCI, NVMe) — the paths and attribute
 * files inventory.ts and by-path.ts read, and no more.
 */
const root = mkdtempSync(join(tmpdir(), "ooo-fake-sysfs-"));
const sys = join(root, "sys");
const proc = join(root, "proc");
afterAll(() => rmSync(root, { recursive: true, force: true }));

function file(path: string, content: string | Buffer) {
  mkdirSync(dirname(join(sys, path)), { recursive: true });
  writeFileSync(join(sys, path), content);
}
function link(path: string, target: string) {
  mkdirSync(dirname(join(sys, path)), { recursive: true });
  symlinkSync(relative(dirname(join(sys, path)), join(sys, target)), join(sys, path));
}
/** A device folder: its subsystem link, and a uevent with its DEVTYPE. */
function device(path: string, subsystem: string, devtype?: string) {
  mkdirSync(join(sys, path), { recursive: true });
  link(`${path}/subsystem`, subsystem.startsWith("class/") ? subsystem : `bus/${subsystem}`);
  file(`${path}/uevent`, devtype ? `DEVTYPE=${devtype}\n` : "");
}
/** A block device under `parent`, linked from /sys/class/block, of `sectors` 512-byte sectors. */
function block(parent: string, name: string, sectors: number, extra: Record<string, string> = {}) {
  const dir = `${parent}/block/${name}`;
  device(dir, "class/block", "disk");
  link(`class/block/${name}`, dir);
  link(`${dir}/device`, parent);
  file(`${dir}/size`, `${sectors}\n`);
  file(`${dir}/removable`, "0\n");
  file(`${dir}/queue/rotational`, "1\n");
  for (const [k, v] of Object.entries(extra)) file(`${dir}/${k}`, v);
  return dir;
}

const GiB = 2 ** 30;
const PCI = "devices/pci0000:00";
// virtio-blk with a serial (qemu's serial=)
device(`${PCI}/0000:00:04.0`, "pci");
device(`${PCI}/0000:00:04.0/virtio1`, "virtio");
block(`${PCI}/0000:00:04.0/virtio1`, "vda", (2 * GiB) / 512, { serial: "TOO-SMALL\n" });
const vdaPart = `${PCI}/0000:00:04.0/virtio1/block/vda/vda1`;
device(vdaPart, "class/block", "partition");
link("class/block/vda1", vdaPart);
file(`${vdaPart}/partition`, "1\n");
device(`${PCI}/0000:00:05.0`, "pci");
device(`${PCI}/0000:00:05.0/virtio2`, "virtio");
block(`${PCI}/0000:00:05.0/virtio2`, "vdb", (20 * GiB) / 512, { serial: "ROOT-DISK\n" });
// virtio-scsi: host2 (the only SCSI host beside it: rebased to 0), LUN 1
const vscsi = `${PCI}/0000:00:06.0/virtio3/host2`;
device(`${PCI}/0000:00:06.0`, "pci");
device(`${PCI}/0000:00:06.0/virtio3`, "virtio");
device(vscsi, "scsi", "scsi_host");
device(`${vscsi}/target2:0:0`, "scsi", "scsi_target");
device(`${vscsi}/target2:0:0/2:0:0:1`, "scsi", "scsi_device");
file(`${vscsi}/target2:0:0/2:0:0:1/vendor`, "QEMU    \n");
file(`${vscsi}/target2:0:0/2:0:0:1/model`, "QEMU HARDDISK   \n");
file(`${vscsi}/target2:0:0/2:0:0:1/wwid`, "naa.5000C500A1B2C3D4\n");
// VPD page 0x80: the unit serial number, space padded
file(`${vscsi}/target2:0:0/2:0:0:1/vpd_pg80`, Buffer.concat([Buffer.from([0, 0x80, 0, 12]), Buffer.from("SCSI-SER-1  ")]));
block(`${vscsi}/target2:0:0/2:0:0:1`, "sda", (8 * GiB) / 512);
// AHCI port 1, first device
const ata = `${PCI}/0000:00:1f.2/ata1`;
device(`${PCI}/0000:00:1f.2`, "pci");
mkdirSync(join(sys, ata), { recursive: true });
file("class/ata_port/ata1/port_no", "1\n");
device(`${ata}/host0`, "scsi", "scsi_host");
device(`${ata}/host0/target0:0:0`, "scsi", "scsi_target");
device(`${ata}/host0/target0:0:0/0:0:0:0`, "scsi", "scsi_device");
file(`${ata}/host0/target0:0:0/0:0:0:0/model`, "WDC WD40EFRX\n");
block(`${ata}/host0/target0:0:0/0:0:0:0`, "sdb", (4000 * GiB) / 512, { removable: "0\n" });
// NVMe namespace 1 of controller nvme0
const nvme = `${PCI}/0000:00:07.0/nvme/nvme0`;
device(`${PCI}/0000:00:07.0`, "pci");
device(nvme, "class/nvme");
link("class/nvme/nvme0", nvme);
file(`${nvme}/model`, "QEMU NVMe Ctrl\n");
file(`${nvme}/serial`, "NVME-SER\n");
block(nvme, "nvme0n1", (16 * GiB) / 512, { nsid: "1\n", wwid: "eui.0025385b71b0c2a3\n", "queue/rotational": "0\n" });
// Not disks: a loop device, a CD drive
device("devices/virtual/block/loop0", "class/block", "disk");
link("class/block/loop0", "devices/virtual/block/loop0");
file("devices/virtual/block/loop0/size", "1000\n");
// NICs: one with a link, lo (no device)
device(`${PCI}/0000:00:03.0`, "pci");
device(`${PCI}/0000:00:03.0/virtio0`, "virtio");
mkdirSync(join(sys, `${PCI}/0000:00:03.0/virtio0/net/eth0`), { recursive: true });
link("class/net/eth0", `${PCI}/0000:00:03.0/virtio0/net/eth0`);
link(`${PCI}/0000:00:03.0/virtio0/net/eth0/device`, `${PCI}/0000:00:03.0/virtio0`);
file(`${PCI}/0000:00:03.0/virtio0/net/eth0/address`, "52:54:00:12:34:56\n");
file(`${PCI}/0000:00:03.0/virtio0/net/eth0/carrier`, "1\n");
mkdirSync(join(sys, "devices/virtual/net/lo"), { recursive: true });
link("class/net/lo", "devices/virtual/net/lo");
file("devices/virtual/net/lo/address", "00:00:00:00:00:00\n");
// Memory: 8 blocks of 128 MiB online, one offline
file("devices/system/memory/block_size_bytes", "8000000\n");
for (let i = 0; i < 9; i++) file(`devices/system/memory/memory${i}/online`, i < 8 ? "1\n" : "0\n");
file("class/dmi/id/sys_vendor", "QEMU\n");
file("class/dmi/id/product_name", "Standard PC (i440FX + PIIX, 1996)\n");
mkdirSync(proc, { recursive: true });
writeFileSync(join(proc, "cpuinfo"), "processor\t: 0\nmodel name\t: QEMU TCG CPU version 2.5+\n\nprocessor\t: 1\nmodel name\t: QEMU TCG CPU version 2.5+\n");
writeFileSync(join(proc, "meminfo"), "MemTotal:        1000000 kB\n");

describe("by-path names, as udev's path_id composes them", () => {
  const cases: [string, string | undefined][] = [
    ["vda", "/dev/disk/by-path/pci-0000:00:04.0"],
    ["sda", "/dev/disk/by-path/pci-0000:00:06.0-scsi-0:0:0:1"],
    ["sdb", "/dev/disk/by-path/pci-0000:00:1f.2-ata-1.0"],
    ["nvme0n1", "/dev/disk/by-path/pci-0000:00:07.0-nvme-1"],
    ["loop0", undefined],
  ];
  for (const [name, want] of cases) test(name, () => expect(byPath(sys, name)).toBe(want));
});

describe("inventory from /sys and /proc", () => {
  const inv = inventory({ sys, proc });

  test("whole disks only, with size, serial, model, WWN, rotation", () => {
    expect(inv.disks.map((d) => d.name)).toEqual(["nvme0n1", "sda", "sdb", "vda", "vdb"]);
    const by = Object.fromEntries(inv.disks.map((d) => [d.name, d]));
    expect(by.vda).toMatchObject({ size: 2 * GiB, serial: "TOO-SMALL", rotational: true, removable: false });
    expect(by.vdb).toMatchObject({ size: 20 * GiB, serial: "ROOT-DISK", by_path: "/dev/disk/by-path/pci-0000:00:05.0" });
    expect(by.sda).toMatchObject({ vendor: "QEMU", model: "QEMU HARDDISK", serial: "SCSI-SER-1", wwn: "0x5000c500a1b2c3d4" });
    expect(by.sdb).toMatchObject({ size: 4000 * GiB, model: "WDC WD40EFRX" });
    expect(by.nvme0n1).toMatchObject({ serial: "NVME-SER", model: "QEMU NVMe Ctrl", wwn: "eui.0025385b71b0c2a3", rotational: false });
  });

  test("physical NICs with their MACs and link", () => {
    expect(inv.nics).toEqual([{ name: "eth0", mac: "52:54:00:12:34:56", link: true }]);
  });

  test("CPUs, memory from the online memory blocks, DMI, boot mode", () => {
    expect(inv.cpus).toEqual({ count: 2, model: "QEMU TCG CPU version 2.5+" });
    expect(inv.memory_bytes).toBe(8 * 128 * 2 ** 20);
    expect(inv.system).toEqual({ vendor: "QEMU", product: "Standard PC (i440FX + PIIX, 1996)" });
    expect(inv.boot_mode).toBe("bios");
  });

  test("the disk a deploy picks: by serial hint, and by default the smallest that holds image and config drive", () => {
    const pick = (bytes: number, hints = {}) => {
      const c = chooseRootDisk(inv.disks, deployBytes(bytes), hints);
      return "disk" in c ? c.disk.name : c.problem;
    };
    expect(pick(GiB, { serial: "root-disk" })).toBe("vdb");
    expect(pick(2 * GiB)).toBe("sda"); // vda is 2 GiB: the image fits, its config drive does not
    expect(pick(GiB, { serial: "nope" })).toContain("no disk matches");
  });
});
