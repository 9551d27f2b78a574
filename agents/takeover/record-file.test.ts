import { describe, expect, test } from "bun:test";
import { SLOT_RECORD_BYTES } from "../../wire/boot.ts";
import { COPY_BYTES, decodeRecord, encodeRecord, RecordTooLarge } from "./record-file.ts";

/**
 * A slot record file written in place, cut off at every point of a write:
 * what is read back must be the record before the write or the one it
 * wrote, never anything else and never nothing.
 */
const apply = (file: Buffer, w: { offset: number; bytes: Buffer }, upTo = w.bytes.length) => {
  const next = Buffer.from(file);
  w.bytes.copy(next, w.offset, 0, upTo);
  return next;
};
const record = (n: number, reason = "") => ({ digest: `sha256:${String(n).repeat(64)}`.slice(0, 71), attempt: n, status: "trial", reason });

describe("slot record files", () => {
  test("a new file (zeros, as the builder makes it) holds no record", () => {
    expect(decodeRecord(Buffer.alloc(SLOT_RECORD_BYTES))).toBeUndefined();
  });

  test("a file of another size is no record file", () => {
    expect(decodeRecord(Buffer.from('{"digest":"x"}'))).toBeUndefined();
  });

  test("writes alternate between the two copies and the newest is read", () => {
    let file = Buffer.alloc(SLOT_RECORD_BYTES);
    const offsets: number[] = [];
    for (const n of [1, 2, 3, 4]) {
      const w = encodeRecord(file, record(n));
      offsets.push(w.offset);
      file = apply(file, w);
      expect(decodeRecord(file)).toEqual(record(n));
    }
    expect(offsets).toEqual([0, COPY_BYTES, 0, COPY_BYTES]);
  });

  // Short records (within a sector) and long ones (a failing script's output, over several sectors).
  for (const [what, reason] of [["short records", ""], ["records over several sectors", "x".repeat(1500)]] as const) {
    test(`${what}: a write cut off at any byte leaves the old record or the new`, () => {
      let file = Buffer.alloc(SLOT_RECORD_BYTES);
      let before: unknown;
      for (const n of [1, 2, 3]) {
        const w = encodeRecord(file, record(n, reason));
        for (let cut = 0; cut <= w.bytes.length; cut += cut < 600 ? 1 : 37) {
          const read = decodeRecord(apply(file, w, cut));
          if (before === undefined && read === undefined) continue; // the first write, cut before its end
          expect([before, record(n, reason)]).toContainEqual(read);
        }
        file = apply(file, w);
        before = record(n, reason);
      }
    });
  }

  test("a copy torn in the middle (garbage where its line was) is passed over for the other", () => {
    let file = Buffer.alloc(SLOT_RECORD_BYTES);
    for (const n of [1, 2]) file = apply(file, encodeRecord(file, record(n)));
    file.fill(0x41, COPY_BYTES + 20, COPY_BYTES + 30); // record 2's copy
    expect(decodeRecord(file)).toEqual(record(1));
    // and the next write replaces the torn copy, not the good one
    expect(encodeRecord(file, record(3)).offset).toBe(COPY_BYTES);
  });

  test("a record larger than its copy is refused, not cut", () => {
    expect(() => encodeRecord(Buffer.alloc(SLOT_RECORD_BYTES), record(1, "y".repeat(COPY_BYTES)))).toThrow(RecordTooLarge);
  });
});
