import { serverTls } from "../lib/tls.ts";
import { createApi } from "./api.ts";
import { createBackend } from "./backends/index.ts";
import type { StoreConfig } from "./config.ts";
import { ListenFailed } from "./errors.ts";
import { Store } from "./store.ts";

/**
 * `ooo store serve`: open the store (lock, recover) and serve the API. Bun's
 * 128 MB default body limit would refuse every real image, and its 10 s idle
 * timeout would cut a client that pauses; both are raised here.
 */
export interface RunningStore {
  url: string;
  store: Store;
  stop(): Promise<void>;
}

export async function serveStore(config: StoreConfig): Promise<RunningStore> {
  const backend = await createBackend(config);
  const store = await Store.open({
    dir: config.dir,
    backend,
    allowEmptyUploads: config.allowEmptyUploads,
    md5Checksums: config.md5Checksums,
    imageSizeCap: config.imageSizeCap,
  });
  const [hostname, port] = [config.listen.slice(0, config.listen.lastIndexOf(":")), Number(config.listen.slice(config.listen.lastIndexOf(":") + 1))];
  let server;
  try {
    server = Bun.serve({
      hostname,
      port,
      fetch: createApi(store, { tokens: config.tokens }),
      maxRequestBodySize: config.imageSizeCap + 1,
      idleTimeout: 120,
      ...(config.tls ? { tls: serverTls(config.tls) } : {}),
    });
  } catch (e) {
    await store.close();
    throw new ListenFailed(config.listen, e);
  }
  return {
    url: `${config.tls ? "https" : "http"}://${hostname.includes(":") ? `[${hostname}]` : hostname}:${server.port}`,
    store,
    async stop() {
      await server.stop(true);
      await store.close();
    },
  };
}
