import { mapDisk } from "../../lib/disk-map.ts";
import { DISK_MAP_ARTIFACT } from "../../wire/disk-map.ts";
import type { Artifact } from "./types.ts";
import type { OutputWork } from "./work.ts";

/**
 * `NAME.disk-map.json` beside the raw disk (wire/disk-map.ts): where its
 * data is, chunk by chunk, so that a deploy fetches only that. Listed in
 * the manifest like every artifact, so a signed manifest covers it.
 */
export async function emitDiskMap(work: OutputWork, raw: Artifact): Promise<Artifact> {
  const file = await work.once("map the disk's data", async () => {
    const out = work.scratchPath("disk-map.json");
    await Bun.write(out, JSON.stringify(mapDisk(raw.path, raw)) + "\n");
    return out;
  });
  return work.emit(DISK_MAP_ARTIFACT, "disk-map.json", file);
}
