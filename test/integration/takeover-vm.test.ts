import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { makeConfigDrive } from "../../deployer/config-drive.ts";
import { freePort } from "../../deployer/daemons.ts";
import { encodeHeader, END_OF_ARCHIVE, padding } from "../../lib/tar/encode.ts";
import { Vm } from "../../lib/qemu/vm.ts";
import { findImage, overlayDisk, removeRunDir, tempRunDir } from "../../pipeline/boot.ts";
import { publish } from "../../pipeline/publish.ts";
import { READY_MARKER, ReadyReport } from "../../wire/ready-report.ts";
import { chunkOffsets } from "../../wire/chunk-index.ts";
import { CompletionSignal } from "../../wire/signal.ts";
import { buildTestImage } from "../support/images.ts";
import { redis } from "../support/redis.ts";
import { lyingStore } from "../support/lying-store.ts";
import { requireCommand } from "../support/require.ts";
import { withEntryAfter } from "../support/spliced-image.ts";
import { READ_TOKEN, startStore } from "../support/store.ts";

/**
 * Power loss during an in-place upgrade, on one node booting through its own
 * GRUB under UEFI (OVMF, the disk's EFI system partition; no deployer: this
 * test holds the plug). upgrade.test.ts covers the same machinery under
 * legacy BIOS (SeaBIOS), with the deployer: between them, trial boots,
 * rollback, kexec and reboots through the firmware run under both. The node runs redis, its
 * data on the state partition. Its metadata is switched from v1 to v2, and
 * the power is cut (qemu quits, no shutdown) at each dangerous point:
 *   1. while it fetches,  2. while it writes the new slot,
 *   3. right after it armed the new slot,  4. during the new root's trial boot.
 * After every cut it must boot a complete root (old or new) with its data
 * unchanged and carry on by itself: after 1 and 2 it starts over, after 3
 * it tries the new root again, and after 4 (the second trial without a
 * word) it reports the request rolled back; asked again, it reaches v2.
 * Before that, bad input: an image the store does not have, one too big
 * for the slot, and v2 with its new chunks corrupted in the store. Each must fail before the switch,
 * be reported with its reason, and leave the node on v1 with its data.
 * Then two that a store could use to take the node over: a lying store
 * (it answers for the named digest with another valid image, every claim
 * rewritten to the named digest), and an image whose entry would be
 * written through the running root's var/run → /run. Refused the same way,
 * nothing armed, and /run untouched.
 */
const METADATA_IP = "10.0.2.100";
const STORE_IP = "10.0.2.101";
const TOKEN = "power-cut-secret";

describe("in-place upgrade on one node: bad input, then power cuts", () => {
  test("a missing image, a root too big for its slot and corrupt chunks are refused with v1 kept; cuts while writing, after the switch and in the trial boot: data kept, v2 reached", async () => {
    requireCommand("qemu-system-x86_64", "socat");
    const [v1, v2] = await Promise.all([buildTestImage("kv-v1"), buildTestImage("kv-v2")]);
    const store = await startStore();
    // The node reaches the store through this proxy, which passes everything through until told to lie.
    const liar = lyingStore(store.url);
    const runDir = tempRunDir();
    const signals: CompletionSignal[] = [];
    const progress: { phase: string }[] = [];
    let wanted = v1.manifest.digest;
    let serial = 1;
    let attempt = 0;
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const url = new URL(req.url);
        if (req.headers.get("authorization") !== `Bearer ${TOKEN}`) return new Response("no", { status: 401 });
        if (req.method === "GET" && url.pathname === "/v1/nodes/n1/metadata")
          return Response.json({
            ooo: {
              version: 1,
              node: "n1",
              role: "kv",
              serial,
              image: { name: "kv", digest: wanted, attempt },
              signal_url: `http://${METADATA_IP}/v1/nodes/n1/signal`,
              store: { url: `http://${STORE_IP}`, token: READ_TOKEN },
            },
            redis: { port: 6379 },
          });
        if (req.method === "POST" && url.pathname === "/v1/nodes/n1/signal") {
          signals.push(CompletionSignal.parse(await req.json()));
          return new Response(null, { status: 204 });
        }
        if (req.method === "POST" && url.pathname === "/v1/nodes/n1/progress") {
          progress.push((await req.json()) as { phase: string });
          return new Response(null, { status: 204 });
        }
        return new Response("not found", { status: 404 });
      },
    });
    const until = async <T>(what: string, seconds: number, check: () => T | undefined | Promise<T | undefined>): Promise<T> => {
      for (const deadline = Date.now() + seconds * 1000; ; await Bun.sleep(250)) {
        const v = await check();
        if (v !== undefined) return v;
        if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds}s; progress ${JSON.stringify(progress.map((p) => p.phase))}`);
      }
    };
    let vm: Vm | undefined;
    try {
      const published = [await publish({ client: store.client, output: v1.base }), await publish({ client: store.client, output: v2.base })];
      // v1's root plus one entry beneath its own var/run → /run: on the live system, the file that makes
      // post-configure.d run the takeover a second time (elements/ooo-takeover).
      const escape = await withEntryAfter(v1, join(runDir, "escape"), "./var/run", {
        path: "./var/run/ooo/takeover-deferred",
        type: "file",
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: 0,
        mtime: v1.manifest.sourceDateEpoch,
      });
      await publish({ client: store.client, output: escape.base });
      const drive = join(runDir, "config-drive.img");
      await makeConfigDrive(drive, {
        "os-collect-config": { collectors: ["config-drive", "heat"], polling_interval: 3, heat: { metadata_url: `http://${METADATA_IP}`, node: "n1", token: TOKEN } },
      });
      const image = findImage(v1.base);
      const disk = await overlayDisk(image, runDir);
      const redisPort = freePort();
      const endpoint = `127.0.0.1:${redisPort}`;
      let boots = 0;
      const powerOn = async () => {
        boots++;
        vm = await Vm.start({
          name: `power-cut-${boots}`,
          dir: runDir,
          disk,
          accel: "tcg",
          firmware: "uefi",
          memoryMiB: 1536,
          cpus: 2,
          consoleLog: join(runDir, `console-${boots}.log`),
          extraDisks: [{ file: drive, format: "raw", readOnly: true }],
          guestForwards: [
            { ip: METADATA_IP, port: 80, command: `socat STDIO TCP:127.0.0.1:${server.port}` },
            { ip: STORE_IP, port: 80, command: `socat STDIO TCP:${liar.host}` },
          ],
          hostForwards: [{ hostPort: redisPort, guestPort: 6379 }],
        });
      };
      const ready = async () => ReadyReport.parse(JSON.parse((await vm!.waitFor(READY_MARKER, 600_000)).match[1]!));
      const dataKept = () => until("redis answering with the data", 600, () => redis(endpoint, "GET precious").then((v) => (v === "kept" ? v : undefined), () => undefined));
      const cutAt = async (phase: string, since = progress.length) => {
        await until(`progress ${phase}`, 900, () => (progress.slice(since).some((p) => p.phase === phase) ? true : undefined));
        await vm!.kill(); // the plug, not a shutdown
      };

      // v1, configured, with data.
      await powerOn();
      expect((await ready()).slot).toBe("A");
      await until("the first signal", 600, () => signals.find((s) => s.status === "SUCCESS"));
      expect(await redis(endpoint, "SET precious kept")).toBe("+OK");
      // The data must be on disk before any cut: appendfsync always.

      const failedUpgrade = async (what: string) => {
        const seen = signals.length;
        const s = await until(`the signal after ${what}`, 900, () => signals.slice(seen).find((x) => x.data.upgrade?.result === "failed"));
        expect(s.data.node_state).toMatchObject({ slot: "A", digest: v1.manifest.digest, good: true });
        await dataKept();
        return s.data.upgrade!.reason ?? "";
      };
      // Bad input 1: an image the store does not have.
      wanted = `sha256:${"0".repeat(64)}`;
      serial = 2;
      expect(await failedUpgrade("a missing image")).toContain("is not in the store");
      // Bad input 2: a real image whose root does not fit the slot: v2's tree plus a 256 MiB file.
      const big = await oversizedBuild(v2.base, join(runDir, "big"), 256 * 2 ** 20);
      await publish({ client: store.client, output: big.base });
      wanted = big.digest;
      serial = 3;
      expect(await failedUpgrade("a root too big for the slot")).toContain("does not fit root slot B");
      // Bad input 3: v2 with its new chunks corrupted where the store keeps them — in the image's data
      // blob, which Range downloads read (bits flipped in place, size unchanged).
      const [index1, index2] = await Promise.all(published.map((p) => store.client.getChunkIndex(p.image.id)));
      const held = new Set(index1!.chunks.map(([id]) => id));
      const dataBlob = join(store.dir, "blobs", "sha256", v2.manifest.digest.slice(7, 9), v2.manifest.digest.slice(7));
      const fresh = chunkOffsets(index2!).filter((c) => !held.has(c.id));
      expect(fresh.length).toBeGreaterThan(0);
      const flip = () => {
        const fd = openSync(dataBlob, "r+");
        try {
          for (const c of fresh) {
            const bytes = Buffer.alloc(Math.min(c.size, 64));
            readSync(fd, bytes, 0, bytes.length, c.offset);
            writeSync(fd, bytes.map((b) => b ^ 0xff), 0, bytes.length, c.offset);
          }
        } finally {
          closeSync(fd);
        }
      };
      flip();
      wanted = v2.manifest.digest;
      serial = 4;
      expect(await failedUpgrade("corrupt chunks")).toContain("Corrupt image download");
      flip(); // and back
      // Bad input 4: a lying store. The metadata names the big image; the store answers with v2, a valid
      // image that fits, its record, chunk index and manifest all claiming big's digest. The node checks
      // the root it wrote against the digest its metadata names, and refuses before arming it.
      let since = progress.length;
      liar.lie({ named: big.digest, served: { id: published[1]!.image.id, digest: v2.manifest.digest } });
      wanted = big.digest;
      serial++;
      expect(await failedUpgrade("a lying store")).toContain(`is ${v2.manifest.digest}, not ${big.digest}`);
      liar.lie(undefined);
      expect(progress.slice(since).map((p) => p.phase)).not.toContain("switching");
      // Bad input 5: an image whose entry would be written through the running root's var/run → /run.
      // Refused before a byte of it is written: had the file reached /run, post-configure.d would
      // have run the takeover again before the signal, a second "checking" in the progress.
      since = progress.length;
      wanted = escape.digest;
      serial++;
      expect(await failedUpgrade("an entry beneath var/run")).toContain("./var/run/ooo/takeover-deferred would be written through a symlink");
      expect(progress.slice(since).filter((p) => p.phase === "checking")).toHaveLength(1);

      // Now the metadata names v2 again, and the store holds it intact. After each cut the node
      // comes back to metadata naming v1 (it runs v1: nothing to do), so that the test sees it boot
      // a complete root with its data before v2 is named again: the takeover, before the
      // configuration now, would otherwise race the test's checks.
      const nameV2 = () => {
        wanted = v2.manifest.digest;
        serial++;
      };
      const bootOnV1 = async () => {
        wanted = v1.manifest.digest;
        serial++;
        await powerOn();
        expect((await ready()).slot).toBe("A");
        await dataKept();
      };
      nameV2();

      // 1. Cut while writing (the slot half written; a cut while fetching, before it changes, is the
      //    lesser case): the old root boots, data intact, the node starts over.
      await cutAt("writing");
      await bootOnV1();
      nameV2();
      // 2. Cut right after the switch, the trial's try used up and the restart under way (the node
      //    says "rebooting" then): the old root boots, data intact...
      await cutAt("rebooting");
      await bootOnV1();
      // 3. ...the node tries the new root again (by kexec: v1 and v2 share their kernel), and a cut
      //    in that trial boot, before it was marked good, brings the old root back again.
      nameV2();
      await cutAt("rebooting");
      await bootOnV1();
      // Two trial boots without a word: the node gives this request up and says so.
      nameV2();
      const gaveUp = await until("the rolled-back signal", 900, () => signals.find((s) => s.data.upgrade?.result === "rolled-back"));
      expect(gaveUp.data.upgrade?.reason).toContain("did not come up 2 times");
      expect(gaveUp.data.node_state).toMatchObject({ slot: "A", digest: v1.manifest.digest, good: true });
      // Running the upgrade again (a new attempt) finishes the job: v2 runs, marked good, data kept.
      attempt = 1;
      nameV2();
      const done = await until("the upgraded signal", 1200, () =>
        signals.find((s) => s.status === "SUCCESS" && s.data.node_state?.digest === v2.manifest.digest && s.data.node_state.good),
      );
      expect(done.data.upgrade?.result).toBe("upgraded");
      expect(done.data.upgrade?.restart).toBe("kexec");
      // Written as a patched copy, its assembled stream the named digest: not the streamed fallback.
      expect(done.data.upgrade?.method).toBe("patched");
      await dataKept();
    } finally {
      await vm?.kill();
      server.stop(true);
      liar.stop();
      await store.stop();
      removeRunDir(runDir);
    }
  }, 60 * 60_000);
});

/**
 * A build output (manifest and canonical-format tar) of `base`'s root plus
 * one file of `extra` zero bytes: an image too big for the slots of `base`'s
 * disk. Zeros chunk to almost nothing, so publishing it is quick.
 */
async function oversizedBuild(base: string, out: string, extra: number): Promise<{ base: string; digest: string }> {
  const manifest = JSON.parse(readFileSync(`${base}.manifest.json`, "utf8"));
  const tar = join(dirname(base), manifest.artifacts.find((a: { type: string }) => a.type === "tar").file);
  const tarOut = `${out}.tar`;
  const hash = createHash("sha256");
  const sink = Bun.file(tarOut).writer();
  const put = (b: Uint8Array) => {
    hash.update(b);
    sink.write(b);
  };
  const size = statSync(tar).size;
  let done = 0;
  // Everything but the end-of-archive blocks, then the new entry, then the end again.
  for await (const chunk of Bun.file(tar).slice(0, size - END_OF_ARCHIVE.length).stream()) {
    put(chunk);
    done += chunk.length;
  }
  expect(done).toBe(size - END_OF_ARCHIVE.length);
  put(encodeHeader({ path: "./var/ooo-ballast", type: "file", mode: 0o644, uid: 0, gid: 0, size: extra, mtime: manifest.sourceDateEpoch }));
  const zeros = new Uint8Array(2 ** 20);
  for (let left = extra; left > 0; left -= zeros.length) put(zeros.subarray(0, Math.min(left, zeros.length)));
  put(padding(extra));
  put(END_OF_ARCHIVE);
  await sink.end();
  const sha256 = hash.digest("hex");
  const digest = `sha256:${sha256}`;
  writeFileSync(
    `${out}.manifest.json`,
    JSON.stringify({ ...manifest, digest, artifacts: [{ type: "tar", file: basename(tarOut), sha256, size: statSync(tarOut).size }] }, null, 2),
  );
  return { base: out, digest };
}
