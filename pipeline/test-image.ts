import { basename } from "node:path";
import { log } from "../lib/log.ts";
import type { Accel } from "../lib/qemu/accel.ts";
import type { ReadyReport } from "../wire/ready-report.ts";
import { bootAndWait, checkReport, findImage, overlayDisk, removeRunDir, tempRunDir, type BootPath } from "./boot.ts";
import { ImageChecksFailed } from "./errors.ts";

export interface TestImageResult {
  image: string;
  digest: string;
  boots: { mode: BootPath; seconds: number; consoleLog: string; report: ReadyReport; failures: string[] }[];
}

/**
 * `ooo test-image`: boot a built image in qemu — directly from its kernel and
 * initrd, and through its own disk bootloader under legacy BIOS (SeaBIOS)
 * and under UEFI (OVMF) — wait for the node's ready
 * line on the serial console and check what a golden node must be: / read
 * only, /mnt/state the state partition and writable, every declared state
 * path bind-mounted from it, no failed unit. The image file is never
 * changed (the VM writes to a copy-on-write overlay).
 */
export async function testImage(options: {
  image: string;
  modes: BootPath[];
  accel: "auto" | Accel;
  timeoutSeconds: number;
}): Promise<TestImageResult> {
  const image = findImage(options.image);
  const result: TestImageResult = { image: image.base, digest: image.manifest.digest, boots: [] };
  const problems: { mode: BootPath; failures: string[]; consoleLog: string }[] = [];
  for (const mode of options.modes) {
    const consoleLog = `${image.base}.console-${mode}.log`;
    const runDir = tempRunDir();
    try {
      await log.step(`${mode} boot of ${basename(image.base)}`, async () => {
        const disk = await overlayDisk(image, runDir);
        const node = await bootAndWait({ image, mode, disk, runDir, consoleLog, accel: options.accel, timeoutSeconds: options.timeoutSeconds });
        await node.vm.kill();
        const failures = checkReport(node.report, image.manifest);
        const b = node.report.boot;
        const where = b ? `: kernel ${b.kernel}s, initramfs ${b.initramfs}s, system ${b.system}s` : "";
        log.info(`ready after ${node.seconds.toFixed(1)}s (slot ${node.report.slot}${where}); ${failures.length ? `${failures.length} check(s) failed` : "all checks passed"}`);
        result.boots.push({ mode, seconds: Number(node.seconds.toFixed(2)), consoleLog, report: node.report, failures });
        if (failures.length) problems.push({ mode, failures, consoleLog });
      });
    } finally {
      removeRunDir(runDir);
    }
  }
  if (problems.length) {
    const first = problems[0]!;
    throw new ImageChecksFailed(first.mode, problems.flatMap((p) => p.failures.map((f) => `${p.mode}: ${f}`)), first.consoleLog);
  }
  return result;
}
