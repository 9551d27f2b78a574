import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConnectFailed, CutResponse, getToFile } from "./get-to-file.ts";
import { ChunkedDecoder, framingOf, parseHead } from "./http-response.ts";

/**
 * The direct GET into a file, against real servers on loopback: Bun.serve
 * for well-behaved ones, a raw TCP listener for what a server may also do
 * (interim responses, a connection cut or stalled mid-body, a body that
 * ends at the close).
 */
const data = new Uint8Array(3_000_000).map((_, i) => (i * 31 + (i >> 9)) & 0xff);

let dir: string;
let fd: number | undefined;
let out: string;
afterEach(() => {
  if (fd === undefined) return;
  closeSync(fd);
  fd = undefined;
  rmSync(dir, { recursive: true, force: true });
});
const open = () => {
  dir = mkdtempSync(join(tmpdir(), "ooo-get-to-file-"));
  out = join(dir, "out");
  fd = openSync(out, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND, 0o644);
};

let server: ReturnType<typeof Bun.serve>;
let raw: import("bun").TCPSocketListener;
/** What the raw server sends, then whether it closes or stalls. */
let script: { send: (Uint8Array | string)[]; then: "close" | "stall" } = { send: [], then: "close" };
beforeAll(() => {
  server = Bun.serve({
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/data") return new Response(data, { headers: { "X-Token-Seen": req.headers.get("X-Auth-Token") ?? "" } });
      if (path === "/chunked")
        return new Response(
          new ReadableStream({
            async pull(c) {
              for (let i = 0; i < data.length; i += 100_003) c.enqueue(data.subarray(i, i + 100_003));
              c.close();
            },
          }),
        );
      return Response.json({ error: { message: "No image found with ID x" } }, { status: 404 });
    },
  });
  raw = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s) {
        for (const piece of script.send) s.write(piece);
        if (script.then === "close") s.end();
      },
    },
  });
});
afterAll(() => {
  server.stop(true);
  raw.stop(true);
});
const at = (path: string, port = server.port) => new URL(`http://127.0.0.1:${port}${path}`);
const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

describe("getToFile", () => {
  test("a Content-Length body lands in the file, appended, and the request carries its headers", async () => {
    open();
    const r = await getToFile(at("/data"), { "X-Auth-Token": "t0k" }, fd!, { dataStatuses: [200] });
    expect(r).toMatchObject({ status: 200, written: data.length });
    expect(r.headers.get("x-token-seen")).toBe("t0k");
    await getToFile(at("/data"), {}, fd!, { dataStatuses: [200] });
    const got = readFileSync(out);
    expect(got.length).toBe(2 * data.length);
    expect(got.subarray(data.length).equals(Buffer.from(data))).toBe(true);
  });

  test("a chunked body is decoded", async () => {
    open();
    const r = await getToFile(at("/chunked"), {}, fd!, { dataStatuses: [200] });
    expect(r.headers.get("transfer-encoding")).toBe("chunked");
    expect(r.written).toBe(data.length);
    expect(readFileSync(out).equals(Buffer.from(data))).toBe(true);
  });

  test("a status that is not data: its body is text, the file untouched", async () => {
    open();
    const r = await getToFile(at("/nope"), {}, fd!, { dataStatuses: [200] });
    expect(r.status).toBe(404);
    expect(JSON.parse(r.text!)).toEqual({ error: { message: "No image found with ID x" } });
    expect(r.written).toBe(0);
    expect(readFileSync(out).length).toBe(0);
    // A data status the caller did not ask for (a 200 to a Range request) is not written either.
    expect((await getToFile(at("/data"), {}, fd!, { dataStatuses: [206] })).written).toBe(0);
    expect(readFileSync(out).length).toBe(0);
  });

  test("interim responses are skipped; a body without a length ends at the close", async () => {
    open();
    script = { send: ["HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.0 200 OK\r\n", "X-A: 1\r\n\r\nhello ", "world"], then: "close" };
    const r = await getToFile(at("/", raw.port), {}, fd!, { dataStatuses: [200] });
    expect(r).toMatchObject({ status: 200, written: 11 });
    expect(r.headers.get("x-a")).toBe("1");
    expect(readFileSync(out, "utf8")).toBe("hello world");
  });

  test("a connection cut mid-body is a CutResponse, and what came is in the file", async () => {
    open();
    script = { send: ["HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", "0123456789"], then: "close" };
    const e = await rejection(getToFile(at("/", raw.port), {}, fd!, { dataStatuses: [200] }));
    expect(e).toBeInstanceOf(CutResponse);
    expect((e as Error).message).toContain("after 10 body bytes (90 more were due)");
    expect(readFileSync(out, "utf8")).toBe("0123456789");
    script = { send: ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n"], then: "close" };
    expect(((await rejection(getToFile(at("/", raw.port), {}, fd!, { dataStatuses: [200] }))) as Error).message).toContain("chunked body had not ended");
  });

  test("a server that stalls mid-body is given up on after the idle time", async () => {
    open();
    script = { send: ["HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"], then: "stall" };
    const t0 = Date.now();
    const e = await rejection(getToFile(at("/", raw.port), {}, fd!, { dataStatuses: [200], idleSeconds: 1 }));
    expect(e).toBeInstanceOf(CutResponse);
    expect((e as Error).message).toContain("no data for too long");
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test("garbage, refused connections and header injection get clear errors", async () => {
    open();
    script = { send: ["SSH-2.0-OpenSSH_9.2\r\n\r\n"], then: "close" };
    expect(((await rejection(getToFile(at("/", raw.port), {}, fd!, { dataStatuses: [200] }))) as Error).message).toContain("not an HTTP/1.x response");
    const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = closed.port;
    closed.stop(true);
    const refused = await rejection(getToFile(at("/", port), {}, fd!, { dataStatuses: [200] }));
    expect(refused).toBeInstanceOf(ConnectFailed);
    expect((refused as Error).message).toContain("ECONNREFUSED");
    expect(((await rejection(getToFile(at("/data"), { "X-Auth-Token": "a\r\nX-Evil: 1" }, fd!, { dataStatuses: [200] }))) as Error).message).toContain(
      "line break",
    );
    expect(readFileSync(out).length).toBe(0);
  });

  test("a host name is resolved", async () => {
    open();
    const r = await getToFile(new URL(`http://localhost:${server.port}/data`), {}, fd!, { dataStatuses: [200] });
    expect(r.written).toBe(data.length);
  });
});

describe("reading a response by hand", () => {
  test("heads: status, repeated and odd-cased fields; malformed ones refused", () => {
    const h = parseHead("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nset-cookie: a\r\nSet-Cookie: b")!;
    expect(h.status).toBe(206);
    expect(h.headers.get("content-range")).toBe("bytes 5-9/10");
    expect(parseHead("HTTP/1.1 200\r\nX: y")!.status).toBe(200);
    expect(parseHead("HTTP/2 200")).toBeUndefined();
    expect(parseHead("HTTP/1.1 200 OK\r\nno colon here")).toBeUndefined();
  });

  test("framing: none for 204 and 304, chunked over a length, a bad length refused", () => {
    expect(framingOf(204, new Headers({ "Content-Length": "5" }))).toEqual({ kind: "none" });
    expect(framingOf(200, new Headers({ "Transfer-Encoding": "gzip, chunked", "Content-Length": "5" }))).toEqual({ kind: "chunked" });
    expect(framingOf(200, new Headers({ "Content-Length": "42" }))).toEqual({ kind: "length", left: 42 });
    expect(framingOf(200, new Headers())).toEqual({ kind: "close" });
    expect(() => framingOf(200, new Headers({ "Content-Length": "-1" }))).toThrow("not a number");
  });

  test("chunked bodies decode the same however the bytes are split", () => {
    const wire = Buffer.from("5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n");
    for (const step of [1, 2, 3, 7, wire.length]) {
      const got: Buffer[] = [];
      const d = new ChunkedDecoder((b) => got.push(Buffer.from(b)));
      for (let i = 0; i < wire.length; i += step) d.push(wire.subarray(i, i + step));
      expect(d.done).toBe(true);
      expect(Buffer.concat(got).toString()).toBe("hello 0123456789");
    }
    expect(() => new ChunkedDecoder(() => {}).push(Buffer.from("zz\r\n"))).toThrow("bad chunk size line");
    expect(() => new ChunkedDecoder(() => {}).push(Buffer.from("2\r\nabc\r\n"))).toThrow("longer than its size line");
  });
});
