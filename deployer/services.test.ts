import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { READ_TOKEN, startStore, WRITE_TOKEN, type TestStore } from "../test/support/store.ts";
import { NodeTokenNotReadOnly } from "./errors.ts";
import { storeFor } from "./services.ts";
import type { Stack } from "./stack.ts";

/**
 * Every node's metadata carries the stack's store token, so the deployer asks
 * the store what the token may do (GET /v2/ooo/whoami) and refuses anything
 * but a read-only one, naming where the token came from.
 */
let store: TestStore;
let dir: string;
beforeAll(async () => {
  store = await startStore();
  dir = mkdtempSync(join(tmpdir(), "ooo-services-"));
}, 30_000);
afterAll(async () => {
  await store?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const stackWith = (tokenFile?: string) => ({ store: { kind: "url", url: store.url, tokenFile } }) as Stack;
const tokenFile = (token: string) => {
  const file = join(dir, `${token}.token`);
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return file;
};

async function withEnvToken<T>(token: string | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.OOO_STORE_TOKEN;
  if (token === undefined) delete process.env.OOO_STORE_TOKEN;
  else process.env.OOO_STORE_TOKEN = token;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.OOO_STORE_TOKEN;
    else process.env.OOO_STORE_TOKEN = saved;
  }
}

describe("the token nodes get", () => {
  test("a write token in OOO_STORE_TOKEN is refused, naming the setting", async () => {
    const e = await withEnvToken(WRITE_TOKEN, () => storeFor(stackWith(), dir)).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(NodeTokenNotReadOnly);
    expect((e as Error).message).toMatch(/from OOO_STORE_TOKEN is a write token/);
    expect((e as Error).message).not.toContain(WRITE_TOKEN);
  });

  test("a write token in the stack's token_file is refused, naming the setting", async () => {
    const file = tokenFile(WRITE_TOKEN);
    const e = await withEnvToken(READ_TOKEN, () => storeFor(stackWith(file), dir)).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(NodeTokenNotReadOnly);
    expect((e as Error).message).toContain(`store.token_file (${file}) is a write token`);
  });

  test("a read token is handed on, from either place", async () => {
    expect((await withEnvToken(READ_TOKEN, () => storeFor(stackWith(), dir))).readToken).toBe(READ_TOKEN);
    expect((await withEnvToken(WRITE_TOKEN, () => storeFor(stackWith(tokenFile(READ_TOKEN)), dir))).readToken).toBe(READ_TOKEN);
  });

  test("the store says what a token may do", async () => {
    expect(await store.client.tokenScope()).toBe("write");
    expect(await store.reader.tokenScope()).toBe("read");
  });
});
