import { SourceNotAvailable } from "../errors.ts";
import { parseJson } from "../pyjson/parse.ts";
import type { PyValue } from "../pyjson/value.ts";

/**
 * GET a JSON document for a collector, with the poll's deadline, and with a
 * conditional request when the source gave a validator last time (ETag or
 * Last-Modified): a 304 returns the content remembered from then, so an
 * unchanged source costs one small response. (os-collect-config's request
 * collector meant to do this with HEAD + Last-Modified, but forgot its memo
 * between polls; a malformed Last-Modified crashed it.)
 */
interface Remembered {
  etag?: string;
  lastModified?: string;
  content: PyValue;
}

export async function getJson(
  collector: string,
  url: string,
  options: { headers?: Record<string, string>; signal: AbortSignal; memo?: Record<string, unknown>; tls?: { ca: string } },
): Promise<PyValue> {
  const remembered = options.memo?.[url] as Remembered | undefined;
  const headers: Record<string, string> = { accept: "application/json", ...options.headers };
  if (remembered?.etag) headers["if-none-match"] = remembered.etag;
  else if (remembered?.lastModified) headers["if-modified-since"] = remembered.lastModified;
  let response: Response;
  try {
    response = await fetch(url, { headers, signal: options.signal, redirect: "follow", ...(options.tls ? { tls: options.tls } : {}) });
  } catch (e) {
    const reason = options.signal.aborted ? "timed out" : (e as Error).message;
    throw new SourceNotAvailable(collector, `${url}: ${reason}`);
  }
  if (response.status === 304 && remembered) return remembered.content;
  if (!response.ok) throw new SourceNotAvailable(collector, `${url}: HTTP ${response.status} ${response.statusText}`);
  let text: string;
  try {
    text = await response.text();
  } catch (e) {
    throw new SourceNotAvailable(collector, `${url}: ${options.signal.aborted ? "timed out" : (e as Error).message}`);
  }
  let content: PyValue;
  try {
    content = parseJson(text);
  } catch (e) {
    throw new SourceNotAvailable(collector, `${url}: Failed to parse as json (${(e as Error).message})`);
  }
  if (options.memo) {
    const etag = response.headers.get("etag") ?? undefined;
    const lastModified = response.headers.get("last-modified") ?? undefined;
    if (etag || lastModified) options.memo[url] = { etag, lastModified, content } satisfies Remembered;
    else delete options.memo[url];
  }
  return content;
}

/** GET text (the ec2 crawler's directory listings and leaves). */
export async function getText(collector: string, url: string, signal: AbortSignal): Promise<string> {
  try {
    const response = await fetch(url, { signal });
    if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
    return await response.text();
  } catch (e) {
    throw new SourceNotAvailable(collector, `${url}: ${signal.aborted ? "timed out" : (e as Error).message}`);
  }
}
