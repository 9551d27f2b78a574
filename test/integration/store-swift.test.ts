import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { SwiftBackend } from "../../store/backends/swift.ts";
import { ingest } from "../../store/ingest.ts";
import { noise } from "../support/store.ts";
import { startSwift, type TestSwift } from "../support/swift.ts";
import { storeSuite } from "./store-suite.ts";

/**
 * The same acceptance tests with blobs in OpenStack Swift: a one-node Swift
 * on loopback, started here. Segments are 1 MiB so that the suite's
 * multi-megabyte images go up as static large objects.
 */
let swift: TestSwift;
beforeAll(async () => {
  swift = await startSwift();
}, 90_000);
afterAll(async () => {
  await swift?.stop();
});

const config = () => ({
  type: "swift" as const,
  authUrl: swift.authUrl,
  user: swift.user,
  key: swift.key,
  container: `ooo-${randomUUID()}`,
  segmentBytes: 1 << 20,
});

storeSuite("the swift backend", config);

describe("swift backend", () => {
  test("a blob bigger than a segment is a static large object; a small one a plain object", async () => {
    const c = config();
    const backend = await SwiftBackend.connect(c);
    const big = await ingest(backend, [noise(2_500_000, 3)]);
    const small = await ingest(backend, [noise(1000, 4)]);
    const auth = await fetch(swift.authUrl, { headers: { "X-Auth-User": swift.user, "X-Auth-Key": swift.key } });
    const [token, url] = [auth.headers.get("X-Auth-Token")!, auth.headers.get("X-Storage-Url")!];
    const head = async (name: string) => fetch(`${url}/${c.container}/${name}`, { method: "HEAD", headers: { "X-Auth-Token": token } });
    expect((await head(`sha256/${big.hex}`)).headers.get("X-Static-Large-Object")).toBe("True");
    expect((await head(`sha256/${small.hex}`)).headers.get("X-Static-Large-Object")).toBeNull();
    const listing = (await (await fetch(`${url}/${c.container}?format=json&prefix=segments/`, { headers: { "X-Auth-Token": token } })).json()) as unknown[];
    expect(listing).toHaveLength(3);
    expect(await backend.stat(big.hex)).toBe(2_500_000);
    await backend.delete(big.hex);
    expect(await backend.stat(big.hex)).toBeUndefined();
  }, 30_000);
});
