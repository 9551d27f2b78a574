/**
 * Where blob bytes live. A backend stores opaque objects named by the sha256
 * of their content (lowercase hex); it never decides names itself, so a
 * name always tells what the bytes are. Records (the image metadata) stay in
 * the store's directory whatever the backend, as Glance keeps its database
 * apart from its glance_store.
 *
 * Durability is batched: a finished write is visible at once but may still
 * be in the page cache; the store calls flush() before it commits a record
 * that refers to new blobs, so a crash can lose new blobs but never leave a
 * record pointing at one that is not there.
 */
export interface BlobBackend {
  /** `dir`, `swift`: for messages and the bench. */
  readonly kind: string;
  /** Bytes in the blob, or undefined when there is none. */
  stat(hex: string): Promise<number | undefined>;
  /** Start writing a blob whose name is known only at the end. */
  writer(): Promise<BlobWriter>;
  /** The blob's bytes from `start` up to (not including) `end`, as a response body. */
  read(hex: string, range?: { start: number; end: number }): Promise<Blob | ReadableStream<Uint8Array>>;
  delete(hex: string): Promise<void>;
  /** Every blob name (for garbage collection and checks). */
  list(): AsyncIterable<string>;
  /** Make every finished write durable. */
  flush(): Promise<void>;
  /** Remove what writes interrupted by a crash left behind; called at start. */
  recover(): Promise<void>;
  close(): Promise<void>;
}

export interface BlobWriter {
  /**
   * Once this resolves the caller may reuse or give away `data`: keep a copy
   * if needed. Calls come one at a time: the caller waits for each write
   * before the next, and before commit or abort.
   */
  write(data: Uint8Array): Promise<void>;
  /** Bytes written so far. */
  readonly size: number;
  /**
   * Offered by backends that write a local file: instead of write() calls,
   * the caller may hand over a whole stream, written natively (Bun.write)
   * without passing through JavaScript, and read the bytes back at `fd` as
   * they land (to hash them). Only on a writer nothing was written to yet;
   * resolves with the bytes written.
   */
  readonly local?: { fd: number; writeAll(stream: ReadableStream<Uint8Array>): Promise<number> };
  /** Name the written bytes `hex` (the caller has verified they hash to it). */
  commit(hex: string): Promise<void>;
  /** Forget the written bytes; nothing of them remains. */
  abort(): Promise<void>;
}

/** A backend body as a stream, whatever kind the backend returned. */
export function streamOf(body: Blob | ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  return body instanceof Blob ? body.stream() : body;
}
