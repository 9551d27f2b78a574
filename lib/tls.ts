import { isIP } from "node:net";

/**
 * TLS for ooo's services and clients. Servers take a certificate and key
 * (PEM files); clients verify always — against the system's CAs, or the
 * CA they are given — and never offer to skip it. Plain http is for
 * loopback, or where the operator says so in so many words.
 */
export interface TlsFiles {
  /** PEM certificate chain, the server's first. */
  cert: string;
  /** PEM private key (a file of mode 0600). */
  key: string;
}

/** Bun.serve's `tls` for these files. */
export const serverTls = (files: TlsFiles) => ({ cert: Bun.file(files.cert), key: Bun.file(files.key) });

/** A host only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  return h === "::1" || h === "0:0:0:0:0:0:0:1";
}

/** fetch()'s `tls` for a CA to trust (and the name the certificate must carry, when the URL's host is another). */
export function clientTls(options: { ca?: string; serverName?: string }): { tls?: { ca?: string; serverName?: string } } {
  if (!options.ca && !options.serverName) return {};
  return { tls: { ...(options.ca ? { ca: options.ca } : {}), ...(options.serverName ? { serverName: options.serverName } : {}) } };
}
