import { describe, expect, test } from "bun:test";
import { BadRequest } from "./errors.ts";
import { ImageRecord } from "./image.ts";
import { listImages } from "./list.ts";

const rec = (n: number, over: Partial<ImageRecord> = {}) =>
  ImageRecord.parse({
    id: `00000000-0000-0000-0000-${String(n).padStart(12, "0")}`,
    name: `img${n % 3}`,
    status: n % 2 ? "active" : "queued",
    size: n * 100,
    disk_format: n % 2 ? "tar" : "raw",
    container_format: "bare",
    tags: n % 4 === 0 ? ["stable", "x"] : n % 2 ? ["x"] : [],
    created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    updated_at: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    properties: { ooo_version: String(n) },
    ...over,
  });
const all = [...Array.from({ length: 10 }, (_, i) => rec(i + 1)), rec(11, { os_hidden: true }), rec(12, { status: "deleted" })];
const ids = (q: string) => listImages(all, new URLSearchParams(q)).images.map((r) => Number(r.id.slice(-12)));

describe("image list", () => {
  test.each([
    ["", [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]],
    ["name=img1", [10, 7, 4, 1]],
    ["status=active&sort_key=size&sort_dir=asc", [1, 3, 5, 7, 9]],
    ["tag=x&tag=stable", [8, 4]],
    ["tag=stable&sort=name:asc,size:desc", [4, 8]],
    ["size_min=300&size_max=500&sort_dir=asc", [3, 4, 5]],
    ["ooo_version=7", [7]],
    ["name=in:img0,img2&status=queued", [8, 6, 2]],
    ["os_hidden=true", [11]],
    ["created_at=gt:2026-01-01T00:00:08Z", [10, 9]],
    ["disk_format=tar&limit=2", [9, 7]],
  ] as const)("?%s", (q, expected) => {
    expect(ids(q)).toEqual([...expected]);
  });

  test("paging follows next with the marker, keeping the other parameters", () => {
    const seen: number[] = [];
    let q = "status=active&limit=2";
    for (;;) {
      const page = listImages(all, new URLSearchParams(q));
      seen.push(...page.images.map((r) => Number(r.id.slice(-12))));
      if (!page.next) break;
      expect(page.next.startsWith("/v2/images?")).toBe(true);
      q = page.next.split("?")[1]!;
    }
    expect(seen).toEqual([9, 7, 5, 3, 1]);
  });

  test("limit is clamped to 1000; bad limits, markers and sorts are 400", () => {
    expect(ids("limit=5000")).toHaveLength(10);
    for (const q of ["limit=-1", "limit=x", "marker=nope", "sort_key=bogus", "sort_dir=up", "sort=name&sort_key=size", "changes-since=2020", "created_at=after:2020"])
      expect(() => listImages(all, new URLSearchParams(q))).toThrow(BadRequest);
  });
});
