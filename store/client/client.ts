import { ChunkIndex } from "../../wire/chunk-index.ts";
import { Manifest } from "../../wire/manifest.ts";
import { readFileSync } from "node:fs";
import { clientTls } from "../../lib/tls.ts";
import { StoreCaUnreadable, StoreRequestFailed, StoreUnreachable } from "./errors.ts";
import { ConnectFailed, getToFile, type FileGet } from "./get-to-file.ts";
import { GlanceImage } from "./image.ts";
import { z } from "zod";

const TempUrl = z.object({ url: z.string(), expires: z.number(), expires_at: z.string() });
export type TempUrl = z.infer<typeof TempUrl>;

/**
 * A client for the image store's HTTP API — ours, or a real Glance for the
 * standard calls. It imports nothing from the server side, so the node
 * agents can compile it in (boundary.test.ts). It speaks as the glance CLI
 * does: `X-Auth-Token`, root-relative `next` links appended to the endpoint,
 * JSON patches in the v2.1 media type.
 */
export interface ClientOptions {
  /** The endpoint, e.g. https://store:9292 (a trailing /v2 is dropped, as the glance CLI does). */
  url: string;
  token?: string;
  /**
   * PEM of the CA to trust for https (default: the file OOO_STORE_CA names,
   * else the system's CAs). The certificate is always verified.
   */
  ca?: string;
  /** The name the store's certificate carries, when the URL reaches it by another (a node's forward). */
  serverName?: string;
  /** Where the URL came from, for the hint when the store cannot be reached ("--store or OOO_STORE_URL", "store.url in stack.yaml"). */
  source?: string;
}

/** The CA the environment names for the store (OOO_STORE_CA, a PEM file). */
export function storeCaFromEnv(env: Record<string, string | undefined> = process.env): string | undefined {
  const file = env.OOO_STORE_CA;
  if (!file) return undefined;
  try {
    return readFileSync(file, "utf8");
  } catch {
    throw new StoreCaUnreadable(file, "OOO_STORE_CA");
  }
}

export interface PatchOp {
  op: "add" | "replace" | "remove";
  path: string;
  value?: unknown;
}

/** What /v2/ooo/info says; a real Glance has no such resource. */
export interface StoreInfo {
  store: "ooo";
  backend: string;
  chunker: { algorithm: string; min: number; avg: number; max: number };
}

type Query = Record<string, string | number | string[] | undefined>;

function queryString(q: Query): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) p.append(k, String(one));
  }
  return p.size ? `?${p}` : "";
}

/** The message of an error body: Glance's `{"error": {"message": …}}`, ours alike, or text. */
async function errorDetail(res: Response): Promise<string> {
  return errorMessage(await res.text().catch(() => ""), res.statusText);
}

function errorMessage(text: string, fallback: string): string {
  try {
    const body = JSON.parse(text) as Record<string, { message?: string; title?: string }>;
    const messages = Object.values(body).map((v) => v?.message ?? v?.title).filter(Boolean);
    if (messages.length) return messages.join("; ");
  } catch {}
  return text.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").trim().slice(0, 300) || fallback;
}

/** fetch() honours these; the direct path to a file does not speak to proxies. */
const PROXY_VARIABLES = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];

export class StoreClient {
  readonly url: string;
  private readonly token?: string;
  private readonly tls: ReturnType<typeof clientTls>;
  private readonly source?: string;

  constructor(options: ClientOptions) {
    this.source = options.source;
    this.url = options.url.replace(/\/+$/, "").replace(/\/v2$/, "");
    this.token = options.token;
    this.tls = clientTls({ ca: options.ca ?? storeCaFromEnv(), serverName: options.serverName });
  }

  /** One request; throws unless the status is in `ok`. The body is the caller's to read. */
  async request(
    method: string,
    path: string,
    init: { body?: RequestInit["body"]; headers?: Record<string, string>; ok?: number[]; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const url = `${this.url}${path}`;
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    if (this.token) headers["X-Auth-Token"] = this.token;
    let res: Response;
    try {
      res = await fetch(url, { method, body: init.body, headers, signal: init.signal, redirect: "manual", ...this.tls });
    } catch (e) {
      throw new StoreUnreachable(this.url, e, this.source);
    }
    if (!(init.ok ?? [200]).includes(res.status)) throw new StoreRequestFailed(method, path, res.status, await errorDetail(res));
    return res;
  }

  private async json(method: string, path: string, body?: unknown, ok = [200], contentType = "application/json"): Promise<unknown> {
    const res = await this.request(method, path, {
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { "Content-Type": contentType },
      ok,
    });
    return res.status === 204 ? undefined : res.json();
  }

  /** ooo's extensions, or undefined when the server is a plain Glance. */
  async info(): Promise<StoreInfo | undefined> {
    const res = await this.request("GET", "/v2/ooo/info", { ok: [200, 404] });
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    return (await res.json()) as StoreInfo;
  }

  /** What this client's token may do; undefined when the server cannot say (a plain Glance). */
  async tokenScope(): Promise<"read" | "write" | undefined> {
    const res = await this.request("GET", "/v2/ooo/whoami", { ok: [200, 404] });
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    const scope = ((await res.json()) as { scope?: unknown }).scope;
    return scope === "read" || scope === "write" ? scope : undefined;
  }

  // --- Glance v2 ---

  async createImage(fields: Record<string, unknown>): Promise<GlanceImage> {
    return GlanceImage.parse(await this.json("POST", "/v2/images", fields, [201]));
  }

  async getImage(id: string): Promise<GlanceImage> {
    return GlanceImage.parse(await this.json("GET", `/v2/images/${encodeURIComponent(id)}`));
  }

  /** Every image matching the filters, following `next` page by page. */
  async *listImages(filters: Query = {}, pageSize = 200): AsyncGenerator<GlanceImage> {
    let path: string | undefined = `/v2/images${queryString({ limit: pageSize, ...filters })}`;
    while (path) {
      const page = (await this.json("GET", path)) as { images: unknown[]; next?: string };
      for (const image of page.images) yield GlanceImage.parse(image);
      path = page.next && page.images.length ? page.next : undefined;
    }
  }

  async updateImage(id: string, ops: PatchOp[]): Promise<GlanceImage> {
    return GlanceImage.parse(
      await this.json("PATCH", `/v2/images/${encodeURIComponent(id)}`, ops, [200], "application/openstack-images-v2.1-json-patch"),
    );
  }

  async deleteImage(id: string) {
    await this.request("DELETE", `/v2/images/${encodeURIComponent(id)}`, { ok: [204] });
  }

  async addTag(id: string, tag: string) {
    await this.request("PUT", `/v2/images/${encodeURIComponent(id)}/tags/${encodeURIComponent(tag)}`, { ok: [204] });
  }

  async removeTag(id: string, tag: string) {
    await this.request("DELETE", `/v2/images/${encodeURIComponent(id)}/tags/${encodeURIComponent(tag)}`, { ok: [204] });
  }

  /** PUT …/file. A path is streamed from disk; `size` is sent as x-openstack-image-size. */
  async uploadData(id: string, data: string | Uint8Array | ReadableStream<Uint8Array>, options: { size?: number; allowEmpty?: boolean } = {}) {
    const body = typeof data === "string" ? Bun.file(data) : data;
    const headers: Record<string, string> = { "Content-Type": "application/octet-stream" };
    const size = options.size ?? (typeof data === "string" ? Bun.file(data).size : data instanceof Uint8Array ? data.length : undefined);
    if (size !== undefined) headers["x-openstack-image-size"] = String(size);
    if (options.allowEmpty) headers["x-ooo-allow-empty"] = "true";
    await this.request("PUT", `/v2/images/${encodeURIComponent(id)}/file`, { body, headers, ok: [204] });
  }

  /** GET …/file, whole or from a Range; 200, 206 or 204 (no data). */
  async downloadData(id: string, range?: { start: number; end?: number }, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {};
    if (range) headers.Range = `bytes=${range.start}-${range.end === undefined ? "" : range.end - 1}`;
    return this.request("GET", `/v2/images/${encodeURIComponent(id)}/file`, { headers, ok: [200, 204, 206], signal });
  }

  /**
   * GET …/file into `fd` (appended to), whole or from a Range: 200 or 206
   * with the bytes written, 204 without data, or — a server that ignores
   * Range — 200 to a Range request, `rangeIgnored` and nothing written. Over
   * plain http without a proxy the body goes from the socket to the file on
   * a thread of its own (get-to-file.ts: half fetch's CPU per byte).
   */
  async downloadDataToFile(
    id: string,
    fd: number,
    range?: { start: number },
  ): Promise<{ status: number; headers: Headers; written: number; rangeIgnored: boolean }> {
    const path = `/v2/images/${encodeURIComponent(id)}/file`;
    const data = range ? 206 : 200;
    if (!this.url.startsWith("http:") || PROXY_VARIABLES.some((v) => process.env[v])) {
      const res = await this.downloadData(id, range);
      if (res.status !== data) {
        await res.body?.cancel();
        return { status: res.status, headers: res.headers, written: 0, rangeIgnored: res.status === 200 };
      }
      return { status: res.status, headers: res.headers, written: await Bun.write(Bun.file(fd), res), rangeIgnored: false };
    }
    const headers: Record<string, string> = {};
    if (range) headers.Range = `bytes=${range.start}-`;
    if (this.token) headers["X-Auth-Token"] = this.token;
    let got: FileGet;
    try {
      got = await getToFile(new URL(`${this.url}${path}`), headers, fd, { dataStatuses: [data] });
    } catch (e) {
      if (e instanceof ConnectFailed) throw new StoreUnreachable(this.url, e, this.source);
      throw e;
    }
    if (![200, 204, 206].includes(got.status)) throw new StoreRequestFailed("GET", path, got.status, errorMessage(got.text ?? "", `HTTP ${got.status}`));
    return { status: got.status, headers: got.headers, written: got.written, rangeIgnored: range !== undefined && got.status === 200 };
  }

  // --- ooo extensions ---

  /** Which of these blobs the store lacks. */
  async missingBlobs(digests: string[]): Promise<string[]> {
    const missing: string[] = [];
    for (let i = 0; i < digests.length; i += 50_000) {
      const page = (await this.json("POST", "/v2/ooo/blobs/missing", { digests: digests.slice(i, i + 50_000) })) as { missing: string[] };
      missing.push(...page.missing);
    }
    return missing;
  }

  /** Upload a blob; the store checks it against its digest. A path is streamed from disk. */
  async putBlob(digest: string, data: string | Uint8Array) {
    const body = typeof data === "string" ? Bun.file(data) : data;
    await this.request("PUT", `/v2/ooo/blobs/${digest}`, { body, headers: { "Content-Type": "application/octet-stream" }, ok: [201, 204] });
  }

  async getBlob(digest: string): Promise<Uint8Array> {
    const res = await this.request("GET", `/v2/ooo/blobs/${digest}`);
    return new Uint8Array(await res.arrayBuffer());
  }

  /**
   * A signed URL of one of the image's blobs that works without a token
   * until it expires (ooo's store only): for a client that can send none,
   * such as Ironic's conductor and agent. Its origin is the one this
   * client used; the signature does not cover it.
   */
  async tempUrl(id: string, digest: string, ttlSeconds?: number): Promise<TempUrl> {
    const path = `/v2/images/${encodeURIComponent(id)}/blobs/${digest}/temp-url${ttlSeconds === undefined ? "" : `?ttl=${ttlSeconds}`}`;
    const parsed = TempUrl.safeParse(await this.json("GET", path));
    if (!parsed.success) throw new StoreRequestFailed("GET", path, 200, "the store answered no signed URL (is it ooo's store?)");
    return parsed.data;
  }

  async putChunkIndex(id: string, index: ChunkIndex): Promise<GlanceImage> {
    return GlanceImage.parse(await this.json("PUT", `/v2/images/${encodeURIComponent(id)}/chunk-index`, index));
  }

  async getChunkIndex(id: string): Promise<ChunkIndex> {
    return ChunkIndex.parse(await this.json("GET", `/v2/images/${encodeURIComponent(id)}/chunk-index`));
  }

  async putManifest(id: string, manifestText: string): Promise<GlanceImage> {
    const res = await this.request("PUT", `/v2/images/${encodeURIComponent(id)}/manifest`, {
      body: manifestText,
      headers: { "Content-Type": "application/json" },
    });
    return GlanceImage.parse(await res.json());
  }

  async getManifest(id: string): Promise<Manifest> {
    return Manifest.parse(JSON.parse(await this.getManifestText(id)));
  }

  /** The manifest exactly as stored: its signature is over these bytes. */
  async getManifestText(id: string): Promise<string> {
    return (await this.request("GET", `/v2/images/${encodeURIComponent(id)}/manifest`)).text();
  }

  async putManifestSignature(id: string, minisig: string): Promise<GlanceImage> {
    const res = await this.request("PUT", `/v2/images/${encodeURIComponent(id)}/manifest.minisig`, {
      body: minisig,
      headers: { "Content-Type": "text/plain" },
    });
    return GlanceImage.parse(await res.json());
  }

  /** The manifest's minisign signature, or undefined when it is not signed. */
  async getManifestSignature(id: string): Promise<string | undefined> {
    const res = await this.request("GET", `/v2/images/${encodeURIComponent(id)}/manifest.minisig`, { ok: [200, 404] });
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    return res.text();
  }
}
