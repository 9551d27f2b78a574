import { join } from "node:path";
import { log, table } from "../lib/log.ts";
import { CompletionSignal, type UpgradeOutcome } from "../wire/signal.ts";
import { checkDrivers, resolveImages, stateDirOf } from "./deploy.ts";
import { driverFor } from "./drivers/index.ts";
import { NodesNotRunning, NoState, NothingToUpgrade, UpgradeImpossible, UnknownNode } from "./errors.ts";
import { refusedLeavesNothing } from "./refused.ts";
import { existsSync } from "node:fs";
import { ImageCache, resolveRoleImage, type ResolvedImage } from "./images.ts";
import { nodeTrustOf } from "./node-metadata.ts";
import { stackTls } from "./stack-tls.ts";
import { lockStack } from "./lock.ts";
import { driverNode, metadataFor, powerOn, provision, waitForSignal, type NodeContext } from "./node-ops.ts";
import { bootedDetail, consoleSize, watchNode } from "./node-watch.ts";
import { ensureMetadataService, storeFor } from "./services.ts";
import { loadStack, type NodeSpec, type RoleSpec, type Stack } from "./stack.ts";
import { pruneHistory } from "./history.ts";
import { STATE_DB, StateDb, type NodeRow, type NodeState } from "./state.ts";
import { buildTimeline, writeTimeline, type Timeline } from "./timeline.ts";

/**
 * `ooo upgrade STACK` (and `ooo takeover NODE --image REF`): move nodes to
 * the image their role now names, the way the original design had it — the
 * deployer only changes the image in each node's metadata; the node fetches
 * the new root into its inactive slot, boots it on trial, and marks it good
 * once configured (agents/takeover). The deployer watches: progress reports,
 * the new ready line, the completion signal that names the new root — or
 * the rollback, with its reason. A node that says nothing in time is reset,
 * which ends its trial boot and brings its old root back.
 *
 * Roles move in batches as Heat's rolling_updates: at most max_batch_size
 * nodes at once, never fewer than min_in_service of the role left serving,
 * highest index first, `pause` between batches; the first failed batch
 * stops the upgrade (its nodes roll back, the rest keep their image). A role
 * with policy `replace` gets fresh nodes from the new image instead (the
 * original's "simple version"; state is not kept).
 */
export interface UpgradeOptions {
  stateDir?: string;
  imageCache?: string;
  /** Only these nodes (takeover). */
  nodes?: string[];
  /** The image for those nodes, instead of their role's (takeover). */
  image?: string;
  /** Called on every change of a node's progress, for the CLI to print. */
  onProgress?: (progress: UpgradeProgress) => void;
  /** The stack, when the caller has it already (as deploy's). */
  stack?: Stack;
}

/** One line of a node's progress; bytes (of bytes_total) when the node reported how far its fetch is. */
export interface UpgradeProgress {
  text: string;
  bytes?: number;
  total?: number;
}

export type UpgradeResult = "upgraded" | "rolled-back" | "failed" | "replaced" | "skipped";

export interface NodeUpgrade {
  node: string;
  role: string;
  from?: string;
  to: string;
  result: UpgradeResult;
  reason?: string;
  bytesFetched?: number;
  imageBytes?: number;
  seconds: number;
  method?: string;
  /** kexec or reboot: how the node started the new root. */
  restart?: string;
  /** How the node checked the root it wrote (wire/signal.ts UpgradeOutcome.verified). */
  verified?: string;
  batch: number;
}

/** The node stayed on (or went back to) its old image: the outcomes that stop a rolling upgrade. */
export const notUpgraded = (n: Pick<NodeUpgrade, "result">) => n.result === "failed" || n.result === "rolled-back";

export interface UpgradeReport {
  stack: string;
  stateDir: string;
  run: number;
  nodes: NodeUpgrade[];
  stoppedAt?: { role: string; batch: number };
  timeline: Timeline;
  timelineFiles?: { json: string; html: string };
}

/**
 * Batches of one role, Heat's way: highest index first; as many at once as
 * max_batch_size allows while `count - batch ≥ min_in_service`.
 */
export function batchesFor(nodes: string[], count: number, rolling: RoleSpec["rollingUpdates"]): string[][] {
  const size = Math.min(rolling.maxBatchSize, count - rolling.minInService);
  if (size < 1 && nodes.length)
    throw new UpgradeImpossible(
      `min_in_service ${rolling.minInService} of ${count} node${count === 1 ? "" : "s"} leaves none to upgrade at a time`,
    );
  const out: string[][] = [];
  for (let i = 0; i < nodes.length; i += size) out.push(nodes.slice(i, i + size));
  return out;
}

const short = (d?: string | null) => (d ? d.replace(/^sha256:/, "").slice(0, 12) : "-");

export async function upgrade(stackFile: string, options: UpgradeOptions = {}): Promise<UpgradeReport> {
  const stack = options.stack ?? loadStack(stackFile);
  await checkDrivers(stack);
  const stateDir = stateDirOf(stack.file, options.stateDir);
  // Nothing deployed, nothing to upgrade: said before any service starts.
  if (!existsSync(join(stateDir, STATE_DB))) throw new NoState(stateDir);
  return refusedLeavesNothing(stateDir, (acting) => upgradeNodes(stack, stateDir, options, acting));
}

/** States in which a node runs its own root and agents (a failed one may have failed only its configuration). */
const UPGRADABLE: readonly NodeState[] = ["active", "configuring", "failed"];

async function upgradeNodes(stack: Stack, stateDir: string, options: UpgradeOptions, acting: () => void): Promise<UpgradeReport> {
  const db = StateDb.open(stateDir, { create: false });
  const unlock = lockStack(stateDir, options.image ? "takeover" : "upgrade");
  const run = db.startRun(options.image ? "takeover" : "upgrade");
  let result = "failed";
  try {
    await pruneHistory(db);
    if (options.nodes) for (const n of options.nodes) if (!db.node(n)) throw new UnknownNode(n, db.nodes().map((r) => r.name));
    if (!db.nodes().length) throw new NothingToUpgrade(`stack ${stack.name}`);
    // In place, a node's own agents take the new image: a node whose root is not running would only time out.
    const inPlace = new Set(stack.roles.filter((r) => r.rollingUpdates.policy === "rebuild-in-place").map((r) => r.name));
    const notRunning = db.nodes().filter((r) => inPlace.has(r.role) && (!options.nodes || options.nodes.includes(r.name)) && !UPGRADABLE.includes(r.state));
    if (notRunning.length) throw new NodesNotRunning(notRunning.map((r) => ({ name: r.name, state: r.state })));
    const tls = stackTls(stateDir);
    const store = await storeFor(stack, stateDir);
    const cache = new ImageCache(options.imageCache ?? join(stateDir, "images"));
    const policyOf = (role: string) => stack.roles.find((r) => r.name === role)!.rollingUpdates.policy;
    const images = options.image ? new Map<string, ResolvedImage>() : await log.step("resolve the roles' images", () =>
      resolveImages(stack, { store }, { requireDisk: (role) => policyOf(role) === "replace" }),
    );
    const services = [await ensureMetadataService(stateDir), store.service];
    const ctx: NodeContext = {
      db,
      run,
      stateDir,
      store,
      cache,
      services,
      signalTimeoutSeconds: stack.signalTimeoutSeconds,
      pollingIntervalSeconds: stack.pollingIntervalSeconds,
      trust: nodeTrustOf(stack, [tls?.caPem, store.ca]),
      tls,
    };

    const specs = new Map(stack.nodes.map((n) => [n.name, n]));
    const report: NodeUpgrade[] = [];
    let stoppedAt: UpgradeReport["stoppedAt"];
    roles: for (const role of stack.roles) {
      const rows = db
        .nodes()
        .filter((r) => r.role === role.name && (!options.nodes || options.nodes.includes(r.name)))
        .sort((a, b) => b.idx - a.idx);
      if (!rows.length) continue;
      const image = options.image
        ? await resolveRoleImage(store.client, role.name, options.image, { requireDisk: role.rollingUpdates.policy === "replace", trustedKeys: stack.trustedKeys })
        : images.get(role.name);
      if (!image) continue;
      if (image.signer) db.noteSigner(image.digest, { name: image.signer.name, id: image.signer.key.id });
      const todo = rows.filter((r) => r.image_digest !== image.digest);
      for (const r of rows.filter((r) => r.image_digest === image.digest))
        report.push({ node: r.name, role: role.name, from: r.image_digest ?? undefined, to: image.digest, result: "skipped", reason: "already runs it", seconds: 0, batch: 0 });
      if (!todo.length) continue;
      const count = db.nodes().filter((r) => r.role === role.name).length;
      const batches = batchesFor(todo.map((r) => r.name), count, role.rollingUpdates);
      log.info(
        `${role.name}: ${todo.length} node${todo.length === 1 ? "" : "s"} to ${image.name} ${short(image.digest)} (${role.rollingUpdates.policy}), ` +
          `${batches.length} batch${batches.length === 1 ? "" : "es"} of at most ${batches[0]!.length}, ${role.rollingUpdates.minInService} kept in service`,
      );
      for (const [i, batch] of batches.entries()) {
        if (i > 0 && role.rollingUpdates.pauseSeconds > 0) {
          log.info(`${role.name}: pause ${role.rollingUpdates.pauseSeconds}s before the next batch`);
          await Bun.sleep(role.rollingUpdates.pauseSeconds * 1000);
        }
        acting();
        const outcomes = await log.step(`${role.name}: batch ${i + 1}/${batches.length}: ${batch.join(", ")}`, () =>
          Promise.all(
            batch.map((name) => {
              const spec = specs.get(name) ?? specOfRow(db.node(name)!);
              return role.rollingUpdates.policy === "replace" ? replaceNode(ctx, spec, image, i + 1) : upgradeNode(ctx, spec, image, i + 1, options.onProgress);
            }),
          ),
        );
        report.push(...outcomes);
        if (outcomes.some(notUpgraded)) {
          stoppedAt = { role: role.name, batch: i + 1 };
          log.error(`${role.name}: batch ${i + 1} did not upgrade; stopping (the other nodes keep their image)`);
          break roles;
        }
      }
    }
    if (!report.length) throw new NothingToUpgrade(options.nodes ? `nodes ${options.nodes.join(", ")}` : `stack ${stack.name}`);
    const bad = report.filter(notUpgraded);
    result = bad.length ? `${bad.length} not upgraded` : "ok";
    db.endRun(run, result);
    const timeline = buildTimeline(db, run, stack.name);
    const changed = report.some((r) => r.result !== "skipped");
    const timelineFiles = changed ? await writeTimeline(timeline, join(stateDir, "timelines")) : undefined;
    return { stack: stack.name, stateDir, run, nodes: report, stoppedAt, timeline, timelineFiles };
  } finally {
    if (!db.run(run)?.ended_at) db.endRun(run, result);
    unlock();
    db.close();
  }
}

/** A node the stack file no longer lists (takeover of a leftover): its spec from its record. */
function specOfRow(row: NodeRow): NodeSpec {
  return { name: row.name, role: row.role, index: row.idx, pool: "", driver: row.driver, size: row.size, metadata: {}, expose: [] };
}

/** `replace`: a fresh node from the new image; the old one (and its state) goes. */
async function replaceNode(ctx: NodeContext, spec: NodeSpec, image: ResolvedImage, batch: number): Promise<NodeUpgrade> {
  const t0 = Date.now();
  const from = ctx.db.node(spec.name)?.image_digest ?? undefined;
  ctx.db.event(spec.name, "upgrade-start", { from, to: image.digest, policy: "replace", batch }, { run: ctx.run });
  try {
    const row = ctx.db.node(spec.name)!;
    await driverFor(row.driver).destroy(driverNode(ctx.stateDir, row));
    await provision(ctx, spec, image);
    await powerOn(ctx, spec.name);
    const r = await waitForSignal(ctx, spec.name);
    if (!r.ok) throw new Error(r.error);
    ctx.db.event(spec.name, "upgrade-done", { to: image.digest, policy: "replace" }, { run: ctx.run });
    return { node: spec.name, role: spec.role, from, to: image.digest, result: "replaced", seconds: (Date.now() - t0) / 1000, batch };
  } catch (e) {
    const reason = (e as Error).message;
    ctx.db.event(spec.name, "upgrade-failed", { to: image.digest, reason }, { run: ctx.run });
    return { node: spec.name, role: spec.role, from, to: image.digest, result: "failed", reason, seconds: (Date.now() - t0) / 1000, batch };
  }
}

/** What the node's latest signal for `serial` says of the upgrade, if it says something final. */
export function judgeSignal(
  signal: CompletionSignal,
  from: string | undefined,
  to: string,
): { final: true; result: "upgraded" | "rolled-back" | "failed"; outcome?: UpgradeOutcome; reason?: string } | { final: false; note: string } {
  const state = signal.data.node_state;
  const up = signal.data.upgrade;
  if (signal.status === "SUCCESS" && state?.digest === to && state.good) return { final: true, result: "upgraded", outcome: up };
  if (up?.result === "rolled-back" && up.to === to) return { final: true, result: "rolled-back", outcome: up, reason: up.reason };
  if (up?.result === "failed" && up.to === to) {
    // Failed on the new root (its trial): it is on its way back to the old one.
    if (state?.digest === to) return { final: false, note: `the new root failed (${up.reason ?? "?"}); rolling back` };
    return { final: true, result: "failed", outcome: up, reason: up.reason };
  }
  if (signal.status === "FAILURE" && state?.digest === from)
    return { final: true, result: "failed", reason: `${signal.data.failed_script ?? "configuration"} failed on the old root: ${signal.reason}` };
  return { final: false, note: signal.reason };
}

/** rebuild-in-place: tell the node its new image, then watch it take it over. */
async function upgradeNode(ctx: NodeContext, spec: NodeSpec, image: ResolvedImage, batch: number, onProgress?: (progress: UpgradeProgress) => void): Promise<NodeUpgrade> {
  const { db, run } = ctx;
  const t0 = Date.now();
  const row = db.node(spec.name)!;
  const from = row.image_digest ?? undefined;
  // Every `ooo upgrade` to an image is a new attempt: a node that rolled back from it tries again.
  const attempt = db.events({ node: spec.name }).filter((e) => e.kind === "upgrade-start" && e.detail?.to === image.digest).length;
  const serial = row.serial + 1;
  const md = metadataFor(ctx, spec, { name: image.name, digest: image.digest, attempt }, serial);
  const driver = driverFor(row.driver);
  const node = driverNode(ctx.stateDir, row);
  const consoleFile = driver.consoleLog(node);
  const base = { node: spec.name, role: spec.role, from, to: image.digest, batch };
  db.transition(spec.name, "configuring", {
    run,
    fields: { serial, metadata: md.text, config_hash: md.hash, waiting_since: t0, error: null },
    detail: { serial, why: `upgrade to ${image.digest}` },
    at: t0,
  });
  db.event(spec.name, "upgrade-start", { from, to: image.digest, attempt, serial, batch }, { run, at: t0 });
  db.event(spec.name, "metadata-published", { serial, why: "upgrade" }, { run, at: t0 });

  const timeout = ctx.signalTimeoutSeconds * 1000;
  let reset = false;
  let lastNote = "";
  let seenProgress = 0;
  let booted = false;
  return watchNode<NodeUpgrade>(db, {
    node: spec.name,
    // From here on: the ready line of the node's next boot (the new root's, or the old one's after a rollback).
    console: { file: consoleFile, from: consoleSize(consoleFile) },
    deadline: t0 + timeout,
    tick: ({ console }) => {
      // Progress reports (from the node's takeover) and the ready line of its next boot.
      const progress = db.events({ node: spec.name, since: t0 }).filter((e) => e.kind === "progress");
      for (const p of progress.slice(seenProgress)) onProgress?.(progressLine(spec.name, p.detail ?? {}, p.at - t0));
      seenProgress = progress.length;
      const report = booted ? undefined : console.ready();
      if (report) {
        booted = true;
        db.event(spec.name, "booted", { ...bootedDetail(report), upgrade: true }, { run });
        onProgress?.({ text: `${spec.name}: booted again (${((Date.now() - t0) / 1000).toFixed(0)}s)` });
      }
      const sig = db.signal(spec.name, serial);
      const parsed = sig ? CompletionSignal.safeParse(JSON.parse(sig.body)) : undefined;
      if (!parsed?.success) return undefined;
      const verdict = judgeSignal(parsed.data, from, image.digest);
      if (!verdict.final) {
        if (verdict.note !== lastNote) {
          lastNote = verdict.note;
          onProgress?.({ text: `${spec.name}: ${verdict.note.split("\n")[0]}` });
        }
        return undefined;
      }
      const seconds = (Date.now() - t0) / 1000;
      const out: NodeUpgrade = {
        ...base,
        result: verdict.result,
        reason: verdict.reason,
        bytesFetched: verdict.outcome?.bytes_fetched,
        imageBytes: verdict.outcome?.image_bytes,
        method: verdict.outcome?.method,
        restart: verdict.outcome?.restart,
        verified: verdict.outcome?.verified,
        seconds,
      };
      if (verdict.result === "upgraded") {
        db.update(spec.name, { image_digest: image.digest, image_name: image.name, image_ref: image.ref });
        db.event(spec.name, "upgrade-done", { to: image.digest, bytes_fetched: out.bytesFetched, method: out.method, restart: out.restart, verified: out.verified }, { run });
      } else db.event(spec.name, verdict.result === "rolled-back" ? "upgrade-rolled-back" : "upgrade-failed", { to: image.digest, reason: out.reason }, { run });
      onProgress?.({ text: `${spec.name}: ${verdict.result}${out.reason ? `: ${out.reason.split("\n")[0]}` : ""} (${seconds.toFixed(0)}s)` });
      return out;
    },
    expired: async (now) => {
      if (reset) {
        const reason = `no signal within ${ctx.signalTimeoutSeconds}s, and none after a reset either`;
        db.event(spec.name, "upgrade-failed", { to: image.digest, reason }, { run });
        db.transition(spec.name, "failed", { run, fields: { error: reason }, detail: { why: "upgrade timeout" } });
        return { result: { ...base, result: "failed", reason, seconds: (Date.now() - t0) / 1000 } };
      }
      // A trial boot that hangs never marks itself good: the reset ends it, and the old root comes back.
      reset = true;
      onProgress?.({ text: `${spec.name}: no signal within ${ctx.signalTimeoutSeconds}s; resetting it (a hung trial boot falls back to the old root)` });
      db.event(spec.name, "upgrade-reset", { why: `no signal within ${ctx.signalTimeoutSeconds}s` }, { run });
      await driver.setPower(node, "reset").catch((e: Error) => log.warn(`${spec.name}: reset failed: ${e.message}`));
      return { until: now + timeout };
    },
  });
}

/** A node's progress report as the operator reads it, with the bytes for the progress stream. */
export function progressLine(node: string, d: Record<string, unknown>, ms: number): UpgradeProgress {
  const done = typeof d.bytes_done === "number" ? d.bytes_done : undefined;
  const total = typeof d.bytes_total === "number" ? d.bytes_total : undefined;
  const mib = done === undefined ? "" : ` ${(done / 2 ** 20).toFixed(1)}/${((total ?? 0) / 2 ** 20).toFixed(0)} MiB`;
  const text = `${node}: ${d.phase}${mib} (${(ms / 1000).toFixed(0)}s)${d.message ? ` — ${d.message}` : ""}`;
  return done === undefined ? { text } : { text, bytes: done, total };
}

export function upgradeTable(r: UpgradeReport): string {
  return table(
    ["node", "old digest", "new digest", "MiB fetched", "seconds", "result"],
    r.nodes.map((n) => [
      n.node,
      short(n.from),
      short(n.to),
      n.bytesFetched === undefined ? "-" : (n.bytesFetched / 2 ** 20).toFixed(2),
      Number(n.seconds.toFixed(1)),
      n.result + (n.reason ? `: ${n.reason.split("\n")[0]}` : "") + (n.method && n.result === "upgraded" ? ` (${[n.method, n.restart, n.verified && `verified by ${n.verified}`].filter(Boolean).join(", ")})` : ""),
    ]),
  );
}
