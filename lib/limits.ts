/**
 * Limits for services that read what others send: a body read whole only
 * up to a size, a budget of bytes held in memory by all such reads at once,
 * and a rate per client. Each service picks figures a real fleet never
 * reaches and an abuser always does, and turns the refusals into its own
 * 413 and 429 answers (store/api.ts, deployer/metadata-service.ts).
 */

/** A body larger than its limit; nothing more of it was read. */
export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the request body is larger than ${limit} bytes`);
  }
}

/** Too much is being read by other requests right now; retry shortly. */
export class Busy extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super("too many large requests are being read at once");
  }
}

/**
 * Bytes held by whole-body reads at once, across requests: each read
 * reserves what it has received, and a read that would go over the budget
 * fails with Busy instead of waiting (a client retries; a server that
 * waited would hold the memory of every queued connection anyway).
 */
export class ByteBudget {
  private used = 0;
  constructor(readonly bytes: number) {}

  /** The whole body, at most `max` bytes, counted against the budget while it is read and until `hold` returns. */
  async read<T>(body: AsyncIterable<Uint8Array> | null, max: number, hold: (bytes: Uint8Array) => Promise<T> | T): Promise<T> {
    const parts: Uint8Array[] = [];
    let size = 0;
    // Given back before the refusal leaves the loop: closing the body first can take a while.
    const release = () => {
      this.used -= size;
      size = 0;
    };
    try {
      for await (const piece of body ?? []) {
        if (size + piece.length > max) {
          release();
          throw new BodyTooLarge(max);
        }
        if (this.used + piece.length > this.bytes) {
          release();
          throw new Busy(1);
        }
        this.used += piece.length;
        size += piece.length;
        parts.push(piece);
      }
      return await hold(Buffer.concat(parts, size));
    } finally {
      release();
    }
  }
}

/** The body of a request whose size a Content-Length already tells: refused before a byte is read when it is too large. */
export function declaredTooLarge(headers: Headers, max: number): boolean {
  const length = Number(headers.get("content-length") ?? NaN);
  return Number.isFinite(length) && length > max;
}

/**
 * A token bucket per key (a node, a token): `burst` requests at once, then
 * `perSecond` on average. take() says how many seconds to wait when the
 * bucket is empty, or 0 when the request may go.
 */
export class RateLimit {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    readonly burst: number,
    readonly perSecond: number,
    private readonly now: () => number = () => performance.now() / 1000,
  ) {}

  take(key: string): number {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: t };
    b.tokens = Math.min(this.burst, b.tokens + (t - b.at) * this.perSecond);
    b.at = t;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) / this.perSecond);
  }
}
