/**
 * Reading an HTTP/1.x response off a socket by hand (store/client/receive-worker.ts
 * does, for image data): its head, how its body is framed, and a decoder
 * for chunked bodies. Pure functions over bytes, so they are tested alone.
 */
export type Framing = { kind: "length"; left: number } | { kind: "chunked" } | { kind: "close" } | { kind: "none" };

/** A response head: status line and fields, or undefined for a malformed one. */
export function parseHead(text: string): { status: number; headers: Headers } | undefined {
  const [statusLine, ...lines] = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine ?? "");
  if (!m) return undefined;
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return { status: Number(m[1]), headers };
}

export function framingOf(status: number, headers: Headers): Framing {
  if (status === 204 || status === 304) return { kind: "none" };
  if (/\bchunked\b/i.test(headers.get("transfer-encoding") ?? "")) return { kind: "chunked" };
  const length = headers.get("content-length");
  if (length !== null) {
    if (!/^\d+$/.test(length)) throw new Error(`the response's Content-Length is not a number: ${length}`);
    return { kind: "length", left: Number(length) };
  }
  return { kind: "close" };
}

/**
 * Decodes a chunked body as it arrives, handing each piece of data on;
 * `done` once the last chunk and its trailer have come.
 */
export class ChunkedDecoder {
  private line = "";
  private left = 0;
  private state: "size" | "data" | "data-end" | "trailer" = "size";
  done = false;

  constructor(private readonly sink: (data: Uint8Array) => void) {}

  push(bytes: Uint8Array) {
    let i = 0;
    while (i < bytes.length && !this.done) {
      if (this.state === "data") {
        const n = Math.min(this.left, bytes.length - i);
        this.sink(bytes.subarray(i, i + n));
        this.left -= n;
        i += n;
        if (this.left === 0) this.state = "data-end";
        continue;
      }
      // Line-based states: size lines, the CRLF after data, trailer fields.
      const nl = bytes.indexOf(0x0a, i);
      const end = nl < 0 ? bytes.length : nl + 1;
      this.line += Buffer.from(bytes.subarray(i, end)).toString("latin1");
      i = end;
      if (this.line.length > 4096) throw new Error("a chunked response has a line longer than 4 KiB");
      if (nl < 0) return;
      const line = this.line.replace(/\r?\n$/, "");
      this.line = "";
      if (this.state === "size") {
        const m = /^([0-9a-fA-F]+)\s*(;.*)?$/.exec(line);
        if (!m) throw new Error(`a chunked response has a bad chunk size line: ${JSON.stringify(line.slice(0, 40))}`);
        this.left = parseInt(m[1]!, 16);
        this.state = this.left === 0 ? "trailer" : "data";
      } else if (this.state === "data-end") {
        if (line !== "") throw new Error("a chunked response's chunk is longer than its size line says");
        this.state = "size";
      } else if (line === "") {
        this.done = true;
      }
    }
  }
}
