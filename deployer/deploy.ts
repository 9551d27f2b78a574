import { readFileSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import { parseDocument } from "yaml";
import { MissingRequirement, type Problem } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import type { PowerState } from "./drivers/driver.ts";
import { driverFor } from "./drivers/index.ts";
import { RoleImagesUnusable, RoleImageUnusable } from "./errors.ts";
import { ImageCache, resolveRoleImage, type ResolvedImage } from "./images.ts";
import { lockStack } from "./lock.ts";
import { checkHostCapacity } from "./capacity.ts";
import { refusedLeavesNothing } from "./refused.ts";
import { folderToWrite } from "../lib/user-paths.ts";
import { driverNode, metadataFor, powerOn, provision, redeliver, resumePoweredOn, waitForSignal, type NodeContext } from "./node-ops.ts";
import { nodeTrustOf } from "./node-metadata.ts";
import { nodesToRemove, planNode, type NodeAction, type PlannedNode } from "./plan.ts";
import { ensureMetadataService, stopMetadataService, storeFor } from "./services.ts";
import { prepareStackTls } from "./stack-tls.ts";
import { loadStack, type Stack } from "./stack.ts";
import { pruneHistory } from "./history.ts";
import { StateDb } from "./state.ts";
import { buildTimeline, writeTimeline, type Timeline } from "./timeline.ts";
import { prepareBareMetal } from "./bare-metal/prepare.ts";
import { prepareIronic } from "./ironic/prepare.ts";
import { Machines } from "./bare-metal/machines.ts";
import { releaseMachine } from "./bare-metal/ramdisk-ops.ts";
import { noteProvisioning } from "./provisioning/settings.ts";

/**
 * `ooo deploy STACK`: converge. Everything that can be checked is checked
 * before any machine is touched (the stack file, the host's requirements,
 * every role's image in the store, disk sizes); then nodes the stack lost
 * are removed, and every other node gets what it needs — a new machine, a
 * retry, its metadata again, or nothing — concurrently, each waiting for
 * its own completion signal. A node that fails does not stop the others.
 * Running it again changes nothing; killed, it resumes.
 */
export interface DeployOptions {
  /** The state folder (default: .ooo/<stack name>/ beside the stack file). */
  stateDir?: string;
  /** Where downloaded golden disks are kept (default: <state folder>/images). */
  imageCache?: string;
  /** The command, for the run record ("deploy", "scale"). */
  command?: string;
  /** The stack, when the caller has it already (scale: the file's new text, not yet written). */
  stack?: Stack;
  /** Run once everything is checked, before the first change (scale writes the stack file here). */
  beforeChanges?: () => Promise<void>;
}

/** How to put an image into a stack's embedded store, for the hint of a refused deploy. */
export const publishHint = (stack: Stack) =>
  `The stack's images come from its embedded store: \`eval "$(ooo store-env ${stack.file})"\` sets the store for \`ooo publish OUTPUT --tag TAG\` and \`ooo store list\`.`;

export interface NodeOutcome {
  node: string;
  role: string;
  action: NodeAction["kind"];
  why: string;
  result: "active" | "failed" | "unchanged";
  error?: string;
  drift?: { running: string; wanted: string };
}

export interface DeployReport {
  stack: Stack;
  stateDir: string;
  run: number;
  outcomes: NodeOutcome[];
  removed: string[];
  changed: boolean;
  timeline: Timeline;
  /** Written only when the run changed something. */
  timelineFiles?: { json: string; html: string };
}

/** The stack's state folder: --state-dir, else .ooo/<name>/ beside the file (the name read leniently, so a broken file still finds it). */
export function stateDirOf(stackFile: string, override?: string): string {
  if (override) return resolve(override);
  const file = resolve(stackFile);
  let name = basename(file, extname(file));
  try {
    const doc = parseDocument(readFileSync(file, "utf8")).toJS() as { name?: unknown } | null;
    if (typeof doc?.name === "string" && doc.name) name = doc.name;
  } catch {}
  return join(dirname(file), ".ooo", name);
}

export async function checkDrivers(stack: Stack) {
  const problems: Problem[] = [];
  const used = new Set(stack.nodes.map((n) => n.pool));
  for (const pool of used) {
    const entry = stack.inventory[pool]!;
    for (const p of await driverFor(entry.driver).check(entry as never)) problems.push({ ...p, message: `inventory ${pool}: ${p.message}` });
  }
  if (problems.length) throw new MissingRequirement(problems.map((p) => p.message).join("; "), "install what is named, or run `sh tools/ensure.sh`");
}

export async function resolveImages(stack: Stack, ctx: Pick<NodeContext, "store">, options: { requireDisk?: (role: string) => boolean } = {}): Promise<Map<string, ResolvedImage>> {
  const images = new Map<string, ResolvedImage>();
  const problems: RoleImageUnusable[] = [];
  await Promise.all(
    stack.roles
      .filter((r) => r.count > 0)
      .map(async (role) => {
        try {
          images.set(
            role.name,
            await resolveRoleImage(ctx.store.client, role.name, role.image, { requireDisk: options.requireDisk?.(role.name) ?? true, trustedKeys: stack.trustedKeys }),
          );
        } catch (e) {
          if (e instanceof RoleImageUnusable) problems.push(e);
          else throw e;
        }
      }),
  );
  for (const node of stack.nodes) {
    const image = images.get(node.role);
    const disk = image?.disk.size;
    if (image && disk && node.size.diskBytes !== undefined && node.size.diskBytes < disk)
      problems.push(
        new RoleImageUnusable(node.role, image.ref, `node ${node.name}'s disk (${(node.size.diskBytes / 2 ** 30).toFixed(1)} GiB) is smaller than the image's (${(disk / 2 ** 30).toFixed(1)} GiB)`),
      );
  }
  if (problems.length) throw new RoleImagesUnusable(problems.sort((a, b) => a.role.localeCompare(b.role)));
  return images;
}

export async function deploy(stackFile: string, options: DeployOptions = {}): Promise<DeployReport> {
  const stack = options.stack ?? loadStack(stackFile);
  for (const w of stack.warnings) log.warn(`${w.file}:${w.line} ${w.path}: ${w.message}`);
  await checkDrivers(stack);
  checkHostCapacity(stack);
  const stateDir = folderToWrite(stateDirOf(stack.file, options.stateDir), options.stateDir ? "--state-dir" : "the state folder");
  if (options.imageCache) folderToWrite(options.imageCache, "--image-cache");
  return refusedLeavesNothing(stateDir, (acting) => converge(stack, stateDir, options, acting));
}

async function converge(stack: Stack, stateDir: string, options: DeployOptions, acting: () => void): Promise<DeployReport> {
  const db = StateDb.open(stateDir);
  const unlock = lockStack(stateDir, options.command ?? "deploy");
  const run = db.startRun(options.command ?? "deploy");
  let result = "failed";
  try {
    await pruneHistory(db);
    db.setInfo("stack.name", stack.name);
    db.setInfo("stack.file", stack.file);
    noteProvisioning(stateDir, stack.provisioning);
    const tls = await prepareStackTls(stack, stateDir, db);
    const store = await storeFor(stack, stateDir);
    const ctxBase = { db, run, stateDir, store, cache: new ImageCache(options.imageCache ?? join(stateDir, "images")) };
    const images = await log.step("resolve the roles' images", () => resolveImages(stack, ctxBase)).catch((e: unknown) => {
      if (e instanceof RoleImagesUnusable && stack.store.kind === "embedded") e.hint = publishHint(stack);
      throw e;
    });
    // Bare metal and Ironic: machines for the new nodes, every BMC or Ironic node at once, the provisioning network; nodes whose machine is unusable fail untouched.
    const unusable = await prepareBareMetal({ stack, stateDir, db, store, cache: ctxBase.cache });
    for (const [node, why] of await prepareIronic({ stack, stateDir, db, store, cache: ctxBase.cache })) unusable.set(node, why);
    await options.beforeChanges?.();
    acting();
    for (const [role, image] of images) {
      log.info(`${role}: ${image.ref} → ${image.name} ${image.digest.slice(0, 19)}… (image ${image.id})${image.signer ? `, signed by ${image.signer.name} (key ID ${image.signer.key.id})` : ""}`);
      if (image.signer) db.noteSigner(image.digest, { name: image.signer.name, id: image.signer.key.id });
    }

    // Deletions that a killed command left half-done are finished first.
    for (const row of db.nodes().filter((r) => r.state === "deleting")) await removeNode(db, stateDir, row.name, run);

    const services = (await needServices(db, stack)) ? [await ensureMetadataService(stateDir), store.service] : [store.service];
    const ctx: NodeContext = {
      ...ctxBase,
      services,
      signalTimeoutSeconds: stack.signalTimeoutSeconds,
      pollingIntervalSeconds: stack.pollingIntervalSeconds,
      trust: nodeTrustOf(stack, [tls?.caPem, store.ca]),
      tls,
    };

    const plan: PlannedNode[] = [];
    for (const spec of stack.nodes) {
      const row = db.node(spec.name);
      const image = images.get(spec.role)!;
      // A machine whose BMC does not answer is taken to be as it was left (on): the plan then does not power it.
      const power: PowerState = !row ? "off" : unusable.has(spec.name) ? "on" : await driverFor(row.driver).powerState(driverNode(stateDir, row));
      const hash = metadataFor(ctx, spec, { name: row?.image_name ?? image.name, digest: row?.image_digest ?? image.digest }, 0).hash;
      plan.push(planNode(spec, { row, power, configHash: hash, wantedDigest: image.digest, signal: row ? db.signal(spec.name, row.serial) : undefined }));
    }
    const remove = nodesToRemove(stack, db.nodes());
    const todo = plan.filter((p) => p.action.kind !== "none");
    for (const p of plan) {
      const row = db.node(p.spec.name);
      if (row && p.action.kind !== "create" && p.action.kind !== "rebuild" && JSON.stringify(row.size) !== JSON.stringify(p.spec.size))
        log.warn(`${p.spec.name}'s size changed (${JSON.stringify(row.size)} → ${JSON.stringify(p.spec.size)}): it takes effect when the node is rebuilt`);
    }
    for (const p of plan.filter((p) => p.drift))
      log.warn(`${p.spec.name} runs ${p.drift!.running.slice(0, 19)}…; role ${p.spec.role} now names ${p.drift!.wanted.slice(0, 19)}…: \`ooo upgrade\` moves it (deploy does not re-image running nodes)`);
    if (!todo.length && !remove.length) log.info(`nothing to do: ${plan.length} node${plan.length === 1 ? "" : "s"} up to date`);
    for (const p of todo) log.info(`${p.spec.name}: ${p.action.kind} (${p.action.why})`);

    for (const row of remove) await log.step(`remove ${row.name} (the stack no longer has it)`, () => removeNode(db, stateDir, row.name, run));

    const outcomes = await Promise.all(plan.map((p) => convergeNode(ctx, p, images.get(p.spec.role)!, stack.inventory[p.spec.pool] ?? {}, unusable.get(p.spec.name))));
    // Scaled to nothing: nobody polls the metadata service any more — unless a machine waits in the
    // ramdisk (standby): it polls the service for its next command, and a fast track must find it up.
    const standby = new Machines(db).all().filter((m) => m.state === "ramdisk");
    if (!db.nodes().length && !standby.length && (await stopMetadataService(stateDir))) log.info("no node left: the metadata service stopped");
    const failed = outcomes.filter((o) => o.result === "failed");
    result = failed.length ? `${failed.length} failed` : "ok";
    db.endRun(run, result);
    const changed = todo.length + remove.length > 0;
    const timeline = buildTimeline(db, run, stack.name);
    // A run that changed nothing keeps the last chart as latest.html.
    const timelineFiles = changed ? await writeTimeline(timeline, join(stateDir, "timelines")) : undefined;
    return { stack, stateDir, run, outcomes, removed: remove.map((r) => r.name), changed, timeline, timelineFiles };
  } finally {
    if (!db.run(run)?.ended_at) db.endRun(run, result);
    unlock();
    db.close();
  }
}

/** The metadata service runs while the stack has (or is about to have) nodes. */
async function needServices(db: StateDb, stack: Stack) {
  return stack.nodes.length > 0 || db.nodes().length > 0;
}

async function convergeNode(ctx: NodeContext, p: PlannedNode, image: ResolvedImage, pool: Record<string, unknown>, unusable?: string): Promise<NodeOutcome> {
  const { db, run } = ctx;
  const base = { node: p.spec.name, role: p.spec.role, action: p.action.kind, why: p.action.why, drift: p.drift };
  if (p.action.kind === "none") return { ...base, result: "unchanged" };
  try {
    if (unusable && ["create", "rebuild", "power-on"].includes(p.action.kind)) {
      if (!db.node(p.spec.name)) db.createNode({ ...p.spec, idx: p.spec.index, poolConfig: pool, machine: undefined }, run);
      throw new Error(unusable);
    }
    switch (p.action.kind) {
      case "create":
        db.createNode({ ...p.spec, idx: p.spec.index, poolConfig: pool }, run);
        await provision(ctx, p.spec, image);
        await powerOn(ctx, p.spec.name);
        break;
      case "rebuild":
        db.update(p.spec.name, { pool_config: pool, ...(p.spec.machine ? { machine: p.spec.machine } : {}) });
        await provision(ctx, p.spec, image);
        await powerOn(ctx, p.spec.name);
        break;
      case "power-on":
        await powerOn(ctx, p.spec.name);
        break;
      case "redeliver":
        redeliver(ctx, p.spec, p.action.why);
        break;
      case "wait":
        if (db.node(p.spec.name)!.state === "powering-on") resumePoweredOn(ctx, p.spec.name);
        break;
    }
  } catch (e) {
    const error = (e as Error).message;
    if (db.node(p.spec.name)) db.transition(p.spec.name, "failed", { run, fields: { error }, detail: { why: "deploy step failed" } });
    log.error(`${p.spec.name}: ${error}`);
    return { ...base, result: "failed", error };
  }
  const done = await log.step(`${p.spec.name}: wait for its completion signal`, async () => {
    const r = await waitForSignal(ctx, p.spec.name);
    if (!r.ok) throw Object.assign(new Error(r.error.split("\n")[0]), { full: r.error });
    return r;
  }).catch((e: Error & { full?: string }) => ({ ok: false as const, error: e.full ?? e.message }));
  return done.ok ? { ...base, result: "active" } : { ...base, result: "failed", error: done.error };
}

/** Power off and remove one node: driver first, then the record. */
export async function removeNode(db: StateDb, stateDir: string, name: string, run?: number) {
  const row = db.node(name);
  if (!row) return;
  if (row.state !== "deleting") db.transition(name, "deleting", { run });
  const driver = driverFor(row.driver);
  // Bare metal: the machine's disks erased by the ramdisk, the machine back to standby or off.
  if (driver.bareMetal) await releaseMachine(db, row, run);
  await driver.destroy(driverNode(stateDir, row));
  db.deleteNode(name, run);
}

