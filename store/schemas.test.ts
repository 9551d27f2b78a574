import { expect, test } from "bun:test";
import { glanceView, ImageRecord } from "./image.ts";
import { imageSchema, imagesSchema } from "./schemas.ts";

/**
 * The glance CLI validates every image it reads against the schema we serve
 * (jsonschema via warlock): an image we return must satisfy it. A small
 * checker for the keywords our schema uses: type (with null), enum, maxLength,
 * pattern, additionalProperties.
 */
type Schema = { type?: string | string[]; enum?: unknown[]; maxLength?: number; pattern?: string; items?: Schema };

function problems(value: Record<string, unknown>, schema: ReturnType<typeof imageSchema>): string[] {
  const out: string[] = [];
  const props = schema.properties as Record<string, Schema>;
  for (const [key, v] of Object.entries(value)) {
    const s: Schema = props[key] ?? schema.additionalProperties;
    const types = [s.type ?? []].flat();
    const actual = v === null ? "null" : Array.isArray(v) ? "array" : Number.isInteger(v) ? "integer" : typeof v;
    if (types.length && !types.includes(actual)) out.push(`${key}: ${actual} is not ${types.join("|")}`);
    if (s.enum && !s.enum.includes(v)) out.push(`${key}: ${String(v)} not in enum`);
    if (typeof v === "string" && s.maxLength !== undefined && v.length > s.maxLength) out.push(`${key}: longer than ${s.maxLength}`);
    if (typeof v === "string" && s.pattern && !new RegExp(s.pattern).test(v)) out.push(`${key}: does not match ${s.pattern}`);
  }
  return out;
}

const now = "2026-01-01T00:00:00.123Z";
const records = [
  ImageRecord.parse({ id: "11111111-2222-3333-4444-555555555555", status: "queued", created_at: now, updated_at: now }),
  ImageRecord.parse({
    id: "11111111-2222-3333-4444-555555555556",
    name: "debian-minimal",
    status: "active",
    size: 305388032,
    checksum: "6e3616d20028182cf887e44584028eaa",
    os_hash_algo: "sha256",
    os_hash_value: "08020df46e06e7f1ef6825d618fc2ac743b6c8d311fb4c93ecadb9cef46a5b7d",
    disk_format: "tar",
    container_format: "bare",
    tags: ["stable"],
    created_at: now,
    updated_at: now,
    properties: { ooo_digest: `sha256:${"0".repeat(64)}`, ooo_version: "3", architecture: "x86_64" },
  }),
];

test.each(records.map((r) => [r.status, r] as const))("a %s image satisfies the served schema", (_s, r) => {
  expect(problems(glanceView(r), imageSchema())).toEqual([]);
});

test("times are shown to the second, links are root-relative", () => {
  const v = glanceView(records[1]!);
  expect(v).toMatchObject({ created_at: "2026-01-01T00:00:00Z", self: `/v2/images/${records[1]!.id}`, file: `/v2/images/${records[1]!.id}/file`, schema: "/v2/schemas/image" });
});

test("the collection schema embeds the image schema", () => {
  expect((imagesSchema().properties.images.items as { name: string }).name).toBe("image");
});
