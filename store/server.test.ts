import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadStoreConfig } from "./config.ts";
import { ListenFailed } from "./errors.ts";
import { type RunningStore, serveStore } from "./server.ts";

const dirs: string[] = [];
const running: RunningStore[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const configFor = (listen: string) => {
  const dir = mkdtempSync(join(tmpdir(), "ooo-serve-"));
  dirs.push(dir);
  return loadStoreConfig({ flags: { dir, listen }, env: { OOO_STORE_WRITE_TOKEN: "a-token-long-enough-1234" } });
};

test("a port already in use is a ListenFailed naming the address, and the store directory is released", async () => {
  const first = await serveStore(configFor("127.0.0.1:0"));
  running.push(first);
  const taken = `127.0.0.1:${new URL(first.url).port}`;
  const config = configFor(taken);
  const error = await serveStore(config).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ListenFailed);
  expect((error as Error).message).toContain(`cannot listen on ${taken}`);
  // Its lock is gone: the same directory serves on a free port.
  running.push(await serveStore({ ...config, listen: "127.0.0.1:0" }));
});
