import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Digest } from "../wire/image-ref.ts";
import { BadRequest, Forbidden, TempUrlRefused } from "./errors.ts";
import { imageBlobs } from "./references.ts";
import type { Store } from "./store.ts";

/**
 * Signed, time-limited URLs for one blob of one image, for clients that
 * fetch a plain URL and can send no token: Ironic's conductor (it HEADs an
 * image URL before a deploy) and its agent (it GETs it). Swift's TempURL
 * idea: the query carries an expiry and an HMAC-SHA256 of the method, the
 * expiry, the path and the image, under a key only the store knows
 * (`temp-url.key` in its folder, mode 0600, made on first use). Nothing is
 * kept per URL; the signature covers the path and not the host, so a
 * caller may hand out the store's address machines reach.
 *
 *   GET /v2/images/{id}/blobs/{digest}/temp-url?ttl=SECONDS   (any token) → {url, expires, expires_at}
 *   GET|HEAD /v2/ooo/blobs/{digest}?image=ID&temp_url_expires=T&temp_url_sig=HEX   (no token)
 *
 * A read token may ask for one: it reads every blob already, for as long as
 * it is valid, and a signed URL opens less — one blob, for a while. A URL
 * is refused (401) once expired or with a wrong signature, and (403) when
 * its image is deactivated or deleted, or no longer refers to the blob.
 * A GET signature serves HEAD as well, as Swift's does.
 */
export const DEFAULT_TTL_SECONDS = 3600;
export const MAX_TTL_SECONDS = 7 * 24 * 3600;
const KEY_FILE = "temp-url.key";
export const SIGNED = { sig: "temp_url_sig", expires: "temp_url_expires", image: "image" } as const;

const blobPath = (digest: string) => `/v2/ooo/blobs/${digest}`;

export class TempUrls {
  private keyBytes?: Buffer;
  /** The blobs of the image last asked about, while no record changed. */
  private scope?: { id: string; generation: number; blobs: Set<string> };

  constructor(private readonly store: Store) {}

  private key(): Buffer {
    if (!this.keyBytes) {
      const keyFile = join(this.store.dir, KEY_FILE);
      // wx: two stores opening the folder at once cannot both write a key (one wins, the other reads it).
      if (!existsSync(keyFile)) {
        try {
          writeFileSync(keyFile, randomBytes(32).toString("hex") + "\n", { mode: 0o600, flag: "wx" });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        }
      }
      this.keyBytes = Buffer.from(readFileSync(keyFile, "utf8").trim(), "hex");
    }
    return this.keyBytes;
  }

  private sign(path: string, image: string, expires: number): string {
    return createHmac("sha256", this.key()).update(`GET\n${expires}\n${path}\n${image}`).digest("hex");
  }

  private async refersTo(id: string, hex: string): Promise<boolean> {
    const r = this.store.get(id);
    this.store.checkDownloadable(r);
    if (r.status !== "active") throw new Forbidden(`Image ${id} is ${r.status}: it has no data to hand out`);
    const generation = this.store.records.generation;
    if (this.scope?.id !== id || this.scope.generation !== generation) this.scope = { id, generation, blobs: await imageBlobs(this.store, r) };
    return this.scope.blobs.has(hex);
  }

  /** A signed URL for `digest` of image `id`, `ttl` seconds from `now` (ms). */
  async issue(origin: string, id: string, digest: string, ttl: string | null, now = Date.now()) {
    if (!Digest.safeParse(digest).success) throw new BadRequest(`Not a blob digest: ${digest.slice(0, 80)}`);
    const seconds = ttl === null ? DEFAULT_TTL_SECONDS : Number(ttl);
    if (!Number.isSafeInteger(seconds) || seconds < 1 || seconds > MAX_TTL_SECONDS) throw new BadRequest(`ttl must be whole seconds from 1 to ${MAX_TTL_SECONDS}, not ${ttl}`);
    if (!(await this.refersTo(id, digest.slice(7)))) throw new Forbidden(`Image ${id} does not refer to blob ${digest}`);
    const expires = Math.floor(now / 1000) + seconds;
    const path = blobPath(digest);
    const query = new URLSearchParams({ [SIGNED.image]: id, [SIGNED.expires]: String(expires), [SIGNED.sig]: this.sign(path, id, expires) });
    return { url: `${origin}${path}?${query}`, expires, expires_at: new Date(expires * 1000).toISOString() };
  }

  /** Whether the request carries a signature (it is then judged by it alone, never by a token). */
  static carried(url: URL): boolean {
    return url.searchParams.has(SIGNED.sig);
  }

  /** The blob digest a signed request may read; refused unless the signature, the expiry and the image allow it. */
  async check(method: string, url: URL, now = Date.now()): Promise<string> {
    const digest = /^\/v2\/ooo\/blobs\/([^/]+)$/.exec(url.pathname)?.[1];
    if ((method !== "GET" && method !== "HEAD") || !digest || !Digest.safeParse(digest).success)
      throw new TempUrlRefused("A signed URL opens only GET or HEAD of the one blob it was made for");
    const [sig, expiresText, image] = [url.searchParams.get(SIGNED.sig) ?? "", url.searchParams.get(SIGNED.expires) ?? "", url.searchParams.get(SIGNED.image) ?? ""];
    const expires = /^\d{1,12}$/.test(expiresText) ? Number(expiresText) : NaN;
    const wanted = Buffer.from(this.sign(url.pathname, image, expires), "hex");
    const given = /^[0-9a-f]{64}$/.test(sig) ? Buffer.from(sig, "hex") : Buffer.alloc(0);
    if (Number.isNaN(expires) || given.length !== wanted.length || !timingSafeEqual(given, wanted)) throw new TempUrlRefused("The signed URL's signature is not valid");
    if (Math.floor(now / 1000) >= expires) throw new TempUrlRefused(`The signed URL expired at ${new Date(expires * 1000).toISOString()}`);
    if (!(await this.refersTo(image, digest.slice(7)))) throw new Forbidden(`Image ${image} no longer refers to blob ${digest}`);
    return digest;
  }
}
