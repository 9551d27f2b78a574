import { dlopen, FFIType } from "bun:ffi";
import { closeSync, constants, fdatasync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, rmSync } from "node:fs";
import { stat } from "node:fs/promises";
import { promisify } from "node:util";
import { join } from "node:path";
import { fsyncDir, stageFile } from "../../lib/atomic.ts";
import { SHA256_HEX_RE } from "../../wire/digest.ts";
import { BlobNotFound } from "../errors.ts";
import { FileWriter } from "../file-writer.ts";
import type { BlobBackend, BlobWriter } from "./types.ts";

/**
 * Blobs as files: `<path>/sha256/<first two hex>/<hex>`, thin: runs of
 * zeros written through write() become holes (a raw disk's empty space).
 * A write goes into an unnamed O_TMPFILE inode (lib/atomic.ts) and gets its
 * name only once it is complete and verified, so a killed server leaves no
 * partial blob — the kernel frees the inode. Fan-out by two hex digits keeps
 * folders small when a store holds millions of chunks.
 */
const libc = dlopen("libc.so.6", {
  syncfs: { args: [FFIType.i32], returns: FFIType.i32 },
});
/** On the I/O thread pool: a big blob's sync must not stall the other requests. */
const fdatasyncAsync = promisify(fdatasync);

/** Writes are gathered into blocks this big before they reach the kernel. */
const BLOCK = 1 << 20;
/** Blobs this big are synced at commit; smaller ones wait for flush(). */
const SYNC_AT_COMMIT = 8 << 20;
/**
 * flush() fsyncs up to this many pending small blobs one by one; more (a
 * publish's thousands of chunks) take one syncfs. syncfs is not the default
 * because it also waits for everything else dirty on the filesystem.
 */
const FSYNC_EACH_UP_TO = 64;

export class DirBackend implements BlobBackend {
  readonly kind = "dir";
  private readonly root: string;
  /** Written since the last flush(): small files not yet synced, folders with new names. */
  private unsyncedFiles: string[] = [];
  private manyUnsynced = false;
  private unsyncedDirs = new Set<string>();

  constructor(path: string) {
    this.root = join(path, "sha256");
    mkdirSync(this.root, { recursive: true });
  }

  private pathOf(hex: string) {
    return join(this.root, hex.slice(0, 2), hex);
  }

  /** On the I/O thread pool: a publisher's query of 50,000 digests must not stall the other requests. */
  async stat(hex: string) {
    try {
      return (await stat(this.pathOf(hex))).size;
    } catch {
      return undefined;
    }
  }

  async writer(): Promise<BlobWriter> {
    const staged = stageFile(this.root);
    const block = Buffer.allocUnsafe(BLOCK);
    let used = 0;
    let size = 0;
    const file = new FileWriter(staged.fd);
    const drain = async () => {
      if (!used) return;
      const n = used;
      used = 0;
      await file.writeThin(block.subarray(0, n));
    };
    const root = this.root;
    const pending = (file: string | undefined, dir: string) => {
      this.unsyncedDirs.add(dir);
      if (file === undefined) return;
      if (this.unsyncedFiles.length < FSYNC_EACH_UP_TO) this.unsyncedFiles.push(file);
      else this.manyUnsynced = true;
    };
    return {
      get size() {
        return size;
      },
      local: {
        fd: staged.fd,
        async writeAll(stream) {
          if (size > 0) throw new Error("writeAll() on a blob writer already written to");
          const n = await Bun.write(Bun.file(staged.fd), new Response(stream));
          // Bun.write must have written from the start and kept the fd open.
          if (fstatSync(staged.fd).size !== n) throw new Error(`Bun.write reported ${n} bytes, the file has ${fstatSync(staged.fd).size}`);
          size = n;
          file.offset = n;
          return n;
        },
      },
      async write(data) {
        size += data.length;
        if (used + data.length > BLOCK) await drain();
        if (data.length >= BLOCK) return file.writeThin(data);
        block.set(data, used);
        used += data.length;
      },
      async commit(hex) {
        await drain();
        ftruncateSync(staged.fd, size); // a trailing hole is no write
        const dir = join(root, hex.slice(0, 2));
        if (mkdirSync(dir, { recursive: true })) pending(undefined, root); // a new fan-out folder
        // Small blobs (chunks) become durable at the store's flush(), one
        // syncfs per record: thousands of fsyncs would dominate a publish.
        const synced = size >= SYNC_AT_COMMIT;
        if (synced) await fdatasyncAsync(staged.fd);
        staged.publish(join(dir, hex), { durable: false });
        pending(synced ? undefined : join(dir, hex), dir);
      },
      async abort() {
        await file.settled();
        staged.discard();
      },
    };
  }

  async read(hex: string, range?: { start: number; end: number }) {
    const path = this.pathOf(hex);
    if ((await this.stat(hex)) === undefined) throw new BlobNotFound(`sha256:${hex}`);
    const file = Bun.file(path);
    return range ? file.slice(range.start, range.end) : file;
  }

  async delete(hex: string) {
    rmSync(this.pathOf(hex), { force: true });
  }

  async *list() {
    for (const fan of readdirSync(this.root)) {
      if (!/^[0-9a-f]{2}$/.test(fan)) continue;
      for (const name of readdirSync(join(this.root, fan))) if (SHA256_HEX_RE.test(name)) yield name;
    }
  }

  async flush() {
    const [files, dirs, many] = [this.unsyncedFiles, this.unsyncedDirs, this.manyUnsynced];
    this.unsyncedFiles = [];
    this.unsyncedDirs = new Set();
    this.manyUnsynced = false;
    if (many) {
      const fd = openSync(this.root, constants.O_RDONLY | constants.O_DIRECTORY);
      try {
        if (libc.symbols.syncfs(fd) !== 0) throw new Error(`syncfs failed on ${this.root}`);
      } finally {
        closeSync(fd);
      }
      return;
    }
    for (const file of files) {
      let fd: number;
      try {
        fd = openSync(file, "r");
      } catch {
        continue; // deleted since (gc): nothing to make durable
      }
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    for (const dir of dirs) fsyncDir(dir);
  }

  async recover() {
    // Only the fallback for filesystems without O_TMPFILE leaves names behind.
    for (const name of readdirSync(this.root)) if (name.startsWith(".partial-")) rmSync(join(this.root, name), { force: true });
    for (const fan of readdirSync(this.root)) {
      if (!/^[0-9a-f]{2}$/.test(fan)) continue;
      for (const name of readdirSync(join(this.root, fan)))
        if (name.startsWith(".")) rmSync(join(this.root, fan, name), { force: true });
    }
  }

  async close() {}
}
