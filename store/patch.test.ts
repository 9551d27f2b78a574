import { describe, expect, test } from "bun:test";
import { BadRequest, Conflict, Forbidden, TooLarge } from "./errors.ts";
import { ImageRecord } from "./image.ts";
import { applyPatch } from "./patch.ts";

const now = "2026-01-01T00:00:00.000Z";
const record = (over: Partial<ImageRecord> = {}) =>
  ImageRecord.parse({
    id: "11111111-2222-3333-4444-555555555555",
    name: "deb",
    status: "queued",
    created_at: now,
    updated_at: now,
    properties: { color: "red" },
    ...over,
  });

describe("JSON patch v2.1 as Glance applies it", () => {
  test("what the glance CLI sends for image-update --name x --property k=v", () => {
    const r = applyPatch(
      record(),
      [
        { op: "add", path: "/k", value: "v" },
        { op: "replace", path: "/name", value: "x" },
      ],
      "2026-01-02T00:00:00.000Z",
    );
    expect(r.name).toBe("x");
    expect(r.properties).toEqual({ color: "red", k: "v" });
    expect(r.updated_at).toBe("2026-01-02T00:00:00.000Z");
  });

  test("add is an upsert; replace and remove need the key", () => {
    expect(applyPatch(record(), [{ op: "add", path: "/color", value: "blue" }], now).properties.color).toBe("blue");
    expect(() => applyPatch(record(), [{ op: "replace", path: "/nope", value: "x" }], now)).toThrow(Conflict);
    expect(() => applyPatch(record(), [{ op: "remove", path: "/nope" }], now)).toThrow(Conflict);
    expect(applyPatch(record(), [{ op: "remove", path: "/color" }], now).properties).toEqual({});
  });

  test.each([
    [{ op: "replace", path: "/status", value: "active" }, Forbidden],
    [{ op: "replace", path: "/id", value: "x" }, Forbidden],
    [{ op: "add", path: "/ooo_chunk_index", value: "x" }, Forbidden],
    [{ op: "add", path: "/os_glance_x", value: "x" }, Forbidden],
    [{ op: "remove", path: "/name" }, Forbidden],
    [{ op: "add", path: "/k", value: 3 }, BadRequest],
    [{ op: "replace", path: "/min_ram", value: null }, BadRequest],
    [{ op: "replace", path: "/name", value: "../etc" }, BadRequest],
    [{ op: "move", path: "/name", from: "/x" }, BadRequest],
    [{ op: "add", path: "/a/b", value: "x" }, BadRequest],
  ] as const)("%o is refused", (op, error) => {
    expect(() => applyPatch(record(), [op], now)).toThrow(error);
  });

  test("formats and the digest change only while queued", () => {
    expect(applyPatch(record(), [{ op: "replace", path: "/disk_format", value: "raw" }], now).disk_format).toBe("raw");
    expect(() => applyPatch(record({ status: "active" }), [{ op: "replace", path: "/disk_format", value: "raw" }], now)).toThrow(Forbidden);
    expect(() => applyPatch(record({ status: "active" }), [{ op: "add", path: "/ooo_digest", value: "x" }], now)).toThrow(Forbidden);
  });

  test("tags are replaced whole, at most 128", () => {
    expect(applyPatch(record(), [{ op: "replace", path: "/tags", value: ["a", "b"] }], now).tags).toEqual(["a", "b"]);
    const many = Array.from({ length: 129 }, (_, i) => `t${i}`);
    expect(() => applyPatch(record(), [{ op: "replace", path: "/tags", value: many }], now)).toThrow(TooLarge);
  });
});
