import { describe, expect, test } from "bun:test";
import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkDiskMap } from "../../lib/disk-map.ts";
import { indexStream } from "../../store/client/indexer.ts";
import { sha256File } from "../../lib/sparse.ts";
import { bootAndWait, findImage, overlayDisk, tempRunDir, removeRunDir } from "../../pipeline/boot.ts";
import { DISK } from "../../wire/boot.ts";
import { entriesText } from "../../wire/chunk-index.ts";
import { DiskMap, mappedBytes, packedBytes } from "../../wire/disk-map.ts";
import { ManifestV1, type Manifest } from "../../wire/manifest.ts";
import { buildTestImage, FIXTURE_ELEMENTS, ooo } from "../support/images.ts";
import { requireCommand } from "../support/require.ts";
import { tarDiff } from "../support/tar-diff.ts";

const MINUTES = 60_000;

describe("golden disk images", () => {
  test("ooo test-image boots the image directly and through GRUB under BIOS and UEFI, and every check passes", async () => {
    requireCommand("qemu-system-x86_64");
    const image = await buildTestImage("node");
    const r = await ooo(["test-image", image.base, "--json", "--accel", "tcg"]);
    expect(r.stderr).toContain("all checks passed");
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.boots.map((b: { mode: string }) => b.mode)).toEqual(["direct", "bios", "uefi"]);
    for (const boot of result.boots) {
      expect(boot.failures).toEqual([]);
      expect(boot.report.rootReadOnly).toBe(true);
      expect(boot.report.state).toMatchObject({ kind: "partition", mounted: true, writable: true });
      expect(boot.report.statePaths).toContainEqual(expect.objectContaining({ path: "/var/lib/ooo-demo", bind: true, writable: true }));
      expect(boot.seconds).toBeGreaterThan(0);
      // where the boot went: three stages that add up to the uptime of the report (to a hundredth each)
      const { kernel, initramfs, system } = boot.report.boot;
      expect(Math.min(kernel, initramfs, system)).toBeGreaterThan(0);
      expect(Math.abs(kernel + initramfs + system - boot.report.uptime)).toBeLessThan(0.02);
      expect(existsSync(boot.consoleLog)).toBe(true);
    }
    // Each disk boot went through the firmware it names, and GRUB printed each line once.
    const consoleOf = (mode: string) => readFileSync(result.boots.find((b: { mode: string }) => b.mode === mode).consoleLog, "utf8");
    expect(consoleOf("uefi")).toContain("BdsDxe: starting");
    expect(consoleOf("bios")).not.toContain("BdsDxe");
    for (const mode of ["bios", "uefi"]) expect(consoleOf(mode).match(/ooo: booting slot A/g)).toHaveLength(1);
  }, 8 * MINUTES);

  test("test-image --boot names what it does not know, before anything boots", async () => {
    const r = await ooo(["test-image", "/nonexistent", "--boot", "bios,floppy"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--boot: unknown boot 'floppy' (direct, bios, uefi, disk or all)");
  });

  test("data under a state path survives a power cut and a reboot; the rest of the node does not", async () => {
    requireCommand("qemu-system-x86_64");
    const built = await buildTestImage("node");
    const image = findImage(built.base);
    const runDir = tempRunDir();
    try {
      const disk = await overlayDisk(image, runDir);
      const boot = () =>
        bootAndWait({ image, mode: "direct", disk, runDir, consoleLog: join(runDir, "console.log"), accel: "tcg", debugChannel: true });

      const first = await boot();
      const sh = (cmd: string) => first.vm.channel!.exec(cmd);
      expect((await sh("cat /var/lib/ooo-demo/seed.txt")).output.trim()).toBe("pristine");
      expect((await sh("echo precious > /var/lib/ooo-demo/data.txt && echo scratch > /var/tmp/scratch.txt && sync")).status).toBe(0);
      expect((await sh("touch /usr/should-fail")).status).not.toBe(0); // / is read-only
      expect((await sh("echo volatile > /etc/ooo-volatile")).status).toBe(0); // /etc is a volatile overlay
      const machineId = (await sh("cat /etc/machine-id")).output.trim();
      expect(machineId).toMatch(/^[0-9a-f]{32}$/);
      await first.vm.kill(); // no clean shutdown

      const second = await boot();
      const sh2 = (cmd: string) => second.vm.channel!.exec(cmd);
      expect((await sh2("cat /var/lib/ooo-demo/data.txt")).output.trim()).toBe("precious");
      expect((await sh2("cat /var/lib/ooo-demo/seed.txt")).output.trim()).toBe("pristine");
      expect((await sh2("test -e /var/tmp/scratch.txt; echo $?")).output.trim()).toBe("1");
      expect((await sh2("test -e /etc/ooo-volatile; echo $?")).output.trim()).toBe("1");
      expect((await sh2("cat /etc/machine-id")).output.trim()).toBe(machineId);
      await second.vm.kill();
    } finally {
      removeRunDir(runDir);
    }
  }, 8 * MINUTES);

  test("the manifest names every artifact with the sha256 of its file", async () => {
    const image = await buildTestImage("node");
    const manifest = ManifestV1.parse(JSON.parse(readFileSync(`${image.base}.manifest.json`, "utf8")));
    const types = manifest.artifacts.map((a) => a.type).sort();
    expect(types).toEqual(["disk-map", "disk-pack", "initrd", "raw", "tar", "tar-entries", "vmlinuz"]);
    for (const a of manifest.artifacts) {
      const file = join(image.base, "..", a.file);
      expect(sha256File(file)).toEqual({ sha256: a.sha256, size: a.size });
    }
    // The entries beside the tar are the tar's, in the chunk index's form: what a signed manifest vouches for.
    const tar = manifest.artifacts.find((a) => a.type === "tar")!;
    const listed = await indexStream(createReadStream(join(image.base, "..", tar.file), { highWaterMark: 1 << 20 }), undefined, undefined, { entries: true });
    expect(readFileSync(`${image.base}.entries.json`, "utf8")).toBe(entriesText(listed.entries!));
    // The map is of this raw disk, and true of it; a deploy fetches only its chunks (~a fifth of the disk).
    const raw = manifest.artifacts.find((a) => a.type === "raw")!;
    const map = DiskMap.parse(JSON.parse(readFileSync(`${image.base}.disk-map.json`, "utf8")));
    expect(map.disk).toEqual({ size: raw.size, sha256: raw.sha256 });
    expect(checkDiskMap(`${image.base}.raw`, map)).toEqual([]);
    expect(mappedBytes(map)).toBeLessThan(raw.size / 3);
    // Its pack is the chunks compressed, one frame each (each frame proven by the builder): about a third of them.
    const pack = manifest.artifacts.find((a) => a.type === "disk-pack")!;
    expect(packedBytes(map)).toBe(pack.size);
    expect(pack.size).toBeLessThan(mappedBytes(map) / 2);
    expect(manifest.digest).toBe(`sha256:${manifest.artifacts.find((a) => a.type === "tar")!.sha256}`);
    expect(manifest.packages.map((p) => p.name)).toContain("systemd");
    expect(manifest.statePaths).toEqual(["/var/lib/ooo-demo"]);
    expect(manifest.elements.map((e) => e.name)).toContain("state-layout");
    expect(manifest.boot?.partUuids[DISK.rootA.name]).toMatch(/^[0-9a-f-]{36}$/);
  }, 8 * MINUTES);

  test("rebuilding the tiny base without caches gives the same digest and the same bytes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ooo-repro-"));
    try {
      const manifests: Manifest[] = [];
      for (const n of [1, 2]) {
        // Another time zone the second time: the EFI system partition's FAT keeps local times.
        const env = n === 2 ? { TZ: "Pacific/Kiritimati" } : undefined;
        const r = await ooo(["build-image", "--no-cache", "-o", join(dir, `tiny${n}`), "-t", "tar,rootfs,raw,qcow2", "busybox-base"], { env });
        expect(r.stderr).toContain("image digest");
        expect(r.code).toBe(0);
        manifests.push(ManifestV1.parse(JSON.parse(readFileSync(join(dir, `tiny${n}.manifest.json`), "utf8"))));
      }
      const strip = (m: Manifest) => m.artifacts.map((a) => [a.type, a.sha256, a.size]);
      expect(manifests[1]!.digest).toBe(manifests[0]!.digest);
      expect(strip(manifests[1]!)).toEqual(strip(manifests[0]!));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 5 * MINUTES);

  test("rebuilding the Debian golden image without caches gives the same digest and the same bytes", async () => {
    const shared = await buildTestImage("node");
    const dir = mkdtempSync(join(tmpdir(), "ooo-repro-"));
    try {
      const r = await ooo([
        "build-image",
        "--no-cache",
        "-o",
        join(dir, "node"),
        "-t",
        "raw,tar",
        "--elements-path",
        FIXTURE_ELEMENTS,
        "debian-minimal",
        "ooo-node",
        "demo-state",
        "agent-demo",
      ]);
      expect(r.code).toBe(0);
      const cold = ManifestV1.parse(JSON.parse(readFileSync(join(dir, "node.manifest.json"), "utf8")));
      if (cold.digest !== shared.manifest.digest) {
        // Say which files differ, so a flaky difference can be chased down.
        const diffs = await tarDiff(`${shared.base}.tar`, join(dir, "node.tar"));
        throw new Error(`the cold rebuild's digest differs (${cold.digest} vs ${shared.manifest.digest}):\n  ${diffs.join("\n  ")}`);
      }
      const bytes = (m: typeof cold) => m.artifacts.map((a) => [a.type, a.sha256]).sort();
      expect(bytes(cold)).toEqual(bytes(shared.manifest));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 10 * MINUTES);

  describe("bad input gets a clear error and leaves no output", () => {
    const cases: [string, string[], RegExp][] = [
      ["image size too small for the content", ["-t", "raw", "--image-size", "0.05", "busybox-base"], /image-size .* is too small/],
      ["unknown output type", ["-t", "raw,floppy", "busybox-base"], /unknown output type 'floppy'/],
      ["a state path that is not absolute", ["-t", "raw", "--elements-path", FIXTURE_ELEMENTS, "busybox-base", "bad-state-path"], /bad-state-path: state-paths: .*must be absolute/],
    ];
    for (const [name, args, message] of cases) {
      test(name, async () => {
        const dir = mkdtempSync(join(tmpdir(), "ooo-bad-"));
        try {
          const r = await ooo(["build-image", "-o", join(dir, "out"), ...args]);
          expect(r.code).not.toBe(0);
          expect(r.stderr).toMatch(message);
          expect(r.stderr).not.toContain("internal error");
          // Only the log of the failed build may remain.
          expect(readdirSync(dir).filter((f) => f !== "out.log")).toEqual([]);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }, 2 * MINUTES);
    }
  });
});
