import { readFileSync, statSync } from "node:fs";
import { basename } from "node:path";
import { capture } from "../../../lib/run.ts";
import { encodeHeader, END_OF_ARCHIVE, padding } from "../../../lib/tar/encode.ts";
import { IRONIC_DISK_MAP_KEY, MapDownload, RootDeviceHints } from "../../../wire/deploy.ts";
import { DISK } from "../../../wire/boot.ts";
import type { CommandHandler } from "./commands.ts";
import { HARDWARE_MANAGER, ImageInfo, Step } from "./protocol.ts";
import { writeImage, type WriteTarget, type Written } from "./write-image.ts";

/**
 * The commands Ironic 21.4 sends for a whole-disk `direct` deploy with
 * cleaning off, in the order it sends them:
 *
 *   deploy.get_deploy_steps      the agent's steps: write_image only, at priority 0 (it runs because
 *                                Ironic's own deploy.write_image step, priority 80, calls it)
 *   deploy.execute_deploy_step   write_image: stream, verify, grow, config drive (in the background)
 *   standby.get_partition_uuids  the written disk's GUID ("root uuid" of a whole-disk image) and its ESP
 *   image.install_bootloader     UEFI only: nothing to do — ooo's GRUB sits at the ESP's removable path
 *   standby.sync                 flush
 *   standby.power_off            flush, then off (in the background: Ironic watches the BMC)
 *   log.collect_system_logs      the agent's logs as a tar.gz in base64 (on failure, by default)
 *
 * Anything else gets 404 naming it (commands.ts).
 */
export interface IronicMachine extends WriteTarget {
  sync(): void;
  /** Power the machine off (in the ramdisk it does not return). */
  powerOff(): void;
  /** Files that log.collect_system_logs sends. */
  logFiles: string[];
  /** The CA of the image URLs (the stack's), when the system's does not do. */
  ca?: string;
}

/** How long the agent waits before it powers the machine off: Ironic's request has its answer by then. */
const POWER_OFF_AFTER_MS = 1_000;

const DEPLOY_STEPS = [{ interface: "deploy", step: "write_image", priority: 0, reboot_requested: false, abortable: false, argsinfo: null }];

/** The golden disk's map, when ooo's driver put it in the node's instance_info (IRONIC_DISK_MAP_KEY). */
function mapOf(node: unknown): MapDownload | undefined {
  const raw = (node as { instance_info?: Record<string, unknown> } | undefined)?.instance_info?.[IRONIC_DISK_MAP_KEY];
  if (raw === undefined) return undefined;
  const parsed = MapDownload.safeParse(raw);
  if (!parsed.success) throw new Error(`the node's instance_info ${IRONIC_DISK_MAP_KEY} is no disk map download: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

/** The node's root device hints (instance_info wins over properties, as in Ironic). */
function hintsOf(node: unknown): RootDeviceHints | undefined {
  const n = node as { instance_info?: { root_device?: unknown }; properties?: { root_device?: unknown } } | undefined;
  const raw = n?.instance_info?.root_device ?? n?.properties?.root_device;
  if (raw === undefined) return undefined;
  const parsed = RootDeviceHints.safeParse(raw);
  if (!parsed.success) throw new Error(`the node's root_device hints are not ones ooo's agent knows: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

/** The logs as Ironic stores them: a gzipped tar, base64. */
export function logsArchive(files: string[]): string {
  const parts: Buffer[] = [];
  const now = Math.floor(Date.now() / 1000);
  for (const f of files) {
    let data: Buffer;
    try {
      if (!statSync(f).isFile()) continue;
      data = readFileSync(f);
    } catch {
      continue;
    }
    parts.push(encodeHeader({ path: basename(f), type: "file", mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: now }), data, padding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.from(Bun.gzipSync(Buffer.concat(parts))).toString("base64");
}

async function partitionUuids(written: Written | undefined) {
  if (!written) throw new Error("no image was written yet");
  const table = JSON.parse(await capture("sfdisk", ["-J", written.device])) as { partitiontable: { id?: string } };
  const esp = written.partitions.find((p) => p.name === DISK.boot.name);
  return { "root uuid": table.partitiontable.id?.toLowerCase() ?? null, "efi system partition uuid": esp?.uuid?.toLowerCase() ?? null, "PReP Boot partition uuid": null };
}

export function ironicHandlers(m: IronicMachine): Record<string, CommandHandler> {
  let written: Written | undefined;
  return {
    "deploy.get_deploy_steps": {
      run: async () => ({ deploy_steps: { [HARDWARE_MANAGER.name]: DEPLOY_STEPS }, hardware_manager_version: { [HARDWARE_MANAGER.name]: HARDWARE_MANAGER.version } }),
    },
    "deploy.execute_deploy_step": {
      background: true,
      run: async (params) => {
        const step = Step.parse(params.step);
        const version = (params.deploy_version as Record<string, string> | undefined)?.[HARDWARE_MANAGER.name];
        if (version !== undefined && version !== HARDWARE_MANAGER.version)
          throw new Error(`Ironic has steps of ooo's hardware manager ${version}; this agent is ${HARDWARE_MANAGER.version}`);
        if (step.interface !== "deploy" || step.step !== "write_image") throw new Error(`ooo's agent has no deploy step ${step.interface}.${step.step} (it has deploy.write_image)`);
        const args = step.args ?? {};
        const image = ImageInfo.parse(args.image_info);
        const map = mapOf(params.node);
        written = await writeImage(m, { image, configdrive: (args.configdrive as string | null | undefined) ?? image.configdrive as string | undefined, hints: hintsOf(params.node), ...(map ? { map } : {}), ca: m.ca });
        return { deploy_result: null, deploy_step: step };
      },
    },
    "standby.get_partition_uuids": { run: () => partitionUuids(written) },
    "image.install_bootloader": {
      background: true,
      // ooo's disks boot by the removable path (EFI/BOOT/BOOTX64.EFI): no NVRAM entry needed, and none made.
      run: async () => null,
    },
    "standby.sync": {
      run: async () => {
        m.sync();
        return null;
      },
    },
    "standby.power_off": {
      background: true,
      run: async () => {
        m.sync();
        // Ironic's POST must get its answer first: powered off before it is sent, the conductor waited 60 s
        // for it, retried the command list for 30 s more, and only then read the BMC (as IPA answers first too).
        await Bun.sleep(POWER_OFF_AFTER_MS);
        m.powerOff();
        return null;
      },
    },
    "log.collect_system_logs": { run: async () => ({ system_logs: logsArchive(m.logFiles) }) },
  };
}
