import { join } from "node:path";
import { log } from "../lib/log.ts";
import type { NodeTrust } from "../wire/trust.ts";
import type { DriverNode, HostService, NodeDriver } from "./drivers/driver.ts";
import { driverFor } from "./drivers/index.ts";
import { mapDownload, type ImageCache, type ResolvedImage } from "./images.ts";
import { bootedDetail, type ConsoleWatch, consoleSize, consoleTail, watchNode } from "./node-watch.ts";
import { newToken, tokenHash } from "./metadata-service.ts";
import { configDrive, configHash, nodeMetadata, type Endpoints } from "./node-metadata.ts";
import type { StackStore } from "./services.ts";
import type { StackTls } from "./stack-tls.ts";
import type { NodeSpec } from "./stack.ts";
import type { NodeRow, StateDb } from "./state.ts";
import { inRamdisk, powerOnByRamdisk, provisionByRamdisk, waitForRamdisk } from "./bare-metal/ramdisk-ops.ts";
import { readProvisioning } from "./provisioning/settings.ts";

/**
 * What the deployer does to one node: provision (image + config drive),
 * power on, deliver metadata, and wait for the completion signal — each step
 * a recorded transition, so a killed deploy resumes at the step it was in.
 * Nodes run these concurrently; none waits for another.
 */
export interface NodeContext {
  db: StateDb;
  run: number;
  stateDir: string;
  cache: ImageCache;
  store: StackStore;
  services: HostService[];
  signalTimeoutSeconds: number;
  pollingIntervalSeconds: number;
  /** What nodes trust, for their config drives (the stack's image keys, its CA). */
  trust?: NodeTrust;
  /** The stack's CA and certificate when its services speak https (stack-tls.ts). */
  tls?: StackTls;
}

export function driverNode(stateDir: string, row: Pick<NodeRow, "name" | "size" | "pool_config"> & { machine?: string | null }): DriverNode {
  return { name: row.name, dir: join(stateDir, "nodes", row.name), stateDir, size: row.size, pool: row.pool_config, ...(row.machine ? { machine: row.machine } : {}) };
}

/** How a node reaches the services: through its driver, https where they speak it. */
export function endpointsFor(driver: NodeDriver, store: StackStore, metadataTls: boolean, stateDir?: string): Endpoints {
  const storeUrl = new URL(store.url);
  // Machines on the provisioning network reach the services at its address; a store of its own URL they reach there.
  const onNetwork = Boolean(driver.bareMetal || driver.remoteDeploy);
  const provisioning = onNetwork && stateDir ? readProvisioning(stateDir) : undefined;
  const storeBase = onNetwork && !store.embedded ? storeUrl.origin : driver.serviceUrl("store", { tls: store.service.tls, provisioning });
  return {
    metadataUrl: driver.serviceUrl("metadata", { tls: metadataTls, provisioning }),
    store: {
      url: storeBase + storeUrl.pathname.replace(/\/+$/, ""),
      ...(store.readToken ? { token: store.readToken } : {}),
      ...(store.serverName ? { server_name: store.serverName } : {}),
    },
  };
}

/** The metadata document and its fingerprint, for a node at a serial, on the image it runs. */
export function metadataFor(ctx: NodeContext, spec: NodeSpec, image: { name: string; digest: string; attempt?: number }, serial: number) {
  const doc = nodeMetadata(spec, image, serial, endpointsFor(driverFor(spec.driver), ctx.store, Boolean(ctx.tls), ctx.stateDir));
  return { text: JSON.stringify(doc), hash: configHash(doc) };
}

/** Write the image and a config drive with a fresh token; the node ends powered off, state writing-image. */
/**
 * A new deploy of `image` to a node: a new token and serial, the metadata
 * they give, and the node in writing-image until its disk is written.
 */
export function beginImageWrite(ctx: NodeContext, spec: NodeSpec, image: ResolvedImage, lastSerial: number, detail: Record<string, unknown> = {}) {
  const token = newToken();
  const serial = lastSerial + 1;
  const md = metadataFor(ctx, spec, { name: image.name, digest: image.digest }, serial);
  ctx.db.transition(spec.name, "writing-image", {
    run: ctx.run,
    fields: {
      image_ref: image.ref,
      image_name: image.name,
      image_digest: image.digest,
      token_hash: tokenHash(token),
      serial,
      metadata: md.text,
      config_hash: md.hash,
      size: spec.size,
      collected_serial: null,
      signalled_serial: null,
      error: null,
    },
    detail: { image: image.digest, ...detail },
  });
  return { token, serial };
}

export async function provision(ctx: NodeContext, spec: NodeSpec, image: ResolvedImage): Promise<void> {
  const { db, run } = ctx;
  const row = db.node(spec.name)!;
  const driver = driverFor(row.driver);
  if (driver.bareMetal) return provisionByRamdisk(ctx, spec, image);
  if (driver.remoteDeploy) return provisionRemote(ctx, spec, image, driver);
  const node = driverNode(ctx.stateDir, row);
  if ((await driver.powerState(node)) === "on") {
    await driver.setPower(node, "off");
    db.event(spec.name, "power-off", { why: "its disk is rewritten" }, { run });
  }
  const { token } = beginImageWrite(ctx, spec, image, row.serial);
  const cached = ctx.cache.has(image);
  db.event(spec.name, "image-fetch-start", { digest: image.digest, cached }, { run });
  const disk = await log.step(`${spec.name}: ${cached ? "image in the cache" : `fetch ${image.name} (${(image.disk.size / 2 ** 30).toFixed(1)} GiB disk)`}`, async () => {
    const fetched = await ctx.cache.ensure(ctx.store.client, image);
    if (!cached) log.bytes(fetched.size);
    return fetched;
  });
  db.event(spec.name, "image-fetch-end", { digest: image.digest, cached }, { run });
  db.event(spec.name, "image-write-start", { bytes: disk.size }, { run });
  const endpoints = endpointsFor(driver, ctx.store, Boolean(ctx.tls));
  await log.step(`${spec.name}: write the image`, () =>
    driver.provision(node, { image: disk, configDrive: configDrive(spec.name, token, endpoints, ctx.pollingIntervalSeconds, ctx.trust), services: ctx.services, expose: spec.expose }),
  );
  db.event(spec.name, "image-written", { bytes: disk.size }, { run });
}

/** How long a signed image URL lasts beyond the deploy's deadline (the agent may start its download late in it). */
const SIGNED_URL_MARGIN_SECONDS = 600;

/**
 * A machine deployed by a service of its own (Ironic): no local copy of the
 * image — its agent fetches it by a signed store URL at the store's address
 * on the provisioning network — and the driver's provision boots the
 * machine, writes it and boots its disk. The node ends on, booting.
 */
async function provisionRemote(ctx: NodeContext, spec: NodeSpec, image: ResolvedImage, driver: NodeDriver): Promise<void> {
  const { db, run } = ctx;
  const row = db.node(spec.name)!;
  const node = driverNode(ctx.stateDir, row);
  const { token } = beginImageWrite(ctx, spec, image, row.serial, row.machine ? { machine: row.machine } : {});
  const endpoints = endpointsFor(driver, ctx.store, Boolean(ctx.tls), ctx.stateDir);
  const signedUrl = async (sha256: string) => {
    const signed = new URL((await ctx.store.client.tempUrl(image.id, `sha256:${sha256}`, ctx.signalTimeoutSeconds + SIGNED_URL_MARGIN_SECONDS)).url);
    // The signature covers the path, not the host: the machine fetches it where it reaches the store.
    return `${endpoints.store!.url}${signed.pathname}${signed.search}`;
  };
  const url = await signedUrl(image.disk.sha256);
  const map = await mapDownload(image, signedUrl);
  db.event(spec.name, "deploy-command", { machine: row.machine, image: image.digest, disk_bytes: image.disk.size, by: driver.name }, { run });
  await log.step(`${spec.name}: deploy ${image.name} through ${driver.name}${row.machine ? ` on ${row.machine}` : ""}`, () =>
    driver.provision(node, {
      image: { digest: image.digest, sha256: image.disk.sha256, size: image.disk.size, url, ...(map ? { map } : {}) },
      configDrive: configDrive(spec.name, token, endpoints, ctx.pollingIntervalSeconds, ctx.trust),
      services: ctx.services,
      expose: spec.expose,
      timeoutSeconds: ctx.signalTimeoutSeconds,
      note: (kind, detail) => db.event(spec.name, kind, detail, { run }),
    }),
  );
  db.event(spec.name, "image-written", { bytes: image.disk.size, by: driver.name }, { run });
}

/** Power the node on and note where its console starts; state booting. */
export async function powerOn(ctx: NodeContext, name: string): Promise<void> {
  const { db, run } = ctx;
  const row = db.node(name)!;
  const driver = driverFor(row.driver);
  if (driver.bareMetal) return powerOnByRamdisk(ctx, name);
  const node = driverNode(ctx.stateDir, row);
  const offset = consoleSize(driver.consoleLog(node));
  db.transition(name, "powering-on", { run, fields: { console_offset: offset } });
  await driver.setPower(node, "on");
  const now = Date.now();
  db.event(name, "power-on", {}, { run, at: now });
  // A node that booted and signalled before this line ran (a fast machine, a busy deployer) keeps the state its signal gave it.
  const fields = { powered_on_at: now, waiting_since: now };
  if (!db.transition(name, "booting", { run, fields, onlyFrom: ["powering-on"] })) db.update(name, fields);
}

/**
 * A run killed between powering the machine on and recording it left the node in powering-on with its machine
 * running: record the power-on now, so that its signal counts and its timeline has the boot. The machine came on
 * after the node entered powering-on, so that moment (and that run) is the best record there is.
 */
export function resumePoweredOn(ctx: NodeContext, name: string): void {
  const { db, run } = ctx;
  const entered = db.events({ node: name }).findLast((e) => e.kind === "transition" && e.to_state === "powering-on");
  const at = entered?.at ?? Date.now();
  db.event(name, "power-on", { resumed: true }, { run: entered?.run ?? run, at });
  db.transition(name, "booting", { run, fields: { powered_on_at: at, waiting_since: at }, detail: { resumed: true } });
}

/** Give a running node its metadata again at the next serial (changed, or a retry); state configuring. */
export function redeliver(ctx: NodeContext, spec: NodeSpec, why: string): void {
  const { db, run } = ctx;
  const row = db.node(spec.name)!;
  const serial = row.serial + 1;
  const md = metadataFor(ctx, spec, { name: row.image_name!, digest: row.image_digest! }, serial);
  const now = Date.now();
  db.transition(spec.name, "configuring", {
    run,
    fields: { serial, metadata: md.text, config_hash: md.hash, waiting_since: now, error: null },
    detail: { serial, why },
    at: now,
  });
  db.event(spec.name, "metadata-published", { serial, why }, { run, at: now });
}

/** How long to look for the ready line once the node has signalled. */
const READY_GRACE_MS = 60_000;

export type WaitResult = { ok: true } | { ok: false; error: string };

/**
 * Wait until the node's completion signal for its current serial arrives
 * (the metadata service records it and moves the node), noting the ready
 * line on the console on the way. Fails the node when the deadline passes
 * or its machine stops, with the console's tail in the error.
 */
export async function waitForSignal(ctx: NodeContext, name: string): Promise<WaitResult> {
  const { db, run } = ctx;
  const first = db.node(name)!;
  // A machine in the deploy ramdisk: its result first (it kexecs into the node, or the node fails there).
  if (driverFor(first.driver).bareMetal && inRamdisk(db, first)) {
    const r = await waitForRamdisk(ctx, name);
    if (!r.ok) return r;
  }
  const start = db.node(name)!;
  const driver = driverFor(start.driver);
  const node = driverNode(ctx.stateDir, start);
  const consoleFile = driver.consoleLog(node);
  let booted = db.events({ node: name, since: start.powered_on_at ?? Date.now() }).some((e) => e.kind === "booted");
  let graceUntil: number | undefined;
  const noteBoot = (console: ConsoleWatch, detail: Record<string, unknown> = {}) => {
    const report = console.ready();
    if (!report) return;
    booted = true;
    db.event(name, "booted", { ...bootedDetail(report), ...detail }, { run });
    if (!detail.afterSignal) db.transition(name, "configuring", { run, onlyFrom: ["booting"] });
    if (report.failedUnits.length) log.warn(`${name}: failed units at boot: ${report.failedUnits.join(", ")}`);
  };
  return watchNode<WaitResult>(db, {
    node: name,
    console: { file: consoleFile, from: start.console_offset ?? 0 },
    // A resumed wait keeps the deadline it had.
    deadline: (start.waiting_since ?? Date.now()) + ctx.signalTimeoutSeconds * 1000,
    // Without a console to read, only a change of the node (its signal), its power and its deadline matter.
    quiet: !consoleFile,
    tick: async ({ console, now, row, checkPower }) => {
      if (!row) return { ok: false, error: "the node was deleted meanwhile" };
      const signalled = row.state === "active" && row.signalled_serial === row.serial;
      if (!booted && row.powered_on_at !== null) noteBoot(console, signalled ? { afterSignal: true } : {});
      if (signalled) {
        // The agents often signal before the node prints its ready line (that report waits for
        // multi-user.target): give the timeline its boot phase, a little longer.
        graceUntil ??= now + READY_GRACE_MS;
        // A machine without a console log (bare metal may have none) never shows the line: nothing to wait for.
        return booted || row.powered_on_at === null || !consoleFile || now >= graceUntil ? { ok: true } : undefined;
      }
      if (row.state === "failed") return { ok: false, error: row.error ?? "failed" };
      if (checkPower && (await driver.powerState(node)) === "off") {
        const error = `its machine stopped before it signalled; last console lines:\n${consoleTail(consoleFile, 25, row.console_offset ?? 0)}`;
        // Not moved: it signalled meanwhile (and then stopped); the next round sees how it went.
        const moved = db.transition(name, "failed", { run, fields: { error }, detail: { why: "powered off" }, onlyFrom: ["booting", "configuring"] });
        return moved ? { ok: false, error } : undefined;
      }
      return undefined;
    },
    expired: () => {
      const row = db.node(name)!;
      if (graceUntil !== undefined) return { result: { ok: true } }; // signalled; only the ready line is late
      const collected = row.collected_serial === row.serial;
      const error =
        `no completion signal within ${ctx.signalTimeoutSeconds}s (${booted ? "booted" : "no ready line on its console"}, ` +
        `${collected ? "metadata collected" : "metadata never collected"}); last console lines:\n${consoleTail(consoleFile, 25, row.console_offset ?? 0)}`;
      const moved = db.transition(name, "failed", { run, fields: { error }, detail: { why: "timeout" }, onlyFrom: ["booting", "configuring"] });
      // Not moved: a signal came in at the last moment; the next tick sees it.
      return moved ? { result: { ok: false, error } } : { until: Date.now() };
    },
  });
}
