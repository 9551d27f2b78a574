import { packDisk } from "../../lib/disk-pack.ts";
import { mapDisk } from "../../lib/disk-map.ts";
import { DISK_MAP_ARTIFACT, DISK_PACK_ARTIFACT } from "../../wire/disk-map.ts";
import type { Artifact } from "./types.ts";
import type { OutputWork } from "./work.ts";

/**
 * `NAME.disk-map.json` beside the raw disk (wire/disk-map.ts): where its
 * data is, chunk by chunk, so that a deploy fetches only that; and
 * `NAME.disk-pack`, those chunks compressed, so that it fetches a third of
 * it (lib/disk-pack.ts). Both are listed in the manifest like every
 * artifact, so a signed manifest covers them.
 */
export async function emitDiskMap(work: OutputWork, raw: Artifact): Promise<Artifact> {
  const files = await work.once("map the disk's data and pack it", async () => {
    const map = work.scratchPath("disk-map.json");
    const pack = work.scratchPath("disk-pack");
    await Bun.write(map, JSON.stringify(await packDisk(raw.path, mapDisk(raw.path, raw), pack)) + "\n");
    return { map, pack };
  });
  await work.emit(DISK_PACK_ARTIFACT, "disk-pack", files.pack);
  return work.emit(DISK_MAP_ARTIFACT, "disk-map.json", files.map);
}
