/**
 * Hash on another core. An upload needs sha256 (its name, checked before it
 * is kept) and md5 (Glance's `checksum`); md5 alone costs as much as
 * receiving the bytes, so it runs on a worker thread while the main thread
 * receives, writes and computes sha256. One worker serves every upload of
 * the process; it does not keep the process alive.
 */
let worker: Worker | undefined;
let nextJob = 1;
const waiting = new Map<number, (digests: string[]) => void>();

function theWorker(): Worker {
  if (!worker) {
    worker = new Worker(new URL("./hash-worker.ts", import.meta.url).href);
    worker.onmessage = (event: MessageEvent<{ job: number; digests: string[] }>) => {
      waiting.get(event.data.job)?.(event.data.digests);
      waiting.delete(event.data.job);
      if (!waiting.size) worker?.unref();
    };
    worker.unref();
  }
  return worker;
}

export class ParallelHash {
  private readonly job = nextJob++;
  private readonly worker = theWorker();
  private done = false;

  constructor(readonly algorithms: string[]) {
    this.worker.postMessage({ kind: "start", job: this.job, algorithms });
  }

  /**
   * Hand over a block. A block that owns its whole buffer is moved to the
   * worker, not copied: the caller must be done with it. Others are copied
   * with slice() and the copy moved — postMessage's own structured clone
   * costs ~1.6 ms per MiB here, a memcpy a tenth of that.
   */
  update(bytes: Uint8Array) {
    const owned = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
    const moved = owned ? bytes : bytes.slice();
    this.worker.postMessage({ kind: "data", job: this.job, bytes: moved }, [moved.buffer as ArrayBuffer]);
  }

  /** The digests in the order of `algorithms`. */
  digest(): Promise<string[]> {
    if (this.done) throw new Error("digest() called twice");
    this.done = true;
    this.worker.ref();
    const answer = new Promise<string[]>((resolve) => waiting.set(this.job, resolve));
    this.worker.postMessage({ kind: "end", job: this.job });
    return answer;
  }

  /** Forget a job that will not finish (a failed upload). */
  cancel() {
    if (this.done) return;
    this.done = true;
    this.worker.postMessage({ kind: "end", job: this.job });
  }
}
