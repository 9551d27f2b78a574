import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { log } from "../lib/log.ts";
import { parseWith } from "../lib/validate.ts";
import { type ChunkIndex, chunkOffsets } from "../wire/chunk-index.ts";
import { Manifest } from "../wire/manifest.ts";
import type { StoreClient } from "../store/client/client.ts";
import { StoreRequestFailed } from "../store/client/errors.ts";
import type { GlanceImage } from "../store/client/image.ts";
import { indexStream } from "../store/client/indexer.ts";
import { openSeed } from "../store/client/seed.ts";
import type { SecretKey } from "../lib/minisign.ts";
import { PublishFailed, UnpublishableBuild } from "./errors.ts";
import { signImage } from "./signing.ts";

/**
 * `ooo publish OUTPUT`: put a build into the image store. OUTPUT is the
 * build's -o path; its manifest (`OUTPUT.manifest.json`) names the artifacts.
 *
 * The image's data is the root's canonical tar (its sha256 is the manifest
 * digest), stored as content-defined chunks too so that nodes fetch only
 * what changed; the other artifacts (disk images, kernel, initrd) and the
 * manifest are blobs the manifest points to.
 *
 * Idempotent by digest: an image with this digest already published is left
 * as it is (uploading nothing); a publish that died half-way is completed.
 * Only the chunks the store lacks are sent — unless most are missing (a
 * first publish), when sending the tar whole is faster and the store cuts it
 * itself.
 */
export interface PublishOptions {
  client: StoreClient;
  /** The build's -o path (NAME.manifest.json and the artifacts beside it). */
  output: string;
  version?: string;
  tags?: string[];
  concurrency?: number;
  /** Sign the manifest with this key (signing.ts), and store the signature with the image. */
  sign?: SecretKey;
  /** Told the image record once there is one (found or created): what an interrupted publish leaves. */
  onRecord?: (image: GlanceImage) => void;
}

export interface PublishReport {
  image: GlanceImage;
  digest: string;
  version: string;
  alreadyPublished: boolean;
  /** Bytes of all artifacts (what a naive upload would send). */
  totalBytes: number;
  /** Bytes actually sent: chunks, whole data, artifacts, index, manifest. */
  sentBytes: number;
  chunks: { total: number; sent: number };
  mode: "chunks" | "whole" | "none";
  /** The id of the key that signed the manifest, when asked to sign. */
  signedBy?: string;
}

/** Debian's architecture names → Glance's `architecture` property (libosinfo's). */
const GLANCE_ARCH: Record<string, string> = { amd64: "x86_64", arm64: "aarch64", i386: "i686", armhf: "armv7l" };

function readManifest(output: string) {
  const path = `${output}.manifest.json`;
  if (!existsSync(path))
    throw new UnpublishableBuild(`no build manifest at ${path}`, { hint: "Publish the -o path of a finished build (ooo build-image -o OUTPUT …)." });
  const text = readFileSync(path, "utf8");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new UnpublishableBuild(`${path} is not valid JSON`);
  }
  return { text, manifest: parseWith(Manifest, raw, "invalid build manifest", { file: path }), dir: dirname(path) };
}

/** Read one chunk of the tar back by its offset (to send it). */
function readAt(path: string, offset: number, size: number): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) done += readSync(fd, buf, done, size - done, offset + done);
    return buf;
  } finally {
    closeSync(fd);
  }
}

async function parallel<T>(items: T[], width: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** The image of this build, if one exists: active, or being published (queued, saving). */
async function findExisting(client: StoreClient, name: string, digest: string): Promise<GlanceImage | undefined> {
  let best: GlanceImage | undefined;
  for await (const image of client.listImages({ name, ooo_digest: digest })) {
    if (image.status === "active") return image;
    best ??= image;
  }
  return best;
}

async function nextVersion(client: StoreClient, name: string): Promise<string> {
  let max = 0;
  for await (const image of client.listImages({ name })) {
    const v = Number(image.ooo_version);
    if (Number.isSafeInteger(v) && v > max) max = v;
  }
  return String(max + 1);
}

/**
 * Create the record. A 409 means a concurrent publish got there first: with
 * this digest (the store allows one image per name and digest) — then use
 * its record — or with the next version number — then take the one after.
 */
async function createRecord(client: StoreClient, fields: Record<string, unknown>, name: string, version: string | undefined) {
  for (let attempt = 0; ; attempt++) {
    const v = version ?? (await nextVersion(client, name));
    try {
      return await client.createImage({ ...fields, ooo_version: v });
    } catch (e) {
      if (!(e instanceof StoreRequestFailed && e.status === 409) || attempt >= 5) throw e;
      const winner = await findExisting(client, name, fields.ooo_digest as string);
      if (winner) return winner;
      if (version !== undefined) throw e;
    }
  }
}

/**
 * Run a step that moves the image's data (upload, chunk index). A 409 means
 * another publisher of this build is saving it right now: wait for that to
 * end, and if it failed (back to queued) run the step ourselves.
 */
async function ourselvesOrTheOther(client: StoreClient, id: string, step: () => Promise<unknown>): Promise<GlanceImage> {
  for (let attempt = 0; ; attempt++) {
    try {
      await step();
      return client.getImage(id);
    } catch (e) {
      if (!(e instanceof StoreRequestFailed && e.status === 409) || attempt >= 3) throw e;
    }
    for (const deadline = Date.now() + 30 * 60_000; ; ) {
      const image = await client.getImage(id);
      if (image.status === "active") return image;
      if (image.status === "queued") break;
      if (Date.now() > deadline) throw new PublishFailed(`image ${id} stayed ${image.status}: is another publish stuck?`);
      await Bun.sleep(200);
    }
  }
}

export async function publish(options: PublishOptions): Promise<PublishReport> {
  const { client } = options;
  const { text, manifest, dir } = readManifest(options.output);
  const files = manifest.artifacts.map((a) => {
    const path = join(dir, a.file);
    if (!existsSync(path)) throw new UnpublishableBuild(`artifact ${a.file} listed in the manifest is missing (${path})`);
    if (statSync(path).size !== a.size) throw new UnpublishableBuild(`artifact ${path} is ${statSync(path).size} bytes; the manifest says ${a.size}`);
    return { ...a, path };
  });
  const tar = files.find((a) => a.type === "tar");
  if (!tar) throw new UnpublishableBuild(`the build has no tar artifact`, { hint: "Build with -t tar (plus any disk formats): nodes fetch the root's canonical tar." });
  if (`sha256:${tar.sha256}` !== manifest.digest)
    throw new UnpublishableBuild(`${tar.file} has sha256 ${tar.sha256} but the manifest digest is ${manifest.digest}`);
  const totalBytes = files.reduce((n, a) => n + a.size, 0);
  const report: PublishReport = {
    image: undefined as unknown as GlanceImage,
    digest: manifest.digest,
    version: "",
    alreadyPublished: false,
    totalBytes,
    sentBytes: 0,
    chunks: { total: 0, sent: 0 },
    mode: "none",
  };

  const info = await client.info();
  // Before anything is sent: a publish that cannot sign must not leave an unsigned image.
  if (options.sign && !info) throw new PublishFailed("a plain Glance keeps no manifest: there is nothing to sign; nothing was sent");
  let image = await findExisting(client, manifest.name, manifest.digest);
  if (image) options.onRecord?.(image);
  const fields = {
    name: manifest.name,
    disk_format: info ? "tar" : "raw", // a stock Glance knows no "tar" disk format
    container_format: "bare",
    ooo_digest: manifest.digest,
    architecture: GLANCE_ARCH[manifest.arch] ?? manifest.arch,
  };

  if (!info) {
    // A plain Glance: the tar as image data, nothing more.
    log.warn("the store is a plain Glance: publishing the tar only, without chunks or manifest");
    if (image?.status !== "active") {
      image ??= await createRecord(client, fields, manifest.name, options.version);
      options.onRecord?.(image);
      image = await log.step(`upload ${tar.file}`, async () => {
        const uploaded = await ourselvesOrTheOther(client, image!.id, () => client.uploadData(image!.id, tar.path));
        log.bytes(tar.size);
        return uploaded;
      });
      report.sentBytes += tar.size;
      report.mode = "whole";
    } else report.alreadyPublished = true;
  } else if (image?.status === "active" && image.ooo_chunk_index && image.ooo_manifest) {
    report.alreadyPublished = true;
  } else {
    const index: ChunkIndex = await log.step(`cut ${tar.file} into chunks`, () =>
      indexStream(openSeed(tar.path, { sourceDateEpoch: manifest.sourceDateEpoch }).stream(), info.chunker, undefined, { entries: true }),
    );
    if (index.digest !== manifest.digest) throw new PublishFailed(`${tar.file} changed: it no longer has the manifest's digest`);
    report.chunks.total = new Set(index.chunks.map(([id]) => id)).size;
    const others = files.filter((a) => a !== tar);
    const missing = new Set(
      await client.missingBlobs([...new Set([...index.chunks.map(([id]) => `sha256:${id}`), ...others.map((a) => `sha256:${a.sha256}`)])]),
    );
    image ??= await createRecord(client, fields, manifest.name, options.version);
    options.onRecord?.(image);

    if (image.status !== "active") {
      const missingChunks = chunkOffsets(index).filter((c) => missing.has(`sha256:${c.id}`));
      const missingBytes = missingChunks.reduce((n, c) => n + c.size, 0);
      if (missingBytes > index.size / 2) {
        report.mode = "whole";
        image = await log.step(`upload ${tar.file} whole (${missingChunks.length} of ${index.chunks.length} chunks are new)`, async () => {
          const uploaded = await ourselvesOrTheOther(client, image!.id, () => client.uploadData(image!.id, tar.path));
          log.bytes(tar.size);
          return uploaded;
        });
        report.sentBytes += tar.size;
      } else {
        report.mode = "chunks";
        const unique = [...new Map(missingChunks.map((c) => [c.id, c])).values()];
        await log.step(`upload ${unique.length} new chunks of ${report.chunks.total}`, () =>
          parallel(unique, options.concurrency ?? 8, async (c) => {
            await client.putBlob(`sha256:${c.id}`, readAt(tar.path, c.offset, c.size));
            report.sentBytes += c.size;
            log.bytes(c.size);
            report.chunks.sent++;
          }),
        );
      }
    }
    // Queued: the store assembles the data from the chunks. Active: it cuts its own data.
    if (!image.ooo_chunk_index) {
      image = await log.step("attach the chunk index", () => ourselvesOrTheOther(client, image!.id, () => client.putChunkIndex(image!.id, index)));
      report.sentBytes += JSON.stringify(index).length;
    }

    for (const a of others.filter((a) => missing.has(`sha256:${a.sha256}`))) {
      await log.step(`upload ${a.file}`, async () => {
        await client.putBlob(`sha256:${a.sha256}`, a.path);
        log.bytes(a.size);
      });
      report.sentBytes += a.size;
    }
    image = await client.putManifest(image.id, text);
    report.sentBytes += text.length;
  }

  if (options.sign) {
    report.signedBy = await signImage(client, await client.getImage(image!.id), text, manifest, options.sign);
  }
  for (const tag of options.tags ?? []) await client.addTag(image!.id, tag);
  report.image = options.tags?.length || options.sign ? await client.getImage(image!.id) : image!;
  report.version = report.image.ooo_version ?? "";
  return report;
}
