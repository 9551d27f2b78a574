import { createServer, connect, type Server } from "node:net";

/**
 * A TCP proxy that cuts the first `cuts` connections after `cutAfter` bytes
 * of the answer — a network failure in the middle of a download — and
 * passes later ones through. It keeps the request heads it saw, so a test
 * can check what a retry asked for (its Range).
 */
export interface CutProxy {
  url: string;
  heads: string[];
  close(): Promise<void>;
}

export async function cuttingProxy(target: URL, cutAfter: number, cuts = 1): Promise<CutProxy> {
  const heads: string[] = [];
  let left = cuts;
  const open = new Set<{ destroy(): void }>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    open.add(client);
    open.add(upstream);
    client.on("close", () => open.delete(client));
    upstream.on("close", () => open.delete(upstream));
    const cut = left-- > 0;
    let sent = 0;
    client.on("data", (d: Buffer) => {
      const text = d.toString("latin1");
      if (/^[A-Z]+ \//.test(text)) heads.push(text.split("\r\n\r\n")[0]!);
      upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      if (cut && sent + d.length >= cutAfter) {
        client.write(d.subarray(0, cutAfter - sent), () => {
          client.destroy();
          upstream.destroy();
        });
        sent = cutAfter;
        return;
      }
      sent += d.length;
      client.write(d);
    });
    upstream.on("end", () => client.end());
    client.on("end", () => upstream.end());
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    heads,
    // Keep-alive connections would hold close() open: end them first.
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
