import { closeSync, mkdtempSync, mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../lib/run.ts";
import { CONFIG_DRIVE_LABEL, CONFIG_DRIVE_PATH, ConfigDriveMetadata } from "../wire/metadata.ts";

/**
 * A node's config drive: a small filesystem labelled config-2 holding its
 * first metadata (where its metadata service is, its token), read by the
 * node's collector `config-drive` at boot — as Nova and Ironic hand
 * instances theirs. ext4, made with mkfs -d: no loop device, no mount.
 */
export async function makeConfigDrive(file: string, metadata: ConfigDriveMetadata): Promise<void> {
  const valid = ConfigDriveMetadata.parse(metadata);
  const dir = mkdtempSync(join(tmpdir(), "ooo-config-drive-"));
  try {
    mkdirSync(join(dir, CONFIG_DRIVE_PATH, ".."), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, CONFIG_DRIVE_PATH), JSON.stringify(valid, null, 2) + "\n", { mode: 0o600 });
    closeSync(openSync(file, "w"));
    await run("truncate", ["-s", "8M", file]);
    await run("mkfs.ext4", ["-q", "-F", "-L", CONFIG_DRIVE_LABEL, "-m", "0", "-d", dir, file], {
      what: "making the config drive",
      echo: false,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
