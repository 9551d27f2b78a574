import { copyFileSync, createReadStream, mkdirSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import type { Netns } from "./netns.ts";
import { kernelArgs, type NetbootPayload } from "./marker-ramdisk.ts";

/**
 * The deployer's side of a network boot, as tests need it before the
 * deployer has one: a TFTP root with Debian's iPXE binaries (for dnsmasq's
 * TFTP) and an HTTP server on the bridge serving an iPXE script, the kernel
 * and the initrd, and recording what each machine's ramdisk reports.
 *
 * The server is node:http, not Bun.serve: Bun.serve writes header names in
 * lower case, and GRUB 2.06's HTTP client only understands
 * `Content-Length:` spelled so (it then fails with "big file signature
 * isn't implemented yet"). It listens on a unix socket in the run folder; a
 * forwarder in the namespace answers on the bridge address.
 */
export const IPXE_FILES = {
  "snponly.efi": "/usr/lib/ipxe/snponly.efi",
  "ipxe.efi": "/usr/lib/ipxe/ipxe.efi",
  "undionly.kpxe": "/usr/lib/ipxe/undionly.kpxe",
} as const;

export interface Report {
  mac: string;
  ip: string;
  at: number;
}

export interface NetbootServer {
  /** http://ADDRESS:PORT, as machines see it. */
  url: string;
  tftpRoot: string;
  /** Every request, path and time (Date.now()), in order. */
  requests: { path: string; at: number }[];
  /** What ramdisks reported (`/report?mac=…&ip=…`). */
  reports: Report[];
  /** What the ramdisk of `mac` does after reporting: stay up, or power off (the default). */
  setNext(mac: string, next: "wait" | "poweroff"): void;
  stop(): Promise<void>;
}

/**
 * One script for every machine and both firmwares. `initrd=NAME` is for the
 * kernel's EFI stub: Debian's iPXE (2019) hands the initrd to a UEFI kernel
 * only as a file the stub must be told to load; without it the kernel
 * printed nothing at all. A BIOS kernel ignores it.
 */
export function ipxeScript(baseUrl: string) {
  return [
    "#!ipxe",
    "echo ooo-testbed: iPXE on ${platform} ${net0/mac} ${net0/ip}",
    `kernel ${baseUrl}/vmlinuz initrd=initrd ${kernelArgs(`${baseUrl}/report`)}`,
    `initrd --name initrd ${baseUrl}/initrd`,
    "boot",
    "",
  ].join("\n");
}

export async function startNetboot(
  netns: Netns,
  o: { dir: string; payload: NetbootPayload; port?: number; /** More files to serve: URL path → file. */ files?: Record<string, string> },
): Promise<NetbootServer> {
  const port = o.port ?? 8080;
  const url = `http://${netns.address}:${port}`;
  const tftpRoot = join(o.dir, "tftp");
  mkdirSync(tftpRoot, { recursive: true, mode: 0o755 });
  for (const [name, from] of Object.entries(IPXE_FILES)) copyFileSync(from, join(tftpRoot, name));
  const files: Record<string, string> = { "/vmlinuz": o.payload.kernel, "/initrd": o.payload.initrd, ...o.files };
  const script = ipxeScript(url);
  const requests: NetbootServer["requests"] = [];
  const reports: Report[] = [];
  const next = new Map<string, string>();
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", url);
    requests.push({ path: u.pathname, at: Date.now() });
    if (u.pathname === "/boot.ipxe") {
      res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": String(Buffer.byteLength(script)) });
      return res.end(script);
    }
    if (u.pathname === "/report") {
      const mac = u.searchParams.get("mac") ?? "";
      reports.push({ mac, ip: u.searchParams.get("ip") ?? "", at: Date.now() });
      const answer = next.get(mac) ?? "poweroff";
      res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": String(answer.length) });
      return res.end(answer);
    }
    const file = files[u.pathname];
    if (!file) {
      res.writeHead(404, { "Content-Length": "0" });
      return res.end();
    }
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": String(statSync(file).size) });
    if (req.method === "HEAD") return res.end();
    createReadStream(file).pipe(res);
  });
  const sock = join(o.dir, "http.sock");
  rmSync(sock, { force: true });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(sock, resolve));
  await netns.exposeUnix(port, sock);
  return {
    url,
    tftpRoot,
    requests,
    reports,
    setNext(mac, what) {
      next.set(mac, what);
    },
    async stop() {
      // A machine that powered off mid-connection never closes it: end them
      // all, and do not wait long for the close (under load it was seen to
      // never call back).
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await Promise.race([closed, Bun.sleep(2000)]);
    },
  };
}
