import { run } from "../../lib/run.ts";
import { ImageTooSmall } from "../errors.ts";
import { CommandFailed } from "../../lib/run.ts";

/**
 * Build an ext2/ext4 filesystem from a tree straight into a region of an
 * image file (mkfs -d with -E offset): no loop device, no mount. UUID, hash
 * seed and every timestamp mkfs would take from the clock are fixed, so the
 * same tree gives the same bytes.
 */
export async function mkfsExt(options: {
  file: string;
  offset: number;
  size: number;
  type: "ext4" | "ext2";
  label: string;
  uuid: string;
  tree?: string;
  sourceDateEpoch: number;
  /** Bytes the tree needs, for the error if it does not fit. */
  neededBytes?: number;
}) {
  const args = [
    "-t",
    options.type,
    "-q",
    "-F",
    "-L",
    options.label,
    "-U",
    options.uuid,
    "-m",
    "0",
    "-E",
    `hash_seed=${options.uuid},offset=${options.offset},root_owner=0:0`,
    ...(options.tree ? ["-d", options.tree] : []),
    options.file,
    `${Math.floor(options.size / 1024)}k`,
  ];
  try {
    await run("mkfs.ext4", args, {
      env: { E2FSPROGS_FAKE_TIME: String(options.sourceDateEpoch), MKE2FS_DEVICE_SECTSIZE: "512" },
      what: `making the ${options.label} filesystem (mkfs.${options.type})`,
      echo: false,
    });
  } catch (e) {
    if (e instanceof CommandFailed && e.tail.some((l) => /No space left|Could not allocate block|too big/i.test(l)))
      throw new ImageTooSmall(options.neededBytes ?? options.size + 1, options.size);
    throw e;
  }
}
