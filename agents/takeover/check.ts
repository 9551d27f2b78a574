import { log } from "../../lib/log.ts";
import { isDigest } from "../../wire/digest.ts";
import { isDict, toPlain, type PyDict } from "../pyjson/value.ts";
import { slotState } from "../../wire/boot.ts";
import { withBootPartition } from "./boot-partition.ts";
import { findNodeDisk } from "./disk.ts";
import { writeNodeState } from "./reports.ts";

/**
 * The takeover's first question, asked at every configuration run of every
 * node: does the booted slot run the image the metadata names? Nearly always
 * it does. This module answers it without the store client, the install
 * code and the metadata schema (takeover.ts loads those only when there is
 * work): evaluating them cost a node 0.5–1 s of CPU under emulation.
 */

/** The image digest the metadata names; null: no ooo block; undefined: a block that needs the full check (and its errors). */
export function namedDigest(metadata: PyDict): string | null | undefined {
  const ooo = metadata.get("ooo");
  if (ooo === undefined) return null;
  if (!isDict(ooo)) return undefined;
  const digest = (toPlain(ooo) as { image?: { digest?: unknown } }).image?.digest;
  return isDigest(digest) ? digest : undefined;
}

/**
 * "none": the booted slot runs `wanted`. "deferred" (before the
 * configuration only): it runs another image but is not marked good yet, so
 * it is configured first and post-configure.d takes over. undefined: a
 * takeover, switch or rollback is to be decided (takeover.ts).
 */
export async function checkBooted(wanted: string, options: { beforeConfigure?: boolean } = {}): Promise<"none" | "deferred" | undefined> {
  const disk = findNodeDisk();
  return withBootPartition(disk.boot, (boot) => {
    const env = boot.readEnv();
    writeNodeState(disk, env);
    const here = slotState(env, disk.booted);
    if (here.digest === wanted) {
      log.info(`takeover: slot ${disk.booted} runs ${wanted}, the image the metadata names`);
      return "none";
    }
    if (options.beforeConfigure && !here.ok) {
      log.info(`takeover: slot ${disk.booted} is not marked good yet; the takeover waits until this root is configured`);
      return "deferred";
    }
    return undefined;
  });
}
