import { closeSync, writeSync } from "node:fs";
import { osPipe } from "./pipe.ts";

/**
 * sha256 of a long stream by coreutils' sha256sum, fed through a pipe. Under
 * qemu's emulation (TCG, where test nodes run) its plain C hashes about four
 * times as fast as the vector code of Bun's BoringSSL (about 100 against
 * 13-23 MB/s under qemu-x86_64 here); natively both take well under a
 * second for 400 MiB. Writes block while the pipe is full (a non-blocking
 * write end, waiting on a timer for room, took twice as long), so the
 * caller's thread does nothing else meanwhile; a written buffer may be
 * reused as soon as put() returns.
 */

const spawnHasher = (stdin: number) => Bun.spawn({ cmd: ["sha256sum"], stdin, stdout: "pipe", stderr: "pipe" });

export class Sha256Pipe {
  private writeEnd: number | undefined;
  private readonly hasher: ReturnType<typeof spawnHasher>;

  constructor() {
    const pipe = osPipe();
    this.writeEnd = pipe.write;
    this.hasher = spawnHasher(pipe.read);
    closeSync(pipe.read);
  }

  put(bytes: Uint8Array) {
    if (this.writeEnd === undefined) throw new Error("Sha256Pipe used after digest() or abort()");
    for (let at = 0; at < bytes.length; ) at += writeSync(this.writeEnd, bytes, at, bytes.length - at);
  }

  /** End the stream: its digest, `sha256:HEX`. */
  async digest(): Promise<string> {
    if (this.writeEnd === undefined) throw new Error("Sha256Pipe used after digest() or abort()");
    closeSync(this.writeEnd);
    this.writeEnd = undefined;
    const [out, err, code] = await Promise.all([new Response(this.hasher.stdout).text(), new Response(this.hasher.stderr).text(), this.hasher.exited]);
    const hex = /^([0-9a-f]{64}) /.exec(out)?.[1];
    if (code !== 0 || !hex) throw new Error(`sha256sum failed (exit ${code}): ${err.trim() || out.trim()}`);
    return `sha256:${hex}`;
  }

  /** Forget the stream (after a failure elsewhere). */
  abort() {
    if (this.writeEnd === undefined) return;
    closeSync(this.writeEnd);
    this.writeEnd = undefined;
    this.hasher.kill();
  }
}
