import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { ReceiveJob, ReceiveResult } from "./receive-worker.ts";

/**
 * A plain-HTTP GET whose body goes from the socket straight into a file, for
 * image data (hundreds of MiB), on a thread of its own (receive-worker.ts:
 * a blocking read/write loop, the cheapest way to move the bytes here).
 * fetch()'s body stream costs twice the CPU per byte, and on two cores,
 * with the hash thread reading the file behind the writer, CPU is what a
 * download's wall time is made of. StoreClient uses fetch for everything
 * this does not speak: https, a proxy.
 */
export interface FileGet {
  status: number;
  headers: Headers;
  /** Body bytes written to the file. */
  written: number;
  /** The body of a response that is not data (an error page), as text, its first 64 KiB. */
  text?: string;
}

export interface FileGetOptions {
  /** Statuses whose body is data for the file (appended); any other's first 64 KiB are read as text. */
  dataStatuses: number[];
  /** Give up when no byte arrives for this long. */
  idleSeconds?: number;
}

/** The connection ended, or stalled, before the body did: retry with a Range. */
export class CutResponse extends Error {}

/** No connection to the server at all. */
export class ConnectFailed extends Error {}

function workerPath(): string {
  // As parallel-hash.ts's: a standalone executable names its extra entry points so.
  return Bun.main.startsWith("/$bunfs/") ? "./store/client/receive-worker.ts" : new URL("./receive-worker.ts", import.meta.url).href;
}

/** Idle threads, reused: a new one costs ~20 ms, a tenth of a download. */
const idle: Worker[] = [];

export async function getToFile(url: URL, headers: Record<string, string>, fd: number, options: FileGetOptions): Promise<FileGet> {
  if (url.protocol !== "http:") throw new Error(`getToFile speaks plain http, not ${url.protocol}`);
  for (const [k, v] of Object.entries(headers))
    if (/[\r\n]/.test(k + v)) throw new Error(`the request header ${JSON.stringify(k)} has a line break in it`);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  let address = host;
  let family = isIP(host);
  if (!family) {
    try {
      ({ address, family } = await lookup(host));
    } catch (e) {
      throw new ConnectFailed(`cannot resolve ${host}: ${(e as Error).message}`);
    }
  }
  const job: ReceiveJob = {
    address,
    family: family as 4 | 6,
    port: Number(url.port || 80),
    request:
      `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\nAccept-Encoding: identity\r\n` +
      Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("") +
      "\r\n",
    fd,
    dataStatuses: options.dataStatuses,
    idleSeconds: options.idleSeconds ?? 300,
  };
  const worker = idle.pop() ?? new Worker(workerPath());
  worker.ref();
  const result = await new Promise<ReceiveResult>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<ReceiveResult>) => resolve(event.data);
    worker.onerror = (event) => {
      worker.terminate();
      reject(new Error(`the receiving thread failed: ${event.message}`));
    };
    worker.postMessage(job);
  });
  worker.unref();
  idle.push(worker);
  if ("error" in result) {
    if (result.error === "connect") throw new ConnectFailed(result.message);
    if (result.error === "cut") throw new CutResponse(`${url.host}: ${result.message}`);
    throw new Error(`GET ${url.pathname} from ${url.host}: ${result.message}`);
  }
  return { ...result, headers: new Headers(result.headers) };
}
