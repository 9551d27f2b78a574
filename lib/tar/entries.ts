import { createHash, type Hash } from "node:crypto";
import { cString, NotATarStream, octalField, padded, paxRecords } from "./decode.ts";
import { BLOCK } from "./encode.ts";

export { NotATarStream };

/**
 * The entries of a pax/ustar stream (the canonical root stream of
 * lib/tar/canonical.ts), each as its exact bytes: from its pax extended
 * header, if any, through the padding after its data. Two streams that hold
 * an entry with the same path and the same sha256 hold the same file: path,
 * type, mode, owner, mtime, xattrs, link target and content are all in those
 * bytes. A node that runs one image can so tell, without reading its root,
 * which files the next image changes (agents/takeover/patch-install.ts).
 *
 * Fed incrementally, in stream order, with buffers of any size.
 */
export interface StreamEntry {
  /** The entry's path as the stream spells it (`./usr/bin/…`, directories end in `/`). */
  path: string;
  /** Bytes of the entry in the stream, headers and padding included. */
  length: number;
  /** sha256 (hex) of those bytes. */
  sha256: string;
  /** For a hard link: the path it links to. */
  hardlinkTo?: string;
}

export class EntryIndexer {
  readonly entries: StreamEntry[] = [];
  private hash: Hash = createHash("sha256");
  private entryLength = 0;
  /** Bytes of the current header block (or pax data) collected so far. */
  private header: Buffer[] = [];
  private headerBytes = 0;
  private want = BLOCK;
  private state: "header" | "pax" | "data" | "end" = "header";
  private pax = new Map<string, string>();
  private paxSize = 0;
  private dataLeft = 0;
  private pending?: { path: string; hardlinkTo?: string };
  private trailer = 0;

  push(chunk: Uint8Array) {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (buf.length) {
      if (this.state === "end") {
        if (buf.some((b) => b !== 0)) throw new NotATarStream("bytes other than zeros follow the end of the archive");
        this.trailer += buf.length;
        return;
      }
      if (this.state === "data") {
        const n = Math.min(this.dataLeft, buf.length);
        this.consume(buf.subarray(0, n));
        this.dataLeft -= n;
        buf = buf.subarray(n);
        if (this.dataLeft === 0) this.finishEntry();
        continue;
      }
      const n = Math.min(this.want - this.headerBytes, buf.length);
      this.header.push(buf.subarray(0, n));
      this.headerBytes += n;
      buf = buf.subarray(n);
      if (this.headerBytes === this.want) {
        const block = Buffer.concat(this.header, this.headerBytes);
        this.header = [];
        this.headerBytes = 0;
        this.onBlock(block);
      }
    }
  }

  private consume(b: Buffer) {
    this.hash.update(b);
    this.entryLength += b.length;
  }

  private onBlock(block: Buffer) {
    if (this.state === "pax") {
      this.consume(block);
      this.pax = new Map(paxRecords(block.subarray(0, this.paxSize)).map(([k, v]) => [k, v.toString("utf8")]));
      this.state = "header";
      this.want = BLOCK;
      return;
    }
    if (block.every((b) => b === 0)) {
      if (this.entryLength) throw new NotATarStream("the archive ends inside an entry");
      this.state = "end";
      this.trailer = BLOCK;
      return;
    }
    this.consume(block);
    const typeflag = String.fromCharCode(block[156]!);
    const size = octalField(block, 124, 12);
    if (typeflag === "x") {
      this.paxSize = size;
      this.state = "pax";
      this.want = padded(size);
      if (this.want === 0) {
        this.state = "header";
        this.want = BLOCK;
      }
      return;
    }
    if (!"01234567".includes(typeflag) && typeflag !== "\0") throw new NotATarStream(`unsupported tar entry type ${JSON.stringify(typeflag)}`);
    const prefix = cString(block, 345, 155);
    const name = cString(block, 0, 100);
    const path = this.pax.get("path") ?? (prefix ? `${prefix}/${name}` : name);
    const link = this.pax.get("linkpath") ?? cString(block, 157, 100);
    const dataSize = Number(this.pax.get("size") ?? size);
    this.pending = { path, ...(typeflag === "1" ? { hardlinkTo: link } : {}) };
    this.pax = new Map();
    this.dataLeft = typeflag === "0" || typeflag === "\0" || typeflag === "7" ? padded(dataSize) : 0;
    if (this.dataLeft) this.state = "data";
    else this.finishEntry();
  }

  private finishEntry() {
    const p = this.pending!;
    this.entries.push({ path: p.path, length: this.entryLength, sha256: this.hash.digest("hex"), ...(p.hardlinkTo !== undefined ? { hardlinkTo: p.hardlinkTo } : {}) });
    this.hash = createHash("sha256");
    this.entryLength = 0;
    this.pending = undefined;
    this.state = "header";
    this.want = BLOCK;
  }

  /** The entries, once the whole stream was pushed. Throws if it ended inside an entry. */
  finish(): StreamEntry[] {
    if (this.state !== "end" || this.trailer < 2 * BLOCK) throw new NotATarStream("the stream ends before the end-of-archive blocks");
    return this.entries;
  }
}
