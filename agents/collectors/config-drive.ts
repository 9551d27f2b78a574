import { existsSync, mkdtempSync, readFileSync, rmdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CONFIG_DRIVE_LABEL, CONFIG_DRIVE_PATH } from "../../wire/metadata.ts";
import { debug } from "../log.ts";
import { mountFs, unmount } from "../mounts.ts";
import { splitDeployments } from "../collect/deployments.ts";
import { SourceNotAvailable } from "../errors.ts";
import { parseJson } from "../pyjson/parse.ts";
import { isDict, type PyValue } from "../pyjson/value.ts";
import { keepNodeTrust } from "../trust.ts";
import { setting, timeoutSetting, type Collector } from "./types.ts";

export const DEFAULT_LABEL = CONFIG_DRIVE_LABEL;
export const DEFAULT_PATH = CONFIG_DRIVE_PATH;

export interface BlockDevice {
  devname?: string;
  type?: string;
  label?: string;
}

/** `blkid -o export`: KEY=value lines, devices separated by blank lines, `\ ` for spaces. */
export function parseBlkidExport(text: string): BlockDevice[] {
  return text
    .split("\n\n")
    .map((block) => {
      const dev: BlockDevice = {};
      for (const line of block.split("\n")) {
        const eq = line.indexOf("=");
        if (eq < 0) continue;
        const value = line.slice(eq + 1).replaceAll("\\ ", " ");
        const key = line.slice(0, eq);
        if (key === "DEVNAME") dev.devname = value;
        else if (key === "TYPE") dev.type = value;
        else if (key === "LABEL") dev.label = value;
      }
      return dev;
    })
    .filter((d) => d.devname);
}

async function run(cmd: string[], signal: AbortSignal): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore", signal, killSignal: "SIGKILL" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

/** The system calls the collector makes; tests replace them. */
export const driveSystem = {
  blkid: async (signal: AbortSignal, device?: string) => (await run(["blkid", "-o", "export", ...(device ? [device] : [])], signal)).stdout,
  mounts: () => readFileSync("/proc/mounts", "utf8"),
  // By syscall: a mount and an umount process cost a node ~0.2 s of CPU under emulation, at every start.
  mount: async (dev: string, dir: string, type: string) => mountFs(dev, dir, type, { readOnly: true }),
  umount: async (dir: string) => unmount(dir, { lazy: true }),
};

const DRIVE_TYPES = ["vfat", "iso9660", "ext2", "ext3", "ext4"];

/** The first device with the label (vfat or iso9660 as OpenStack writes them, or ext2/3/4). */
export async function findDrive(label: string, signal: AbortSignal): Promise<BlockDevice | undefined> {
  const devices = parseBlkidExport(await driveSystem.blkid(signal));
  return devices.find((d) => d.label === label && DRIVE_TYPES.includes(d.type ?? ""));
}

/** The filesystem type of one device (a drive named by the `device` setting). */
async function typeOf(devname: string, signal: AbortSignal): Promise<string | undefined> {
  return parseBlkidExport(await driveSystem.blkid(signal, devname)).find((d) => d.devname === devname)?.type;
}

/**
 * Read a JSON file from the drive: through its existing mount if it has one,
 * else mounted read-only on a temporary folder for the length of the read
 * (and lazily unmounted, as the original does).
 */
export async function readFromDrive(
  devname: string,
  relPath: string,
  collector: string,
  signal: AbortSignal,
  knownType?: string,
): Promise<PyValue | undefined> {
  const existing = driveSystem
    .mounts()
    .split("\n")
    .map((l) => l.split(" "))
    .find((f) => f[0] === devname)?.[1];
  let mountpoint = existing?.replace(/\\040/g, " ");
  let mine = false;
  if (!mountpoint) {
    const type = knownType ?? (await typeOf(devname, signal));
    if (!type || !DRIVE_TYPES.includes(type))
      throw new SourceNotAvailable(collector, `${devname} holds no ${DRIVE_TYPES.join(", ")} filesystem${type ? ` (it is ${type})` : ""}`);
    mountpoint = mkdtempSync(join(tmpdir(), "config-2-"));
    try {
      await driveSystem.mount(devname, mountpoint, type);
      mine = true;
    } catch (e) {
      rmdirSync(mountpoint);
      throw new SourceNotAvailable(collector, (e as Error).message);
    }
  }
  try {
    const file = join(mountpoint, relPath);
    try {
      if (!statSync(file).isFile()) return undefined;
    } catch {
      return undefined;
    }
    try {
      return parseJson(readFileSync(file, "utf8"));
    } catch (e) {
      throw new SourceNotAvailable(collector, `${devname}:${relPath} is not valid JSON (${(e as Error).message})`);
    }
  } finally {
    if (mine) {
      await driveSystem.umount(mountpoint);
      try {
        rmdirSync(mountpoint);
      } catch {
        // still busy: the lazy unmount finishes later; a stray empty folder in /tmp is harmless
      }
    }
  }
}

/**
 * `config-drive`: a filesystem labelled `config-2` (as OpenStack's config
 * drive) holding a JSON object at `ooo/metadata.json` — how the deployer
 * gives a node its first metadata (including where its metadata service is)
 * before any network service can. Deployments are split out. Read once per
 * device while the collector runs (SIGHUP re-reads). The original read
 * config drives only inside its ec2 collector.
 */
export const configDrive: Collector = {
  name: "config-drive",
  description: "a JSON file on a labelled filesystem",
  options: [
    { name: "label", kind: "value", help: `filesystem label (default ${DEFAULT_LABEL})` },
    { name: "path", kind: "value", help: `JSON file on the drive (default ${DEFAULT_PATH})` },
    { name: "device", kind: "value", help: "use this block device instead of looking for the label" },
    { name: "timeout", kind: "value", help: "seconds for finding, mounting and reading the drive (default 10)" },
  ],
  splitsDeployments: true,
  timeoutSeconds: (s) => timeoutSetting(s),
  async collect(ctx) {
    const label = setting(ctx, "label") ?? DEFAULT_LABEL;
    const path = setting(ctx, "path") ?? DEFAULT_PATH;
    // Found once per run too: blkid is a process that probes every disk, and
    // polls come every few seconds at first.
    const found = `drive:${label}`;
    let drive = ctx.memo[found] as BlockDevice | undefined;
    if (!drive?.devname || !existsSync(drive.devname)) {
      const device = setting(ctx, "device");
      drive = device ? { devname: device } : await findDrive(label, ctx.signal);
      if (drive?.devname && existsSync(drive.devname)) ctx.memo[found] = drive;
    }
    const devname = drive?.devname;
    if (!devname) throw new SourceNotAvailable("config-drive", `no filesystem labelled ${label}`);
    // A config drive does not change while attached: read it once, not at every
    // poll (each read is a mount, and a kernel log line).
    const key = `${devname}:${path}`;
    let content = ctx.memo[key] as PyValue | undefined;
    if (content === undefined) {
      debug(`config-drive: reading ${path} from ${devname}`);
      content = await readFromDrive(devname, path, "config-drive", ctx.signal, drive?.type);
      if (content !== undefined) ctx.memo[key] = content;
      // The keys and CA the node trusts come from the drive alone: kept for the other agents.
      if (content !== undefined) {
        try {
          keepNodeTrust(content);
        } catch (e) {
          throw new SourceNotAvailable("config-drive", `${devname}:${path} has an unusable trust block: ${(e as Error).message}`);
        }
      }
    }
    if (content === undefined) throw new SourceNotAvailable("config-drive", `${devname} has no ${path}`);
    if (!isDict(content)) throw new SourceNotAvailable("config-drive", `${devname}:${path} is not a JSON object`);
    return splitDeployments("config-drive", content, ctx.deploymentKeys);
  },
};
