import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidInput, UsageError } from "../lib/errors.ts";
import { loadStoreConfig } from "./config.ts";

const T = "a-token-long-enough-1234";

describe("store config", () => {
  test("tokens come from flags, env and file; at least one is needed", () => {
    expect(() => loadStoreConfig({ flags: { dir: "/s" }, env: {} })).toThrow(UsageError);
    const c = loadStoreConfig({ flags: { dir: "/s", readTokens: [T] }, env: { OOO_STORE_WRITE_TOKEN: `${T}w,${T}x` } });
    expect(c.tokens).toEqual({ write: [`${T}w`, `${T}x`], read: [T] });
    expect(c).toMatchObject({ listen: "127.0.0.1:9292", backend: { type: "dir" }, allowEmptyUploads: false, md5Checksums: false });
  });

  test("short tokens and bad listen addresses are refused", () => {
    expect(() => loadStoreConfig({ flags: { dir: "/s", writeTokens: ["short"] }, env: {} })).toThrow(InvalidInput);
    // Named by where it came from, never shown.
    expect(() => loadStoreConfig({ flags: { dir: "/s" }, env: { OOO_STORE_WRITE_TOKEN: T, OOO_STORE_READ_TOKEN: `${T},sekrit` } })).toThrow(
      /OOO_STORE_READ_TOKEN \(token 2\): a token has at least 16 characters, not 6$/,
    );
    expect(() => loadStoreConfig({ flags: { dir: "/s", writeTokens: ["sekrit"] }, env: {} })).not.toThrow(/sekrit/);
    expect(() => loadStoreConfig({ flags: { dir: "/s", listen: "nowhere" }, env: { OOO_STORE_WRITE_TOKEN: T } })).toThrow(InvalidInput);
  });

  test("a YAML file selects the swift backend; its key may come from the environment", () => {
    const dir = mkdtempSync(join(tmpdir(), "ooo-config-"));
    try {
      const file = join(dir, "store.yaml");
      writeFileSync(file, `dir: /srv/store\nbackend:\n  type: swift\n  authUrl: http://127.0.0.1:8080/auth/v1.0\n  user: "ooo:store"\n`);
      expect(() => loadStoreConfig({ file, env: { OOO_STORE_WRITE_TOKEN: T } })).toThrow(UsageError);
      const c = loadStoreConfig({ file, env: { OOO_STORE_WRITE_TOKEN: T, OOO_SWIFT_KEY: "k" } });
      expect(c.backend).toEqual({
        type: "swift",
        authUrl: "http://127.0.0.1:8080/auth/v1.0",
        user: "ooo:store",
        key: "k",
        container: "ooo-images",
        segmentBytes: 64 << 20,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
