import { join } from "node:path";
import type { StoreConfig } from "../config.ts";
import { DirBackend } from "./dir.ts";
import { SwiftBackend } from "./swift.ts";
import type { BlobBackend } from "./types.ts";

/** The blob backends, by the `type` the config names. */
type BackendConfig = StoreConfig["backend"];
const BACKENDS: { [K in BackendConfig["type"]]: (c: Extract<BackendConfig, { type: K }>, dir: string) => Promise<BlobBackend> } = {
  dir: async (c, dir) => new DirBackend(c.path ?? join(dir, "blobs")),
  swift: async (c) => SwiftBackend.connect({ authUrl: c.authUrl, user: c.user, key: c.key!, container: c.container, segmentBytes: c.segmentBytes }),
};

export function createBackend(config: StoreConfig): Promise<BlobBackend> {
  const make = BACKENDS[config.backend.type] as (c: BackendConfig, dir: string) => Promise<BlobBackend>;
  return make(config.backend, config.dir);
}
