import { BadRequest } from "./errors.ts";
import type { ImageRecord } from "./image.ts";

/**
 * `GET /v2/images` as Glance answers it: equality filters on
 * any attribute or custom property, `in:` lists, repeated `tag` (all must
 * match), size_min/size_max, created_at/updated_at comparisons, hidden
 * images left out unless asked, sorted (default created_at desc), paged by
 * `limit` (default 25, at most 1000) and `marker` (the last id seen).
 * `next` appears only when the page is full and is root-relative — the
 * glance CLI appends it to its endpoint, so an absolute URL breaks it.
 */
const SORT_KEYS = ["name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at"] as const;
type SortKey = (typeof SORT_KEYS)[number];
type Dir = "asc" | "desc";

const DEFAULT_LIMIT = 25;
const MAX_LIMIT = 1000;
const IN_KEYS = new Set(["id", "name", "status", "disk_format", "container_format"]);
const TIME_OPS = { gt: (a: number, b: number) => a > b, gte: (a: number, b: number) => a >= b, eq: (a: number, b: number) => a === b, neq: (a: number, b: number) => a !== b, lt: (a: number, b: number) => a < b, lte: (a: number, b: number) => a <= b };
/** Parameters that are not attribute filters. */
const CONTROL = new Set(["limit", "marker", "sort", "sort_key", "sort_dir", "tag", "size_min", "size_max", "created_at", "updated_at", "os_hidden", "visibility", "member_status"]);

export interface ListPage {
  images: ImageRecord[];
  first: string;
  next?: string;
}

function attribute(r: ImageRecord, key: string): string | undefined {
  const value = key in r && key !== "properties" ? (r as Record<string, unknown>)[key] : r.properties[key];
  if (value === null || value === undefined) return undefined;
  return Array.isArray(value) ? undefined : String(value);
}

function parseSort(q: URLSearchParams): [SortKey, Dir][] {
  const sort = q.get("sort");
  const keys = q.getAll("sort_key");
  const dirs = q.getAll("sort_dir");
  if (sort !== null && (keys.length || dirs.length)) throw new BadRequest("The sort and sort_key/sort_dir parameters cannot be mixed");
  const checkKey = (k: string): SortKey => {
    if (!(SORT_KEYS as readonly string[]).includes(k)) throw new BadRequest(`Invalid sort key: ${k}. It must be one of the following: ${SORT_KEYS.join(", ")}.`);
    return k as SortKey;
  };
  const checkDir = (d: string): Dir => {
    if (d !== "asc" && d !== "desc") throw new BadRequest(`Invalid sort direction: ${d}. It must be one of the following: asc, desc.`);
    return d;
  };
  let order: [SortKey, Dir][];
  if (sort !== null) {
    order = sort.split(",").map((part) => {
      const [k, d] = part.split(":");
      return [checkKey(k!.trim()), checkDir((d ?? "desc").trim())];
    });
  } else if (keys.length) {
    if (dirs.length > 1 && dirs.length !== keys.length) throw new BadRequest("Number of sort dirs does not match the number of sort keys");
    order = keys.map((k, i) => [checkKey(k), checkDir(dirs[i] ?? dirs[0] ?? "desc")]);
  } else {
    if (dirs.length > 1) throw new BadRequest("Number of sort dirs does not match the number of sort keys");
    order = [["created_at", checkDir(dirs[0] ?? "desc")]];
  }
  // Glance appends created_at and id so that every order is total and a marker is unambiguous.
  const last = order.at(-1)![1];
  for (const k of ["created_at", "id"] as const) if (!order.some(([key]) => key === k)) order.push([k, last]);
  return order;
}

function compare(a: ImageRecord, b: ImageRecord, order: [SortKey, Dir][]) {
  for (const [key, dir] of order) {
    const x = a[key];
    const y = b[key];
    let c = 0;
    if (x === y) c = 0;
    else if (x === null) c = -1;
    else if (y === null) c = 1;
    else c = x < y ? -1 : 1;
    if (c) return dir === "asc" ? c : -c;
  }
  return 0;
}

function timeFilter(spec: string, key: string): (r: ImageRecord) => boolean {
  const m = /^(gt|gte|eq|neq|lt|lte):(.+)$/.exec(spec);
  const at = m ? Date.parse(m[2]!) : NaN;
  if (!m || Number.isNaN(at)) throw new BadRequest(`Invalid ${key} filter ${spec}: use OP:ISO8601 with OP one of gt, gte, eq, neq, lt, lte`);
  const op = TIME_OPS[m[1] as keyof typeof TIME_OPS];
  // Glance compares whole seconds, as it shows them.
  return (r) => op(Math.floor(Date.parse(r[key as "created_at"]) / 1000), Math.floor(at / 1000));
}

function intParam(q: URLSearchParams, key: string): number | undefined {
  const v = q.get(key);
  if (v === null) return undefined;
  if (!/^\d+$/.test(v)) throw new BadRequest(`Invalid value for ${key}: ${v}`);
  return Number(v);
}

export function listImages(all: ImageRecord[], q: URLSearchParams): ListPage {
  if (q.has("changes-since")) throw new BadRequest("The changes-since filter is no longer available on the v2 API.");
  const limit = Math.min(intParam(q, "limit") ?? DEFAULT_LIMIT, MAX_LIMIT);
  const order = parseSort(q);
  const tests: ((r: ImageRecord) => boolean)[] = [(r) => r.status !== "deleted"];

  const hidden = q.get("os_hidden");
  if (hidden !== null && hidden !== "true" && hidden !== "false") throw new BadRequest(`Invalid value for os_hidden: ${hidden}`);
  tests.push((r) => r.os_hidden === (hidden === "true"));
  const visibility = q.get("visibility");
  if (visibility !== null && visibility !== "all") tests.push((r) => r.visibility === visibility);
  for (const tag of q.getAll("tag")) tests.push((r) => r.tags.includes(tag));
  const sizeMin = intParam(q, "size_min");
  const sizeMax = intParam(q, "size_max");
  if (sizeMin !== undefined) tests.push((r) => r.size !== null && r.size >= sizeMin);
  if (sizeMax !== undefined) tests.push((r) => r.size !== null && r.size <= sizeMax);
  for (const key of ["created_at", "updated_at"]) {
    const spec = q.get(key);
    if (spec !== null) tests.push(timeFilter(spec, key));
  }
  for (const key of new Set(q.keys())) {
    if (CONTROL.has(key)) continue;
    const want = q.get(key)!;
    if (IN_KEYS.has(key) && want.startsWith("in:")) {
      const options = new Set(want.slice(3).split(","));
      tests.push((r) => options.has(attribute(r, key) ?? "\0"));
    } else tests.push((r) => attribute(r, key) === want);
  }

  const matching = all.filter((r) => tests.every((t) => t(r))).sort((a, b) => compare(a, b, order));
  let start = 0;
  const marker = q.get("marker");
  if (marker !== null) {
    const at = all.find((r) => r.id === marker && r.status !== "deleted");
    if (!at) throw new BadRequest(`Image with identifier ${marker} not found`);
    start = matching.findIndex((r) => compare(r, at, order) > 0);
    if (start < 0) start = matching.length;
  }
  const images = matching.slice(start, start + limit);

  const firstQuery = new URLSearchParams(q);
  firstQuery.delete("marker");
  const link = (p: URLSearchParams) => (p.size ? `/v2/images?${p}` : "/v2/images");
  const page: ListPage = { images, first: link(firstQuery) };
  if (limit > 0 && images.length === limit) {
    const next = new URLSearchParams(firstQuery);
    next.set("marker", images.at(-1)!.id);
    page.next = link(next);
  }
  return page;
}
