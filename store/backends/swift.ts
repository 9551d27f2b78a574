import { createHash, randomUUID } from "node:crypto";
import { BackendFailed, BlobNotFound } from "../errors.ts";
import type { BlobBackend, BlobWriter } from "./types.ts";

/**
 * Blobs in an OpenStack Swift container, as glance_store's swift driver
 * keeps images: `sha256/<hex>` objects. A blob bigger than one segment goes
 * up in segments (`segments/<upload id>/<n>`, each PUT with its md5 as ETag
 * so Swift checks it) and becomes visible only when its static large object
 * manifest is PUT at `sha256/<hex>` — after the store verified the digest.
 * An interrupted upload leaves unreferenced segments, never a partial blob.
 *
 * Auth is Swift's v1 protocol (tempauth, swauth): the token is renewed once
 * on a 401. Swift answers a PUT only after its object servers fsynced, so
 * flush() has nothing to do.
 */
export interface SwiftOptions {
  authUrl: string;
  /** account:user */
  user: string;
  key: string;
  container: string;
  segmentBytes: number;
}

type Body = Uint8Array | string | undefined;

export class SwiftBackend implements BlobBackend {
  readonly kind = "swift";
  private token = "";
  private storageUrl = "";

  private constructor(private readonly options: SwiftOptions) {}

  static async connect(options: SwiftOptions): Promise<SwiftBackend> {
    const backend = new SwiftBackend(options);
    await backend.authenticate();
    const res = await backend.request("PUT", "", undefined, {}, [201, 202]);
    await res.body?.cancel();
    return backend;
  }

  private async authenticate() {
    let res: Response;
    try {
      res = await fetch(this.options.authUrl, { headers: { "X-Auth-User": this.options.user, "X-Auth-Key": this.options.key } });
    } catch (e) {
      throw new BackendFailed(`cannot reach Swift at ${this.options.authUrl}: ${e instanceof Error ? e.message : e}`);
    }
    await res.body?.cancel();
    const token = res.headers.get("X-Auth-Token");
    const url = res.headers.get("X-Storage-Url");
    if (!res.ok || !token || !url) throw new BackendFailed(`Swift refused the store's credentials (${res.status} from ${this.options.authUrl})`);
    this.token = token;
    this.storageUrl = url.replace(/\/$/, "");
  }

  private url(object: string, query = "") {
    const container = `${this.storageUrl}/${encodeURIComponent(this.options.container)}`;
    return (object ? `${container}/${object}` : container) + query;
  }

  /** One Swift request; renews the token once on 401; throws unless the status is expected. */
  private async request(method: string, object: string, body: Body, headers: Record<string, string>, ok: number[], query = "") {
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(this.url(object, query), { method, body, headers: { ...headers, "X-Auth-Token": this.token } });
      } catch (e) {
        throw new BackendFailed(`Swift ${method} ${object || "container"} failed: ${e instanceof Error ? e.message : e}`);
      }
      if (res.status === 401 && attempt === 0) {
        await res.body?.cancel();
        await this.authenticate();
        continue;
      }
      if (!ok.includes(res.status)) {
        const text = (await res.text().catch(() => "")).slice(0, 300);
        throw new BackendFailed(`Swift ${method} ${object || "container"}: ${res.status} ${text}`);
      }
      return res;
    }
  }

  async stat(hex: string) {
    const res = await this.request("HEAD", `sha256/${hex}`, undefined, {}, [200, 204, 404]);
    await res.body?.cancel();
    return res.status === 404 ? undefined : Number(res.headers.get("Content-Length"));
  }

  async writer(): Promise<BlobWriter> {
    const { segmentBytes, container } = this.options;
    const upload = randomUUID();
    const segments: { path: string; etag: string; size_bytes: number }[] = [];
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    let size = 0;
    const take = (n: number) => {
      const all = Buffer.concat(pending, pendingBytes);
      pending = n < all.length ? [all.subarray(n)] : [];
      pendingBytes = all.length - n;
      return all.subarray(0, n);
    };
    const putSegment = async (data: Uint8Array) => {
      const name = `segments/${upload}/${String(segments.length + 1).padStart(6, "0")}`;
      const etag = createHash("md5").update(data).digest("hex");
      const res = await this.request("PUT", name, data, { ETag: etag }, [201]);
      await res.body?.cancel();
      segments.push({ path: `/${container}/${name}`, etag, size_bytes: data.length });
    };
    return {
      get size() {
        return size;
      },
      write: async (data) => {
        size += data.length;
        pending.push(Uint8Array.from(data));
        pendingBytes += data.length;
        while (pendingBytes >= segmentBytes) await putSegment(take(segmentBytes));
      },
      commit: async (hex) => {
        if (!segments.length) {
          const data = take(pendingBytes);
          const etag = createHash("md5").update(data).digest("hex");
          const res = await this.request("PUT", `sha256/${hex}`, data, { ETag: etag }, [201]);
          await res.body?.cancel();
          return;
        }
        if (pendingBytes) await putSegment(take(pendingBytes));
        const res = await this.request(
          "PUT",
          `sha256/${hex}`,
          JSON.stringify(segments),
          { "Content-Type": "application/json" },
          [201],
          "?multipart-manifest=put",
        );
        await res.body?.cancel();
      },
      abort: async () => {
        pending = [];
        for (const s of segments) {
          const res = await this.request("DELETE", s.path.slice(container.length + 2), undefined, {}, [204, 404]).catch(() => undefined);
          await res?.body?.cancel();
        }
      },
    };
  }

  async read(hex: string, range?: { start: number; end: number }) {
    const headers: Record<string, string> = range ? { Range: `bytes=${range.start}-${range.end - 1}` } : {};
    const res = await this.request("GET", `sha256/${hex}`, undefined, headers, [200, 206, 404]);
    if (res.status === 404) {
      await res.body?.cancel();
      throw new BlobNotFound(`sha256:${hex}`);
    }
    return res.body ?? new Blob([]);
  }

  async delete(hex: string) {
    // multipart-manifest=delete removes an SLO's segments too; plain objects go as usual.
    const res = await this.request("DELETE", `sha256/${hex}`, undefined, {}, [200, 204, 404], "?multipart-manifest=delete");
    await res.body?.cancel();
  }

  async *list() {
    let marker = "";
    for (;;) {
      const res = await this.request("GET", "", undefined, {}, [200, 204], `?format=json&prefix=sha256/&limit=10000&marker=${encodeURIComponent(marker)}`);
      const page = res.status === 204 ? [] : ((await res.json()) as { name: string }[]);
      if (!page.length) return;
      for (const o of page) yield o.name.slice("sha256/".length);
      marker = page.at(-1)!.name;
    }
  }

  async flush() {}

  async recover() {}

  async close() {}
}
