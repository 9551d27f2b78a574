import { statSync } from "node:fs";
import type { Server } from "bun";
import {
  CommandV1,
  DEPLOY_VERSION,
  InventoryV1,
  LookupV1,
  RamdiskProgressV1,
  RamdiskResultV1,
  type Command,
  type Inventory,
  type Lookup,
  type RamdiskProgress,
  type RamdiskResult,
} from "../../wire/deploy.ts";

/**
 * The deployer's side of wire/deploy.ts, as small as a test needs: one
 * machine, armed when the test says so, commands the test sets, and
 * everything the ramdisk sends recorded with the time it arrived. Requests
 * are checked with the wire's zod schemas, so a ramdisk that speaks the
 * protocol wrongly fails here. Not the deployer: it exists for the tests.
 */
export interface PeerOptions {
  machine: string;
  macs: string[];
  token: string;
  /** Files served as downloads, by path, each with the token it wants: a bearer token, or (a store's) X-Auth-Token. */
  files: Record<string, { file: string; token: string; header?: "x-auth-token" }>;
  /** Other routes (a node's metadata and signal after the deploy). */
  extra?: (req: Request, url: URL) => Promise<Response | undefined>;
}

export interface Received<T> {
  at: number;
  body: T;
}

export class RamdiskPeer {
  readonly lookups: Received<Lookup>[] = [];
  readonly inventories: Received<Inventory>[] = [];
  readonly progress: Received<RamdiskProgress>[] = [];
  readonly results: Received<RamdiskResult>[] = [];
  readonly downloads: Received<{ path: string; bytes: number }>[] = [];
  readonly refused: string[] = [];
  private armed = false;
  private answered = false;
  private command: Command = { version: DEPLOY_VERSION, action: "wait" };
  private serial = 1;
  private changed: (() => void)[] = [];
  private readonly server: Server<undefined>;
  private readonly waiters: { test: () => boolean; resolve: () => void }[] = [];

  constructor(private readonly o: PeerOptions) {
    this.server = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 0, fetch: (req) => this.handle(req) });
  }

  get port() {
    return this.server.port!;
  }

  /** The machine may look itself up now (once). */
  arm() {
    this.armed = true;
  }

  setCommand(command: Command) {
    this.command = CommandV1.parse(command);
    this.serial++;
    for (const f of this.changed.splice(0)) f();
  }

  /** Resolves when `test` holds (checked at every request). */
  until(test: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the ramdisk did not ${what} within ${timeoutMs / 1000} s`)), timeoutMs);
      this.waiters.push({ test, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  stop() {
    void this.server.stop(true);
  }

  private record<T>(list: Received<T>[], body: T) {
    list.push({ at: performance.now(), body });
  }

  private notify() {
    for (const w of [...this.waiters]) if (w.test()) (this.waiters.splice(this.waiters.indexOf(w), 1), w.resolve());
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    try {
      return await this.route(req, url);
    } finally {
      this.notify();
    }
  }

  private async route(req: Request, url: URL): Promise<Response> {
    const path = url.pathname;
    const bearer = req.headers.get("authorization");
    if (req.method === "POST" && path === "/v1/ramdisk/lookup") {
      const body = LookupV1.parse(await req.json());
      this.record(this.lookups, body);
      if (!this.armed || this.answered || !body.macs.some((m) => this.o.macs.includes(m))) return new Response("not armed", { status: 404 });
      this.answered = true;
      return Response.json({ version: DEPLOY_VERSION, machine: this.o.machine, token: this.o.token, poll_interval: 1 });
    }
    const file = this.o.files[path];
    if (file && req.method === "GET") {
      const sent = file.header ? req.headers.get(file.header) : bearer;
      if (sent !== (file.header ? file.token : `Bearer ${file.token}`)) return this.refuse(`${path}: wrong token`);
      const bytes = statSync(file.file).size;
      this.record(this.downloads, { path, bytes });
      return new Response(Bun.file(file.file), { headers: { "content-length": String(bytes) } });
    }
    const m = /^\/v1\/ramdisk\/([^/]+)\/(inventory|command|progress|result)$/.exec(path);
    if (m) {
      if (m[1] !== this.o.machine || bearer !== `Bearer ${this.o.token}`) return this.refuse(`${path}: wrong machine or token`);
      switch (m[2]) {
        case "inventory":
          this.record(this.inventories, InventoryV1.parse(await req.json()));
          return new Response(null, { status: 204 });
        case "progress":
          this.record(this.progress, RamdiskProgressV1.parse(await req.json()));
          return new Response(null, { status: 204 });
        case "result":
          this.record(this.results, RamdiskResultV1.parse(await req.json()));
          return new Response(null, { status: 204 });
        case "command":
          return this.commandAnswer(req, Number(url.searchParams.get("wait") ?? 0));
      }
    }
    return (await this.o.extra?.(req, url)) ?? new Response("not found", { status: 404 });
  }

  /** ETag is the command's serial; with If-None-Match the answer waits (up to `wait` s) for a change. */
  private async commandAnswer(req: Request, wait: number): Promise<Response> {
    const etag = `"${this.serial}"`;
    if (req.headers.get("if-none-match") === etag) {
      const changed = new Promise<void>((resolve) => this.changed.push(resolve));
      await Promise.race([changed, Bun.sleep(wait * 1000)]);
      if (`"${this.serial}"` === etag) return new Response(null, { status: 304, headers: { etag } });
    }
    return Response.json(this.command, { headers: { etag: `"${this.serial}"` } });
  }

  private refuse(why: string) {
    this.refused.push(why);
    return new Response("unauthorized", { status: 401 });
  }
}
