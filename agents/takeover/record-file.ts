import { createHash } from "node:crypto";
import { SLOT_RECORD_BYTES } from "../../wire/boot.ts";

/**
 * A slot record file (wire/boot.ts: BOOT_FILES.slotRecord): SLOT_RECORD_BYTES
 * long, made by the builder as zeros, holding two copies of the record, each
 * in its half of the file as one line
 *
 *     SEQ SHA256 JSON\n
 *
 * padded with spaces: the copy's sequence number, the sha256 of "SEQ JSON"
 * (the number too: a torn copy could otherwise pair a new number with an old
 * record), and the record. A write goes, in place, into the copy that does not hold the
 * newest record, one higher in sequence. A power cut during the write can
 * tear that copy only; a torn copy fails its checksum (or has no line at
 * all), and the newest valid copy is the record as it was before.
 */
const COPIES = 2;
export const COPY_BYTES = SLOT_RECORD_BYTES / COPIES;

interface Copy {
  seq: number;
  json: string;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

function readCopy(bytes: Buffer): Copy | undefined {
  const text = bytes.toString("utf8");
  const end = text.indexOf("\n");
  if (end < 0) return undefined;
  const m = /^(\d+) ([0-9a-f]{64}) (.*)$/.exec(text.slice(0, end));
  if (!m || sha256(`${m[1]} ${m[3]}`) !== m[2]) return undefined;
  return { seq: Number(m[1]), json: m[3]! };
}

function copies(file: Buffer): (Copy | undefined)[] {
  if (file.length !== SLOT_RECORD_BYTES) return [];
  return Array.from({ length: COPIES }, (_, i) => readCopy(file.subarray(i * COPY_BYTES, (i + 1) * COPY_BYTES)));
}

/** The index of the newest valid copy, if any. */
function newest(all: (Copy | undefined)[]): number | undefined {
  let best: number | undefined;
  all.forEach((c, i) => {
    if (c && (best === undefined || c.seq > all[best]!.seq)) best = i;
  });
  return best;
}

/** The record the file holds (parsed JSON), or undefined when it holds none (or is no record file). */
export function decodeRecord(file: Buffer): unknown {
  const all = copies(file);
  const i = newest(all);
  return i === undefined ? undefined : JSON.parse(all[i]!.json);
}

export class RecordTooLarge extends Error {}

/** Where and what to write, in place, to make `record` the file's newest copy. */
export function encodeRecord(file: Buffer, record: unknown): { offset: number; bytes: Buffer } {
  const all = copies(file);
  const current = newest(all);
  const target = current === undefined ? 0 : (current + 1) % COPIES;
  const json = JSON.stringify(record);
  const seq = (current === undefined ? 0 : all[current]!.seq) + 1;
  const line = `${seq} ${sha256(`${seq} ${json}`)} ${json}\n`;
  const bytes = Buffer.alloc(COPY_BYTES, " ");
  if (Buffer.byteLength(line) > COPY_BYTES) throw new RecordTooLarge(`a slot record of ${Buffer.byteLength(line)} bytes does not fit its copy (${COPY_BYTES})`);
  bytes.write(line);
  return { offset: target * COPY_BYTES, bytes };
}
