import type { Subprocess } from "bun";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import type { StoreConfig } from "../../store/config.ts";
import { StoreClient } from "../../store/client/client.ts";
import { freePort } from "../../deployer/daemons.ts";

/**
 * `ooo store serve` as a child process, as it runs for real: tests talk to
 * it over HTTP and can SIGKILL it mid-upload. The write and read tokens go
 * through the environment, the rest through a config file.
 */
export const REPO = resolve(import.meta.dir, "../..");
export const WRITE_TOKEN = "test-write-token-0123456789";
export const READ_TOKEN = "test-read-token-0123456789";

export interface TestStore {
  url: string;
  dir: string;
  config: Partial<StoreConfig>;
  /** A client with the write token. */
  client: StoreClient;
  /** A client with the read-only token. */
  reader: StoreClient;
  /** Where the server's output goes. */
  log: string;
  /** The server's process id (it changes with restart()). */
  readonly pid: number | undefined;
  /** SIGKILL the server (a crash). */
  kill(): Promise<void>;
  /** Start it again on the same directory and port. */
  restart(): Promise<void>;
  /** Stop it and remove its directory. */
  stop(): Promise<void>;
}

export async function startStore(
  options: { backend?: StoreConfig["backend"]; allowEmptyUploads?: boolean; md5Checksums?: boolean; under?: string; tls?: { cert: string; key: string; ca: string } } = {},
): Promise<TestStore> {
  const dir = mkdtempSync(join(options.under ?? tmpdir(), "ooo-store-test-"));
  const port = freePort();
  const config = {
    dir: join(dir, "store"),
    listen: `127.0.0.1:${port}`,
    backend: options.backend ?? { type: "dir" as const },
    allowEmptyUploads: options.allowEmptyUploads ?? false,
    // Unset: the store's own default (no md5), as a user's config would.
    ...(options.md5Checksums === undefined ? {} : { md5Checksums: options.md5Checksums }),
    ...(options.tls ? { tls: { cert: options.tls.cert, key: options.tls.key } } : {}),
  };
  const configFile = join(dir, "store.yaml");
  writeFileSync(configFile, stringify(config));
  const log = join(dir, "server.log");
  const url = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;
  const ca = options.tls ? readFileSync(options.tls.ca, "utf8") : undefined;
  let proc: Subprocess | undefined;
  /** Servers this test killed on purpose (the others died by themselves). */
  const killed = new WeakSet<Subprocess>();

  const start = async () => {
    const out = openSync(log, "a");
    proc = Bun.spawn(["bun", join(REPO, "cli/ooo.ts"), "store", "serve", "--config", configFile], {
      env: { ...process.env, OOO_STORE_WRITE_TOKEN: WRITE_TOKEN, OOO_STORE_READ_TOKEN: READ_TOKEN, NO_COLOR: "1" },
      stdout: out,
      stderr: out,
      stdin: "ignore",
    });
    closeSync(out);
    // A server that dies on its own fails the test later as "cannot reach the
    // store": say why, while its log still exists.
    const started = proc;
    void started.exited.then(async (code) => {
      if (killed.has(started)) return;
      const text = await Bun.file(log).text().catch(() => "");
      process.stderr.write(`\nooo store serve (pid ${started.pid}) exited by itself (${code}, ${started.signalCode ?? "no signal"}); its log ends:\n${text.slice(-4000)}\n`);
    });
    for (const deadline = Date.now() + 20_000; ; ) {
      try {
        if ((await fetch(`${url}/versions`, ca ? { tls: { ca } } : {})).ok) return;
      } catch {}
      if (proc.exitCode !== null || Date.now() > deadline)
        throw new Error(`ooo store serve did not start (exit ${proc.exitCode}):\n${await Bun.file(log).text()}`);
      await Bun.sleep(50);
    }
  };
  const kill = async () => {
    if (proc) killed.add(proc);
    proc?.kill("SIGKILL");
    await proc?.exited;
  };
  await start();
  return {
    url,
    dir: config.dir,
    config,
    log,
    get pid() {
      return proc?.pid;
    },
    client: new StoreClient({ url, token: WRITE_TOKEN, ca }),
    reader: new StoreClient({ url, token: READ_TOKEN, ca }),
    kill,
    restart: start,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Deterministic pseudo-random bytes. */
export function noise(bytes: number, seed = 1): Uint8Array {
  const out = new Uint8Array(bytes);
  let x = seed * 2654435761;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
