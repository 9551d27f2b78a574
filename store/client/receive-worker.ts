import { dlopen, FFIType } from "bun:ffi";
import { closeSync, readSync, writeSync } from "node:fs";
import { describeErrno } from "../../lib/errno.ts";
import { ChunkedDecoder, framingOf, parseHead, type Framing } from "./http-response.ts";

/**
 * A thread behind store/client/get-to-file.ts: one plain-HTTP GET at a time, its
 * body read off a blocking socket into one reused buffer and written to the
 * file — read(2), write(2), nothing else per block. That loop takes ~0.17
 * CPU s for 291 MiB on loopback, where Bun.connect's data callbacks took
 * ~0.27 and fetch()'s body stream ~0.33; on two cores, with the hash
 * thread reading the file behind it, that CPU is the download's wall time.
 * The socket is libc's (bun:ffi): Bun's sockets do not give their fd, and
 * node:fs reads and writes any fd.
 */
declare const self: Worker;

export interface ReceiveJob {
  address: string;
  family: 4 | 6;
  port: number;
  /** The request's head, CRLFs and all. */
  request: string;
  fd: number;
  /** Statuses whose body is data for the file; any other's first 64 KiB are read as text. */
  dataStatuses: number[];
  idleSeconds: number;
}

export type ReceiveResult =
  | { status: number; headers: [string, string][]; written: number; text?: string }
  | { error: "connect" | "cut" | "other"; message: string };

const libc = dlopen("libc.so.6", {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  connect: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
});
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM_CLOEXEC = 1 | 0o2000000;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SO_SNDTIMEO = 21;
const BUFFER_BYTES = 1 << 20;
const MAX_HEAD = 64 * 1024;
const MAX_TEXT = 64 * 1024;
const buffer = Buffer.allocUnsafe(BUFFER_BYTES);

class Failure extends Error {
  constructor(
    readonly kind: "connect" | "cut" | "other",
    message: string,
  ) {
    super(message);
  }
}

function sockaddr(address: string, family: 4 | 6, port: number): Buffer {
  if (family === 4) {
    const sa = Buffer.alloc(16);
    sa.writeUInt16LE(AF_INET, 0);
    sa.writeUInt16BE(port, 2);
    address.split(".").forEach((octet, i) => sa.writeUInt8(Number(octet), 4 + i));
    return sa;
  }
  const sa = Buffer.alloc(28);
  sa.writeUInt16LE(AF_INET6, 0);
  sa.writeUInt16BE(port, 2);
  ipv6Bytes(address).copy(sa, 8);
  return sa;
}

/** The 16 bytes of an IPv6 address in text (with :: and an embedded IPv4 tail). */
function ipv6Bytes(text: string): Buffer {
  const out = Buffer.alloc(16);
  let words: number[];
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (tail) text = text.slice(0, tail.index) + (((+tail[1]! << 8) | +tail[2]!).toString(16) + ":" + ((+tail[3]! << 8) | +tail[4]!).toString(16));
  const [left, right] = text.split("::") as [string, string | undefined];
  const parse = (s: string) => (s ? s.split(":").map((w) => parseInt(w, 16)) : []);
  if (right === undefined) words = parse(left);
  else {
    const l = parse(left);
    const r = parse(right);
    words = [...l, ...Array<number>(8 - l.length - r.length).fill(0), ...r];
  }
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

function connect(job: ReceiveJob): number {
  const sock = libc.symbols.socket(job.family === 4 ? AF_INET : AF_INET6, SOCK_STREAM_CLOEXEC, 0);
  if (sock < 0) throw new Failure("connect", `socket: ${describeErrno()}`);
  try {
    const timeval = Buffer.alloc(16);
    timeval.writeBigInt64LE(BigInt(job.idleSeconds), 0);
    for (const option of [SO_RCVTIMEO, SO_SNDTIMEO])
      if (libc.symbols.setsockopt(sock, SOL_SOCKET, option, timeval, 16) !== 0) throw new Failure("connect", `setsockopt: ${describeErrno()}`);
    const sa = sockaddr(job.address, job.family, job.port);
    if (libc.symbols.connect(sock, sa, sa.length) !== 0) throw new Failure("connect", `connect to ${job.address} port ${job.port}: ${describeErrno()}`);
    return sock;
  } catch (e) {
    closeSync(sock);
    throw e;
  }
}

function writeAll(fd: number, bytes: Uint8Array) {
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
}

/** One read off the socket; a timeout or a reset is a cut connection. */
function receive(sock: number, max: number): number {
  try {
    return readSync(sock, buffer, 0, Math.min(max, BUFFER_BYTES), null);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Failure("cut", code === "EAGAIN" || code === "EWOULDBLOCK" ? "no data for too long" : `the connection failed: ${code ?? e}`);
  }
}

function run(job: ReceiveJob): Extract<ReceiveResult, { status: number }> {
  const sock = connect(job);
  try {
    writeAll(sock, Buffer.from(job.request, "latin1"));
    // The head, and whatever of the body came with it; an interim response (100 Continue, 103 Early Hints) is
    // skipped, the real one follows.
    let head: Buffer = Buffer.alloc(0);
    let parsed: NonNullable<ReturnType<typeof parseHead>>;
    let rest: Buffer;
    for (;;) {
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > MAX_HEAD) throw new Failure("other", `the response's head is longer than ${MAX_HEAD / 1024} KiB`);
        const n = receive(sock, BUFFER_BYTES);
        if (n === 0) throw new Failure("cut", "the connection closed before a response");
        head = Buffer.concat([head, buffer.subarray(0, n)]);
        continue;
      }
      const p = parseHead(head.subarray(0, end).toString("latin1"));
      if (!p) throw new Failure("other", `not an HTTP/1.x response: ${JSON.stringify(head.subarray(0, 60).toString("latin1"))}`);
      head = head.subarray(end + 4);
      if (p.status >= 200) {
        parsed = p;
        rest = head;
        break;
      }
    }
    const { status, headers } = parsed;
    const toFile = job.dataStatuses.includes(status);
    let written = 0;
    const text: Buffer[] = [];
    let textBytes = 0;
    const body = (bytes: Uint8Array) => {
      if (toFile) {
        writeAll(job.fd, bytes);
        written += bytes.length;
      } else if (textBytes < MAX_TEXT) {
        const keep = bytes.subarray(0, MAX_TEXT - textBytes);
        text.push(Buffer.from(keep));
        textBytes += keep.length;
      }
    };
    const framing: Framing = framingOf(status, headers);
    // Enough of a body that is not data: the rest is not worth the wait (the connection closes with this request).
    const enough = () => !toFile && textBytes >= MAX_TEXT;
    const cut = (what: string) => new Failure("cut", `the connection closed after ${written || textBytes} body bytes${what}`);
    if (framing.kind === "length") {
      let left = framing.left;
      const first = rest.subarray(0, left);
      body(first);
      left -= first.length;
      while (left > 0 && !enough()) {
        const n = receive(sock, left);
        if (n === 0) throw cut(` (${left} more were due)`);
        body(buffer.subarray(0, n));
        left -= n;
      }
    } else if (framing.kind === "chunked") {
      const decoder = new ChunkedDecoder(body);
      decoder.push(rest);
      while (!decoder.done && !enough()) {
        const n = receive(sock, BUFFER_BYTES);
        if (n === 0) throw cut(" (the chunked body had not ended)");
        decoder.push(buffer.subarray(0, n));
      }
    } else if (framing.kind === "close") {
      body(rest);
      for (let n; !enough() && (n = receive(sock, BUFFER_BYTES)) > 0; ) body(buffer.subarray(0, n));
    }
    return {
      status,
      headers: [...headers.entries()],
      written,
      ...(toFile ? {} : { text: Buffer.concat(text).toString("utf8") }),
    };
  } finally {
    closeSync(sock);
  }
}

self.onmessage = (event: MessageEvent<ReceiveJob>) => {
  const job = event.data;
  let result: ReceiveResult;
  try {
    result = run(job);
  } catch (e) {
    result = { error: e instanceof Failure ? e.kind : "other", message: e instanceof Error ? e.message : String(e) };
  }
  self.postMessage(result);
};
