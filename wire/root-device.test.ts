import { describe, expect, test } from "bun:test";
import type { Disk } from "./deploy.ts";
import { normaliseMac, RootDeviceHints } from "./deploy.ts";
import { chooseRootDisk } from "./root-device.ts";

const GiB = 2 ** 30;
const disks: Disk[] = [
  { name: "vda", size: 20 * GiB, serial: "ROOT-1 ", model: "QEMU HARDDISK", by_path: "/dev/disk/by-path/pci-0000:00:04.0", rotational: true },
  { name: "vdb", size: 8 * GiB, serial: "small", wwn: "0x5000c500a1b2c3d4", rotational: false },
  { name: "vdc", size: 4 * GiB, serial: "tiny" },
];

describe("chooseRootDisk", () => {
  const cases: [string, RootDeviceHints, number, string][] = [
    ["no hints: the smallest disk that holds the image", {}, 5 * GiB, "vdb"],
    ["no hints, a small image: the smallest of all", {}, 1 * GiB, "vdc"],
    ["serial, trimmed and case-insensitive", { serial: "root-1" }, 1 * GiB, "vda"],
    ["wwn", { wwn: "0x5000C500A1B2C3D4" }, 1 * GiB, "vdb"],
    ["size exact in GiB", { size: 20 }, 1 * GiB, "vda"],
    ["size with an operator", { size: ">= 5" }, 1 * GiB, "vdb"],
    ["size with <", { size: "< 5" }, 1 * GiB, "vdc"],
    ["by_path", { by_path: "/dev/disk/by-path/pci-0000:00:04.0" }, 1 * GiB, "vda"],
    ["name with or without /dev/", { name: "/dev/vdc" }, 1 * GiB, "vdc"],
    ["rotational false", { rotational: false }, 1 * GiB, "vdb"],
    ["two hints, both must match", { model: "qemu harddisk", size: 20 }, 1 * GiB, "vda"],
  ];
  for (const [what, hints, image, want] of cases)
    test(what, () => {
      const got = chooseRootDisk(disks, image, RootDeviceHints.parse(hints));
      expect("disk" in got ? got.disk.name : got.problem).toBe(want);
    });

  test("a hint no disk matches names each disk and what differs", () => {
    const got = chooseRootDisk(disks, 1 * GiB, { serial: "nope", size: 20 });
    expect("problem" in got && got.problem).toContain("vda (20.0 GiB, serial ROOT-1, QEMU HARDDISK) differs in serial");
    expect("problem" in got && got.problem).toContain("vdc (4.0 GiB, serial tiny) differs in size, serial");
  });
  test("the matching disk is too small: said so, with the sizes", () => {
    const got = chooseRootDisk(disks, 6 * GiB, { serial: "tiny" });
    expect("problem" in got && got.problem).toBe("no disk that matches the root device hints holds the image (6.00 GiB): vdc (4.0 GiB, serial tiny)");
  });
  test("no disk at all", () => expect(chooseRootDisk([], 1)).toEqual({ problem: "the machine has no disk" }));
  test("hints are strict: a misspelt hint is refused", () => expect(RootDeviceHints.safeParse({ serail: "x" }).success).toBe(false));
});

describe("normaliseMac", () => {
  test.each([
    ["52:54:00:AB:CD:EF", "52:54:00:ab:cd:ef"],
    ["52-54-00-ab-cd-ef", "52:54:00:ab:cd:ef"],
    ["01-52-54-00-ab-cd-ef", "52:54:00:ab:cd:ef"],
    ["52:54:00:ab:cd", undefined],
    ["zz:54:00:ab:cd:ef", undefined],
  ])("%s", (input, want) => expect(normaliseMac(input)).toBe(want));
});
