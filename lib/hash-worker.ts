import { dlopen, FFIType } from "bun:ffi";
import { createHash, type Hash } from "node:crypto";
import { readSync } from "node:fs";
import { Writeback } from "./writeback.ts";
import { unpackFrame } from "./zstd-frame.ts";

/**
 * A thread behind lib/parallel-hash.ts: one hash algorithm, any number of
 * jobs, three kinds of them.
 *
 * - `ring`: the main thread copies a stream into blocks of a shared ring
 *   (a SharedArrayBuffer); a `data` message says which bytes to hash next,
 *   and the answer gives the block back.
 * - `follow`: a file being written through the same fd (Bun.write of a
 *   request or response body to Bun.file(fd)). The worker reads it behind
 *   the writer, from the page cache, and hashes what it reads; `end` tells
 *   the final size. With
 *   `writeback`, it also starts the disk's writeback of what it has read
 *   (sync_file_range), so the final fsync finds little left to do.
 * - `piece`: bytes moved to the thread (a transferred ArrayBuffer), hashed
 *   whole, and moved back with the digest (PieceHasher: a disk map's chunks).
 * - `unpack`: a zstd frame moved to the thread and hashed; only if it is the
 *   digest expected, decompressed (to the length expected, or it fails), and
 *   the chunk moved back instead (PieceHasher: a disk pack's frames).
 */
declare const self: Worker;

export type ToHashWorker =
  | { kind: "ring"; job: number; algorithm: string; ring: SharedArrayBuffer }
  | { kind: "data"; job: number; seq: number; at: number; length: number }
  | { kind: "follow"; job: number; algorithm: string; fd: number; from: number; writeback: boolean }
  | { kind: "piece"; job: number; algorithm: string; bytes: ArrayBuffer }
  | { kind: "unpack"; job: number; algorithm: string; bytes: ArrayBuffer; digest: string; length: number }
  | { kind: "end"; job: number; size?: number }
  | { kind: "cancel"; job: number };

export type FromHashWorker =
  | { job: number; seq: number }
  | { job: number; digest: string; bytes?: ArrayBuffer }
  | { job: number; error: string }
  | { job: number; cancelled: true };

const libc = dlopen("libc.so.6", {
  lseek: { args: [FFIType.i32, FFIType.i64, FFIType.i32], returns: FFIType.i64_fast },
});
const SEEK_CUR = 1;
const READ_BYTES = 1 << 20;
/** Longest wait before looking again for what the writer added. */
const MAX_IDLE_MS = 16;
/** Reads per turn before other jobs get theirs. */
const READS_PER_TURN = 8;

interface RingJob {
  kind: "ring";
  hash: Hash;
  ring: Uint8Array;
}

interface FollowJob {
  kind: "follow";
  hash: Hash;
  fd: number;
  at: number;
  /** The final size, once the writer is done. */
  size?: number;
  writeback?: Writeback;
  /** Milliseconds of the last wait for the writer (0: it was ahead). */
  idle: number;
  /** The wait for the writer in progress, cut short when it is done. */
  waiting?: { timer: ReturnType<typeof setTimeout>; buffer: Buffer };
}

const jobs = new Map<number, RingJob | FollowJob>();
/** Read buffers of finished follow jobs, reused. */
const buffers: Buffer[] = [];

const answer = (message: FromHashWorker) => self.postMessage(message);

function fail(job: number, e: unknown) {
  jobs.delete(job);
  answer({ job, error: e instanceof Error ? e.message : String(e) });
}

/** Read and hash what the writer has added since; come back when there may be more. */
function follow(id: number, buffer: Buffer) {
  const job = jobs.get(id);
  if (job?.kind !== "follow") {
    buffers.push(buffer);
    return;
  }
  try {
    for (let turn = 0; turn < READS_PER_TURN; turn++) {
      // How far the file is surely written: its size will not do (a writer
      // may fallocate first, and the reader would see zeros), but the
      // writer's file position will — write() moves it only after the bytes
      // are in the page cache. The writer writes through this fd or a dup
      // of it (Bun.write of Bun.file(fd)); a writer that does not leaves
      // the position alone, and the bytes are read once it is done.
      const written = job.size ?? Number(libc.symbols.lseek(job.fd, 0, SEEK_CUR));
      const want = Math.min(buffer.length, written - job.at);
      const n = want > 0 ? readSync(job.fd, buffer, 0, want, job.at) : 0;
      if (n > 0) {
        job.idle = 0;
        job.hash.update(buffer.subarray(0, n));
        job.at += n;
        job.writeback?.reached(job.at);
        continue;
      }
      if (job.size !== undefined) {
        if (job.at < job.size) throw new Error(`the file ended at ${job.at} bytes, before the ${job.size} written`);
        jobs.delete(id);
        buffers.push(buffer);
        answer({ job: id, digest: job.hash.digest("hex") });
        return;
      }
      // Caught up with the writer: look again shortly, less often while a
      // slow sender keeps it waiting.
      job.idle = Math.min(MAX_IDLE_MS, job.idle * 2 || 1);
      job.waiting = { timer: setTimeout(() => ((job.waiting = undefined), follow(id, buffer)), job.idle), buffer };
      return;
    }
    setImmediate(() => follow(id, buffer));
  } catch (e) {
    buffers.push(buffer);
    fail(id, e);
  }
}

self.onmessage = (event: MessageEvent<ToHashWorker>) => {
  const m = event.data;
  try {
    switch (m.kind) {
      case "ring":
        jobs.set(m.job, { kind: "ring", hash: createHash(m.algorithm), ring: new Uint8Array(m.ring) });
        break;
      case "data": {
        const job = jobs.get(m.job);
        if (job?.kind !== "ring") return;
        job.hash.update(job.ring.subarray(m.at, m.at + m.length));
        answer({ job: m.job, seq: m.seq });
        break;
      }
      case "piece": {
        const digest = createHash(m.algorithm).update(new Uint8Array(m.bytes)).digest("hex");
        self.postMessage({ job: m.job, digest, bytes: m.bytes } satisfies FromHashWorker, [m.bytes]);
        break;
      }
      case "unpack": {
        const { digest, bytes } = unpackFrame(m.algorithm, m.bytes, m.digest, m.length);
        self.postMessage({ job: m.job, digest, bytes } satisfies FromHashWorker, [bytes]);
        break;
      }
      case "follow":
        jobs.set(m.job, { kind: "follow", hash: createHash(m.algorithm), fd: m.fd, at: m.from, writeback: m.writeback ? new Writeback(m.fd, m.from) : undefined, idle: 0 });
        follow(m.job, buffers.pop() ?? Buffer.allocUnsafe(READ_BYTES));
        break;
      case "end": {
        const job = jobs.get(m.job);
        if (job?.kind === "follow") {
          // Its loop answers once it has read that far; no need to wait for the next look.
          job.size = m.size;
          const waiting = job.waiting;
          if (waiting) {
            clearTimeout(waiting.timer);
            job.waiting = undefined;
            follow(m.job, waiting.buffer);
          }
        }
        else if (job) {
          jobs.delete(m.job);
          answer({ job: m.job, digest: job.hash.digest("hex") });
        }
        break;
      }
      case "cancel":
        // From here on the worker does not touch the job's ring or fd.
        jobs.delete(m.job);
        answer({ job: m.job, cancelled: true });
        break;
    }
  } catch (e) {
    fail(m.job, e);
  }
};
