import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import type { FromHashWorker, ToHashWorker } from "./hash-worker.ts";
import { unpackFrame } from "./zstd-frame.ts";

/**
 * Hash big data (an image upload, a download) on other cores, one worker
 * thread per algorithm — sha256 and md5 then run side by side — while this
 * thread receives it. Two ways to hand a stream's bytes over without
 * copying or moving them to the workers (and PieceHasher, at the end, for
 * many independent pieces at once):
 *
 * - FileHash: the bytes go to a file by Bun.write (natively, off this
 *   thread's JS), and the workers read the file right behind the writer,
 *   from the page cache. The cheapest: nothing is copied in JS at all.
 * - ParallelHash: for a stream that does not go to a local file (the Swift
 *   backend), the bytes are copied once into a ring of blocks in shared
 *   memory; each full block goes to a sink (the backend's write) and to the
 *   workers. A slot is filled again only once the sink and every worker are
 *   done with its block, so memory stays bounded however fast the network
 *   is, and the ring stays hot in the cache.
 *
 * The workers serve every job of the process and keep it alive only while a
 * job is open.
 */
export const BLOCK_BYTES = 1 << 20;
const SLOTS = 16;

/**
 * Does something with a full block, e.g. writes it; `position` is where the
 * block starts in the stream. The block stays valid until the returned
 * promise settles.
 */
export type BlockSink = (block: Uint8Array, position: number) => unknown;

interface Listener {
  hashed?(seq: number): void;
  digest(hex: string, bytes?: ArrayBuffer): void;
  /** The job failed, or the thread died: either way the worker is done with it. */
  failed(message: string): void;
  cancelled(): void;
}

class HashThread {
  private readonly worker: Worker;
  dead = false;
  private readonly listeners = new Map<number, Listener>();

  constructor(readonly algorithm: string) {
    this.worker = new Worker(workerPath());
    this.worker.onmessage = (event: MessageEvent<FromHashWorker>) => {
      const m = event.data;
      const listener = this.listeners.get(m.job);
      if (!listener) return;
      if ("seq" in m) listener.hashed?.(m.seq);
      else if ("digest" in m) listener.digest(m.digest, m.bytes);
      else if ("error" in m) listener.failed(m.error);
      else listener.cancelled();
    };
    this.worker.onerror = (event) => {
      // A dead thread fails its jobs; the next job gets a new one.
      this.dead = true;
      if (threads.get(this.algorithm) === this) threads.delete(this.algorithm);
      for (const listener of this.listeners.values()) listener.failed(`hash worker (${this.algorithm}) failed: ${event.message}`);
      this.listeners.clear();
      this.worker.terminate();
    };
    this.worker.unref();
  }

  attach(job: number, listener: Listener) {
    this.listeners.set(job, listener);
    if (this.listeners.size === 1) this.worker.ref();
  }

  detach(job: number) {
    if (this.listeners.delete(job) && this.listeners.size === 0) this.worker.unref();
  }

  post(message: ToHashWorker, transfer: ArrayBuffer[] = []) {
    this.worker.postMessage(message, transfer);
  }

  /** Jobs open on this thread. */
  get load() {
    return this.listeners.size;
  }
}

/**
 * Where the worker's code is. In a standalone executable (the agent, built
 * with lib/hash-worker.ts as a second entry point) it is embedded under
 * its path from the repository root, and a URL relative to this module (now
 * inside the bundle) would not find it: the worker failed to load and a
 * download waited for it forever.
 */
function workerPath(): string {
  // Inside the executable, import.meta.url is the bundle's own path, not this module's.
  return Bun.main.startsWith("/$bunfs/") ? "./lib/hash-worker.ts" : new URL("./hash-worker.ts", import.meta.url).href;
}

const threads = new Map<string, HashThread>();
const threadFor = (algorithm: string) => {
  let thread = threads.get(algorithm);
  if (!thread) threads.set(algorithm, (thread = new HashThread(algorithm)));
  return thread;
};
/** Rings of finished jobs, reused while still warm in memory. */
const idleRings: SharedArrayBuffer[] = [];
let nextJob = 1;

/**
 * Hash a file that is being written (by Bun.write, on another thread): the
 * workers read it from `from` on, behind the writer. The first algorithm's
 * worker also starts the disk's writeback as it goes (`writeback`).
 */
export class FileHash {
  private readonly job = nextJob++;
  private readonly threads: HashThread[];
  private readonly results: Promise<string>[];
  /** Settle when each worker is done with the fd (answered, failed or cancelled). */
  private readonly released: Promise<void>[];
  private state: "open" | "ending" | "closed" = "open";

  constructor(
    readonly fd: number,
    readonly algorithms: string[],
    options: { from?: number; writeback?: boolean } = {},
  ) {
    const results: Promise<string>[] = [];
    const released: Promise<void>[] = [];
    this.threads = algorithms.map((algorithm, i) => {
      const thread = threadFor(algorithm);
      let release!: () => void;
      released.push(new Promise<void>((r) => (release = r)));
      results.push(
        new Promise<string>((resolve, reject) => {
          thread.attach(this.job, {
            digest: (hex) => {
              release();
              resolve(hex);
            },
            failed: (message) => {
              release();
              reject(new Error(`hashing ${algorithm}: ${message}`));
            },
            cancelled: release,
          });
        }),
      );
      results[i]!.catch(() => {}); // reported by digest(), or moot after cancel()
      thread.post({ kind: "follow", job: this.job, algorithm, fd, from: options.from ?? 0, writeback: i === 0 && !!options.writeback });
      return thread;
    });
    this.results = results;
    this.released = released;
  }

  /** The writer is done and the file has `size` bytes: the digests (in the order of `algorithms`) once the workers have read them all. */
  async digest(size: number): Promise<string[]> {
    if (this.state !== "open") throw new Error("FileHash used after digest() or cancel()");
    this.state = "ending";
    for (const thread of this.threads) thread.post({ kind: "end", job: this.job, size });
    let digests: string[];
    try {
      digests = await Promise.all(this.results);
    } catch (e) {
      await this.cancel(); // the other workers may still be reading
      throw e;
    }
    this.state = "closed";
    for (const thread of this.threads) thread.detach(this.job);
    return digests;
  }

  /** Stop hashing; resolves once no worker touches the fd any more, so the caller may close it. */
  async cancel() {
    if (this.state === "closed") return;
    this.state = "closed";
    for (const thread of this.threads) thread.post({ kind: "cancel", job: this.job });
    await Promise.all(this.released);
    for (const thread of this.threads) thread.detach(this.job);
  }
}

/**
 * Hash a stream that does not go to a local file: each piece is copied into
 * the shared ring, and each full block goes to the sink and to the workers.
 */
export class ParallelHash {
  private readonly job = nextJob++;
  private readonly ring = idleRings.pop() ?? new SharedArrayBuffer(SLOTS * BLOCK_BYTES);
  private readonly bytes = new Uint8Array(this.ring);
  private readonly threads: HashThread[];
  /** Blocks each thread has hashed. */
  private readonly hashed: number[];
  private readonly answers: ((result: { hex?: string; error?: string }) => void)[] = [];
  /** The sink's work on the block in each slot; never rejects (failures land in `failure`). */
  private readonly sinking: (Promise<void> | undefined)[] = new Array(SLOTS);
  /** Blocks sent so far; the one being filled is block number `sent`. */
  private sent = 0;
  /** Bytes in the block being filled. */
  private used = 0;
  /** Bytes in the blocks sent so far. */
  private position = 0;
  private failure: unknown;
  private wake: (() => void) | undefined;
  private state: "open" | "ending" | "closed" = "open";

  constructor(readonly algorithms: string[]) {
    this.hashed = algorithms.map(() => 0);
    this.threads = algorithms.map((algorithm, i) => {
      const thread = threadFor(algorithm);
      thread.attach(this.job, {
        hashed: (seq) => {
          this.hashed[i] = seq + 1;
          this.wakeUp();
        },
        digest: (hex) => this.answers[i]?.({ hex }),
        failed: (message) => {
          this.failure ??= new Error(message);
          this.answers[i]?.({ error: message });
          this.wakeUp();
        },
        cancelled: () => {},
      });
      thread.post({ kind: "ring", job: this.job, algorithm, ring: this.ring });
      return thread;
    });
  }

  private wakeUp() {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private check() {
    if (this.failure !== undefined) throw this.failure;
    if (this.state !== "open") throw new Error("ParallelHash used after digest() or cancel()");
  }

  /** Hash `piece` (copied: the caller may reuse it at once); each block it completes goes to `sink` first. */
  async update(piece: Uint8Array, sink?: BlockSink) {
    this.check();
    for (let at = 0; at < piece.length; ) {
      const n = Math.min(BLOCK_BYTES - this.used, piece.length - at);
      this.bytes.set(piece.subarray(at, at + n), (this.sent % SLOTS) * BLOCK_BYTES + this.used);
      this.used += n;
      at += n;
      if (this.used === BLOCK_BYTES) await this.send(sink);
    }
  }

  private async send(sink: BlockSink | undefined) {
    const slot = this.sent % SLOTS;
    const at = slot * BLOCK_BYTES;
    const length = this.used;
    const position = this.position;
    this.position += length;
    if (sink) {
      const block = this.bytes.subarray(at, at + length);
      this.sinking[slot] = (async () => sink(block, position))().then(
        () => {},
        (e) => {
          this.failure ??= e;
          this.wakeUp();
        },
      );
    }
    for (const thread of this.threads) thread.post({ kind: "data", job: this.job, seq: this.sent, at, length });
    this.sent++;
    this.used = 0;
    // The next block goes where block `sent - SLOTS` was: wait until it is done with.
    const previous = this.sent - SLOTS;
    if (previous >= 0) {
      while (this.failure === undefined && !this.hashed.every((n) => n > previous)) await new Promise<void>((r) => (this.wake = r));
      await this.sinking[this.sent % SLOTS];
      this.sinking[this.sent % SLOTS] = undefined;
    }
    if (this.failure !== undefined) throw this.failure;
  }

  /** Hash the rest (its last block through `sink` too); the hex digests in the order of `algorithms`. */
  async digest(sink?: BlockSink): Promise<string[]> {
    this.check();
    this.state = "ending";
    let ended = false;
    try {
      if (this.used > 0) await this.send(sink);
      await Promise.all(this.sinking);
      if (this.failure !== undefined) throw this.failure;
      const results = this.threads.map(
        (_, i) =>
          new Promise<string>((resolve, reject) => {
            this.answers[i] = (r) => (r.hex !== undefined ? resolve(r.hex) : reject(new Error(r.error)));
          }),
      );
      for (const thread of this.threads) thread.post({ kind: "end", job: this.job });
      ended = true;
      const digests = await Promise.all(results);
      if (idleRings.length < 4) idleRings.push(this.ring);
      return digests;
    } finally {
      this.state = "closed";
      for (const thread of this.threads) {
        if (!ended) thread.post({ kind: "cancel", job: this.job });
        thread.detach(this.job);
      }
    }
  }

  /** Forget the job (a failed transfer); resolves once no sink is still at work, so the caller may close its file. */
  async cancel() {
    if (this.state === "open") {
      this.state = "closed";
      for (const thread of this.threads) {
        thread.post({ kind: "cancel", job: this.job });
        thread.detach(this.job);
      }
    }
    await Promise.all(this.sinking);
  }
}

/** Threads of PieceHasher, kept for the next one (each is ~20 ms to start). */
const pieceThreads = new Map<string, HashThread[]>();

/**
 * Hash independent pieces (a disk map's chunks) on up to `width` threads
 * of their own, several at once: each piece is moved to the least busy
 * thread and back (a transferred ArrayBuffer, not a copy). With one CPU
 * there is nothing to gain from threads: width 0 hashes on this one.
 */
export class PieceHasher {
  constructor(
    readonly algorithm: string,
    readonly width = Math.min(availableParallelism() - 1, 4),
  ) {}

  /** The piece's digest, and the piece back (the one given is detached: use the one returned). */
  digest(bytes: ArrayBuffer): Promise<{ hex: string; bytes: ArrayBuffer }> {
    if (this.width < 1) return Promise.resolve({ hex: createHash(this.algorithm).update(new Uint8Array(bytes)).digest("hex"), bytes });
    return this.post((job) => ({ kind: "piece", job, algorithm: this.algorithm, bytes }), bytes);
  }

  /**
   * A zstd frame's digest and, if it is `digest`, the chunk it decompresses
   * to (`length` bytes, or it fails); else the frame back (lib/zstd-frame.ts).
   */
  unpack(frame: ArrayBuffer, digest: string, length: number): Promise<{ hex: string; bytes: ArrayBuffer }> {
    if (this.width < 1) {
      try {
        const r = unpackFrame(this.algorithm, frame, digest, length);
        return Promise.resolve({ hex: r.digest, bytes: r.bytes });
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return this.post((job) => ({ kind: "unpack", job, algorithm: this.algorithm, bytes: frame, digest, length }), frame);
  }

  private post(message: (job: number) => ToHashWorker, bytes: ArrayBuffer): Promise<{ hex: string; bytes: ArrayBuffer }> {
    // A thread that died is replaced.
    const pool = (pieceThreads.get(this.algorithm) ?? []).filter((t) => !t.dead);
    while (pool.length < this.width) pool.push(new HashThread(this.algorithm));
    pieceThreads.set(this.algorithm, pool);
    const thread = pool.slice(0, this.width).reduce((a, b) => (b.load < a.load ? b : a));
    const job = nextJob++;
    return new Promise((resolve, reject) => {
      thread.attach(job, {
        digest: (hex, back) => {
          thread.detach(job);
          resolve({ hex, bytes: back! });
        },
        failed: (message) => {
          thread.detach(job);
          reject(new Error(`hashing ${this.algorithm}: ${message}`));
        },
        cancelled: () => {},
      });
      thread.post(message(job), [bytes]);
    });
  }
}
