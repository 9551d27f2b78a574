/**
 * A proxy in front of a real image store that passes everything through
 * until told to lie: then it answers for one digest (`named`) with another
 * image (`served`), and rewrites every claim the store makes about that
 * image — its record's ooo_digest and os_hash_value, its chunk index's and
 * manifest's digest — to the named one. Its data, chunk index and entries
 * stay self-consistent: a valid image, just not the one named. Only a
 * client that checks what it assembled against the digest it trusts can
 * tell.
 */
export interface Lie {
  /** The digest the client asks for. */
  named: string;
  /** The image it gets instead. */
  served: { id: string; digest: string };
}

export interface LyingStore {
  /** host:port to reach it at. */
  host: string;
  /** Start lying (or stop, with undefined). */
  lie(lie: Lie | undefined): void;
  stop(): void;
}

export function lyingStore(storeUrl: string): LyingStore {
  let current: Lie | undefined;
  const upstream = new URL(storeUrl);
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const lie = current;
      if (lie && url.searchParams.get("ooo_digest") === lie.named) url.searchParams.set("ooo_digest", lie.served.digest);
      const headers = new Headers(req.headers);
      headers.delete("host");
      const res = await fetch(new URL(`${url.pathname}${url.search}`, upstream), {
        method: req.method,
        headers,
        body: req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer(),
        redirect: "manual",
      });
      if (!lie || req.method !== "GET" || res.status !== 200 || !res.headers.get("content-type")?.includes("json")) return res;
      const ours = url.pathname === "/v2/images" || url.pathname.startsWith(`/v2/images/${lie.served.id}`);
      if (!ours || url.pathname.endsWith("/file")) return res;
      const claimed = (image: Record<string, unknown>) =>
        image.id === lie.served.id ? { ...image, ooo_digest: lie.named, os_hash_value: lie.named.slice("sha256:".length) } : image;
      const body = (await res.json()) as Record<string, unknown>;
      if (Array.isArray(body.images)) return Response.json({ ...body, images: body.images.map(claimed) });
      if (url.pathname === `/v2/images/${lie.served.id}`) return Response.json(claimed(body));
      // The chunk index and the manifest name the digest of the data they describe.
      return Response.json(body.digest === lie.served.digest ? { ...body, digest: lie.named } : body);
    },
  });
  return {
    host: `127.0.0.1:${server.port}`,
    lie: (lie) => void (current = lie),
    stop: () => void server.stop(true),
  };
}
