/**
 * What a simulated fleet's requests met on the wire: every fetch the
 * agents' own code makes is timed (to the response's headers) with its
 * status, so that the service's latency and errors are seen as the nodes
 * see them, retries included. Figures are asked for a window of time.
 */
export type RequestKind = "metadata" | "signal" | "progress" | "other";
const KINDS: RequestKind[] = ["metadata", "signal", "progress", "other"];

export function kindOf(url: string): RequestKind {
  const path = new URL(url).pathname;
  if (path.endsWith("/metadata")) return "metadata";
  if (path.endsWith("/signal")) return "signal";
  if (path.endsWith("/progress")) return "progress";
  return "other";
}

export interface KindFigures {
  count: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Answers by status class, and requests that got no answer (timeout, refused, reset). */
  http_2xx: number;
  http_304: number;
  http_4xx: number;
  http_5xx: number;
  no_answer: number;
}

export interface WindowFigures {
  seconds: number;
  requests: number;
  requests_per_second: number;
  kinds: Record<RequestKind, KindFigures>;
  /** How late this process's event loop ran its timers (the fleet's: what of a latency is the load generator's, not the service's). */
  lag_p99_ms: number;
  lag_max_ms: number;
}

/** How often the fleet's event loop is sampled for lateness. */
const LAG_SAMPLE_MS = 50;

const percentile = (sorted: Float64Array, p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]! : 0);
const r2 = (n: number) => Math.round(n * 100) / 100;

export class WireStats {
  /** Parallel columns, one entry per request: when it started (ms since the epoch), its kind, status (0: no answer), latency (ms). */
  private at: number[] = [];
  private kind: number[] = [];
  private status: number[] = [];
  private ms: number[] = [];
  private lagAt: number[] = [];
  private lag: number[] = [];
  private lagTimer?: ReturnType<typeof setInterval>;

  /** Sample the event loop's lateness until stopped. */
  watchLag() {
    let expected = performance.now() + LAG_SAMPLE_MS;
    this.lagTimer = setInterval(() => {
      const now = performance.now();
      this.lagAt.push(performance.timeOrigin + now);
      this.lag.push(Math.max(0, now - expected));
      expected = now + LAG_SAMPLE_MS;
    }, LAG_SAMPLE_MS);
  }

  stop() {
    clearInterval(this.lagTimer);
  }

  record(kind: RequestKind, status: number, startedAt: number, ms: number) {
    this.at.push(startedAt);
    this.kind.push(KINDS.indexOf(kind));
    this.status.push(status);
    this.ms.push(ms);
  }

  /** Requests started in [from, to) (ms since the epoch). */
  window(from: number, to: number): WindowFigures {
    const lat: number[][] = KINDS.map(() => []);
    const codes = KINDS.map(() => ({ http_2xx: 0, http_304: 0, http_4xx: 0, http_5xx: 0, no_answer: 0 }));
    let requests = 0;
    for (let i = 0; i < this.at.length; i++) {
      const t = this.at[i]!;
      if (t < from || t >= to) continue;
      requests++;
      const k = this.kind[i]!;
      const s = this.status[i]!;
      lat[k]!.push(this.ms[i]!);
      const c = codes[k]!;
      if (s === 0) c.no_answer++;
      else if (s === 304) c.http_304++;
      else if (s >= 500) c.http_5xx++;
      else if (s >= 400) c.http_4xx++;
      else c.http_2xx++;
    }
    const seconds = (to - from) / 1000;
    const kinds = Object.fromEntries(
      KINDS.map((name, k) => {
        const sorted = Float64Array.from(lat[k]!).sort();
        return [name, { count: sorted.length, p50_ms: r2(percentile(sorted, 0.5)), p99_ms: r2(percentile(sorted, 0.99)), max_ms: r2(sorted.at(-1) ?? 0), ...codes[k]! }];
      }),
    ) as Record<RequestKind, KindFigures>;
    const lag = Float64Array.from(this.lag.filter((_, i) => this.lagAt[i]! >= from && this.lagAt[i]! < to)).sort();
    return {
      seconds: r2(seconds),
      requests,
      requests_per_second: r2(requests / Math.max(seconds, 1e-9)),
      kinds,
      lag_p99_ms: r2(percentile(lag, 0.99)),
      lag_max_ms: r2(lag.at(-1) ?? 0),
    };
  }
}

/** Time every fetch of this process into `stats` (the agents' code calls the global fetch). */
export function instrumentFetch(stats: WireStats): () => void {
  const real = globalThis.fetch;
  const timed = async (input: string | URL | Request, init?: RequestInit) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const t0 = performance.now();
    const at = performance.timeOrigin + t0;
    try {
      const r = await real(input, init);
      stats.record(kindOf(url), r.status, at, performance.now() - t0);
      return r;
    } catch (e) {
      stats.record(kindOf(url), 0, at, performance.now() - t0);
      throw e;
    }
  };
  globalThis.fetch = Object.assign(timed, real) as typeof fetch;
  return () => void (globalThis.fetch = real);
}
