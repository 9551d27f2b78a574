import { randomUUID } from "node:crypto";
import { ALGORITHM, DEFAULT_CHUNKER } from "../lib/chunking.ts";
import { isOooError } from "../lib/errors.ts";
import { BodyTooLarge, Busy, ByteBudget, declaredTooLarge } from "../lib/limits.ts";
import { log } from "../lib/log.ts";
import { type Access, accessOf, requireWrite, type Tokens } from "./auth.ts";
import { MAX_MISSING_QUERY_BYTES, missingBlobs, putBlob, readBlob } from "./blobs.ts";
import { attachChunkIndex, MAX_INDEX_BYTES, readChunkIndex } from "./chunked.ts";
import { BadRequest, isDiskFull, NotFound, StorageFull, StoreError, TooLarge, TooManyRequests, UnsupportedMediaType } from "./errors.ts";
import { glanceView } from "./image.ts";
import { attachManifest, attachSignature, MAX_MANIFEST_BYTES, MAX_SIGNATURE_BYTES, readManifest, readSignature } from "./manifest.ts";
import { PATCH_TYPES } from "./patch.ts";
import { SIGNED, TempUrls } from "./temp-url.ts";
import { imageSchema, imagesSchema } from "./schemas.ts";
import type { Store } from "./store.ts";

/**
 * HTTP → Store: the Glance v2 image API subset clients use (as the glance
 * CLI and Glance's api-ref speak it) and ooo's extensions under /v2/ooo and
 * /v2/images/{id}/{chunk-index,manifest}. Only translation lives here;
 * every rule is in the store. Access is decided in one place, dispatch():
 * any token reads, and every method but GET and HEAD needs a write token,
 * so a new route is closed to readers unless it is a GET.
 */
const API_VERSIONS = ["v2.9", "v2.8", "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0"];
/** An image record's JSON (a create, a PATCH): Glance's records are a few KiB (128 properties of 255 characters). */
const MAX_RECORD_JSON = 1 << 20;
/**
 * Bytes of request bodies read whole (records, chunk indexes, manifests,
 * blob queries) held at once across requests: a few publishers at a time
 * fit (an index of a 2 GiB root is ~5 MiB); more gets 429 and retries.
 */
export const BODY_BUDGET = 128 << 20;
const OCTETS = "application/octet-stream";

/** `access`: what the request's token may do (dispatch checked it against the method already). */
type Handler = (req: Request, params: string[], access: Access) => Promise<Response> | Response;
/** A route: GET (and HEAD) read; every other method writes, and needs a write token (dispatch checks it, not the handler). */
export type Route = [method: string, pattern: string, handler: Handler];

/** The request body as bytes, empty if none was sent. */
const bodyOf = (req: Request): AsyncIterable<Uint8Array> => req.body ?? (async function* () {})();

function json(body: unknown, status = 200, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json; charset=UTF-8", ...headers } });
}

function versions(req: Request, status: number) {
  const base = new URL(req.url).origin;
  return json(
    {
      versions: API_VERSIONS.map((id, i) => ({
        id,
        status: i === 0 ? "CURRENT" : "SUPPORTED",
        links: [{ rel: "self", href: `${base}/v2/` }],
      })),
    },
    status,
  );
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  410: "Gone",
  413: "Request Entity Too Large",
  415: "Unsupported Media Type",
  416: "Requested Range Not Satisfiable",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** Errors as objects at every top level: the glance CLI calls .get() on each value. */
function errorResponse(status: number, message: string, headers: Record<string, string> = {}) {
  return json({ error: { code: status, title: TITLES[status] ?? "Error", message } }, status, headers);
}

/** The whole body as text, at most `max` bytes, held against the budget until `use` is done with it. */
async function withText<T>(req: Request, max: number, budget: ByteBudget, use: (text: string) => Promise<T>): Promise<T> {
  const tooLarge = () => new TooLarge(`Request body is larger than ${max} bytes, the most this resource takes`);
  if (declaredTooLarge(req.headers, max)) throw tooLarge();
  try {
    return await budget.read(req.body, max, (bytes) => use(new TextDecoder().decode(bytes)));
  } catch (e) {
    if (e instanceof BodyTooLarge) throw tooLarge();
    if (e instanceof Busy)
      throw new TooManyRequests("The store is reading too many large requests at once; retry in a moment", e.retryAfterSeconds);
    throw e;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BadRequest("The request body is not valid JSON");
  }
}

function declaredSize(req: Request, header: string): number | undefined {
  const v = req.headers.get(header);
  if (v === null) return undefined;
  if (!/^\d+$/.test(v)) throw new BadRequest(`Invalid ${header}: ${v}`);
  return Number(v);
}

function dataResponse(
  body: Blob | ReadableStream<Uint8Array>,
  size: number,
  range: { start: number; end: number } | undefined,
  extra: Record<string, string> = {},
) {
  const headers: Record<string, string> = {
    "Content-Type": OCTETS, // exactly this, or the glance CLI parses the data as text
    "Content-Length": String(range ? range.end - range.start : size),
    "Accept-Ranges": "bytes",
    ...extra,
  };
  if (range) headers["Content-Range"] = `bytes ${range.start}-${range.end - 1}/${size}`;
  return new Response(body, { status: range ? 206 : 200, headers });
}

export function routes(store: Store, budget = new ByteBudget(BODY_BUDGET)): Route[] {
  const image = (id: string) => glanceView(store.get(id));
  const withJson = <T>(req: Request, max: number, use: (body: unknown) => Promise<T>) => withText(req, max, budget, (text) => use(parseJson(text)));
  return [
    ["GET", "/v2/schemas/image", () => json(imageSchema())],
    ["GET", "/v2/schemas/images", () => json(imagesSchema())],
    [
      "GET",
      "/v2/images",
      (req) => {
        const page = store.list(new URL(req.url).searchParams);
        return json({
          images: page.images.map(glanceView),
          first: page.first,
          schema: "/v2/schemas/images",
          ...(page.next ? { next: page.next } : {}),
        });
      },
    ],
    [
      "POST",
      "/v2/images",
      async (req) => {
        const r = await withJson(req, MAX_RECORD_JSON, (body) => store.create(body));
        return json(glanceView(r), 201, { Location: `${new URL(req.url).origin}/v2/images/${r.id}` });
      },
    ],
    ["GET", "/v2/images/:id", (_req, [id]) => json(image(id!))],
    [
      "PATCH",
      "/v2/images/:id",
      async (req, [id]) => {
        const type = (req.headers.get("Content-Type") ?? "").split(";")[0]!.trim();
        if (!PATCH_TYPES.includes(type))
          throw new UnsupportedMediaType(`Unsupported Content-Type ${type || "(none)"} for PATCH`, { "Accept-Patch": PATCH_TYPES.join(", ") });
        return json(glanceView(await withJson(req, MAX_RECORD_JSON, (body) => store.update(id!, body))));
      },
    ],
    [
      "DELETE",
      "/v2/images/:id",
      async (_req, [id]) => {
        await store.delete(id!);
        return new Response(null, { status: 204 });
      },
    ],
    [
      "PUT",
      "/v2/images/:id/file",
      async (req, [id]) => {
        const type = (req.headers.get("Content-Type") ?? "").split(";")[0]!.trim();
        if (type !== OCTETS) throw new UnsupportedMediaType(`Image data must be sent as ${OCTETS}, not ${type || "(none)"}`);
        await store.upload(id!, bodyOf(req), {
          declaredSize: declaredSize(req, "x-openstack-image-size"),
          allowEmpty: req.headers.get("x-ooo-allow-empty") === "true",
        });
        return new Response(null, { status: 204 });
      },
    ],
    [
      "GET",
      "/v2/images/:id/file",
      async (req, [id]) => {
        const d = await store.download(id!, req.headers.get("Range"), req.method === "GET" ? req.headers.get("Content-Range") : null);
        if (!d.body) return new Response(null, { status: 204 });
        const extra: Record<string, string> = {};
        // Glance sends the whole image's md5 hex here, even on a 206.
        if (d.md5) extra["Content-MD5"] = d.md5;
        if (d.sha256) extra["X-Ooo-Digest"] = `sha256:${d.sha256}`;
        return dataResponse(d.body, d.size, d.range, extra);
      },
    ],
    [
      "POST",
      "/v2/images/:id/actions/deactivate",
      async (_req, [id]) => {
        await store.deactivate(id!);
        return new Response(null, { status: 204 });
      },
    ],
    [
      "POST",
      "/v2/images/:id/actions/reactivate",
      async (_req, [id]) => {
        await store.reactivate(id!);
        return new Response(null, { status: 204 });
      },
    ],
    [
      "PUT",
      "/v2/images/:id/tags/:tag",
      async (_req, [id, tag]) => {
        await store.addTag(id!, tag!);
        return new Response(null, { status: 204 });
      },
    ],
    [
      "DELETE",
      "/v2/images/:id/tags/:tag",
      async (_req, [id, tag]) => {
        await store.removeTag(id!, tag!);
        return new Response(null, { status: 204 });
      },
    ],
    [
      "PUT",
      "/v2/images/:id/chunk-index",
      async (req, [id]) => {
        return json(glanceView(await withText(req, MAX_INDEX_BYTES, budget, (text) => attachChunkIndex(store, id!, text))));
      },
    ],
    [
      "GET",
      "/v2/images/:id/chunk-index",
      async (_req, [id]) => new Response(await readChunkIndex(store, id!), { headers: { "Content-Type": "application/json" } }),
    ],
    [
      "PUT",
      "/v2/images/:id/manifest",
      async (req, [id]) => {
        return json(glanceView(await withText(req, MAX_MANIFEST_BYTES, budget, (text) => attachManifest(store, id!, text))));
      },
    ],
    [
      "GET",
      "/v2/images/:id/manifest",
      async (_req, [id]) => new Response(await readManifest(store, id!), { headers: { "Content-Type": "application/json" } }),
    ],
    [
      "PUT",
      "/v2/images/:id/manifest.minisig",
      async (req, [id]) => json(glanceView(await withText(req, MAX_SIGNATURE_BYTES, budget, (text) => attachSignature(store, id!, text)))),
    ],
    [
      "GET",
      "/v2/images/:id/manifest.minisig",
      async (_req, [id]) => new Response(await readSignature(store, id!), { headers: { "Content-Type": "text/plain; charset=utf-8" } }),
    ],
    [
      "GET",
      "/v2/ooo/info",
      () => json({ store: "ooo", backend: store.backend.kind, chunker: { algorithm: ALGORITHM, ...DEFAULT_CHUNKER } }),
    ],
    // What the caller's token may do: a deployer hands nodes only a read token.
    ["GET", "/v2/ooo/whoami", (_req, _params, access) => json({ scope: access })],
    [
      "POST",
      "/v2/ooo/blobs/missing",
      async (req) => json({ missing: await withJson(req, MAX_MISSING_QUERY_BYTES, (body) => missingBlobs(store, body)) }),
    ],
    [
      "PUT",
      "/v2/ooo/blobs/:digest",
      async (req, [digest]) => {
        const blob = await putBlob(store, digest!, bodyOf(req), declaredSize(req, "Content-Length"));
        return new Response(null, { status: blob.existed ? 204 : 201 });
      },
    ],
    [
      "GET",
      "/v2/ooo/blobs/:digest",
      async (req, [digest]) => {
        const b = await readBlob(store, digest!, req.headers.get("Range"));
        return dataResponse(b.body, b.size, b.range);
      },
    ],
    // A signed URL of one of the image's blobs, for a client that cannot send a token (temp-url.ts).
    [
      "GET",
      "/v2/images/:id/blobs/:digest/temp-url",
      async (req, [id, digest]) => {
        const url = new URL(req.url);
        return json(await store.tempUrls.issue(url.origin, id!, digest!, url.searchParams.get("ttl")));
      },
    ],
  ];
}

function match(pattern: string, segments: string[]): string[] | undefined {
  const parts = pattern.split("/").slice(1);
  if (parts.length !== segments.length) return undefined;
  const params: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    if (parts[i]!.startsWith(":")) params.push(segments[i]!);
    else if (parts[i] !== segments[i]) return undefined;
  }
  return params;
}

export interface ApiOptions {
  tokens: Tokens;
  /** Bytes of whole-body reads held at once (default BODY_BUDGET). */
  bodyBudget?: number;
}

/** The request handler for Bun.serve. */
export function createApi(store: Store, options: ApiOptions): (req: Request) => Promise<Response> {
  const table = routes(store, new ByteBudget(options.bodyBudget ?? BODY_BUDGET));
  return async (req) => {
    const t0 = performance.now();
    const url = new URL(req.url);
    const requestId = `req-${randomUUID()}`;
    let response: Response;
    try {
      response = await dispatch(req, url, table, store, options);
    } catch (e) {
      response = toResponse(e);
    }
    response.headers.set("x-openstack-request-id", requestId);
    const ms = (performance.now() - t0).toFixed(0);
    // A signed URL's signature is a key to its blob: not in the log.
    if (TempUrls.carried(url)) url.searchParams.set(SIGNED.sig, "…");
    log.info(`${req.method} ${url.pathname}${url.search} ${response.status} ${ms}ms`);
    return response;
  };
}

async function dispatch(req: Request, url: URL, table: Route[], store: Store, options: ApiOptions) {
  // /v2.N/… is /v2/… (Glance's version negotiation); / and /versions are open.
  let segments: string[];
  try {
    segments = url.pathname.split("/").slice(1).map(decodeURIComponent);
  } catch {
    throw new BadRequest("Malformed URL encoding");
  }
  if (segments.at(-1) === "" && segments.length > 1) segments.pop();
  if (segments[0] === "versions" && segments.length === 1) return versions(req, 200);
  if (segments[0] === undefined || !/^v2(\.\d+)?$/.test(segments[0]) || segments.length === 1) return versions(req, 300);
  segments[0] = "v2";
  // A signed URL stands for no token: it opens its one blob, for GET and HEAD, and nothing else.
  if (TempUrls.carried(url)) {
    const digest = await store.tempUrls.check(req.method, url);
    const b = await readBlob(store, digest, req.headers.get("Range"));
    return dataResponse(b.body, b.size, b.range);
  }
  const access = accessOf(req.headers.get("X-Auth-Token"), options.tokens);
  const method = req.method === "HEAD" ? "GET" : req.method;
  let pathMatched = false;
  for (const [m, pattern, handler] of table) {
    const params = match(pattern, segments);
    if (!params) continue;
    pathMatched = true;
    if (m !== method) continue;
    if (method !== "GET") requireWrite(access);
    return handler(req, params, access);
  }
  if (pathMatched) return errorResponse(405, `Method ${req.method} is not allowed here`);
  throw new NotFound(`No such resource: ${url.pathname}`);
}

function toResponse(e: unknown): Response {
  if (isDiskFull(e)) e = new StorageFull(e);
  if (e instanceof StoreError) return errorResponse(e.status, e.message + (e.hint ? ` (${e.hint})` : ""), e.headers);
  if (isOooError(e)) return errorResponse(400, e.message);
  log.error(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return errorResponse(500, "Internal error in the store; see its log");
}
