import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { BeneathFailed } from "../../lib/beneath.ts";
import { chunkOffsets, entryOffsets, type ChunkIndex } from "../../wire/chunk-index.ts";
import { UnsafePath } from "../errors.ts";
import { EntryWriter } from "./write-entry.ts";

/**
 * Install a new root as a patch of a copy of the running one. The store
 * lists the tar entries of both images' canonical streams with a sha256 of
 * each (wire/chunk-index.ts); an entry whose path and sha256 are the same in
 * both is the same file, down to its mode, owner, mtime and xattrs. So the
 * node copies its running root block for block into the inactive slot (a
 * device-to-device copy the CPU hardly touches, where rewriting 400 MiB of
 * files through tar under emulation took half a minute), then removes what
 * the new image lacks and extracts from the new stream only the entries that
 * differ: for a one-package upgrade, a few hundred files.
 *
 * Every extracted byte is checked against its entry's sha256, and its tar
 * header must name the entry's path; nothing is written through a symlink
 * of the copy (write-entry.ts). The entries are the store's word only: the
 * root the patch assembles is checked against the digest the node's
 * metadata names before it is armed (patch-verify.ts).
 */
export interface PatchEntry {
  path: string;
  offset: number;
  length: number;
  sha256: string;
  hardlinkTo?: string;
}

export interface PatchPlan {
  /** Entries of the new stream to extract, in stream order. */
  extract: PatchEntry[];
  /** Paths of the running root the new one lacks, outermost only. */
  remove: string[];
  /** The chunks of the new stream that hold the bytes to extract. */
  chunks: { id: string; offset: number; size: number }[];
  /** Entries the new root keeps from the running one. */
  kept: number;
}

/** `./a/b/` → `./a/`; the root has no parent. */
function parentOf(path: string): string | undefined {
  const trimmed = path.endsWith("/") ? path.slice(0, -1) : path;
  const cut = trimmed.lastIndexOf("/");
  return cut <= 0 || trimmed === "." ? undefined : `${trimmed.slice(0, cut)}/`;
}

/** Paths come from the store: each must stay inside the root it is applied to. */
function checkPath(path: string) {
  if (path === "./") return;
  const parts = path.replace(/\/$/, "").split("/");
  if (parts[0] !== "." || parts.slice(1).some((p) => p === "" || p === "." || p === ".."))
    throw new UnsafePath(`the image lists a path that is not plainly inside its root: ${JSON.stringify(path)}`);
}

export function planPatch(wanted: ChunkIndex, current: ChunkIndex): PatchPlan {
  if (!wanted.entries || !current.entries) throw new Error("the store lists no tar entries for one of the two images");
  const next = entryOffsets(wanted);
  const old = new Map(entryOffsets(current).map((e) => [e.path, e]));
  const inNext = new Set(next.map((e) => e.path));
  const pick = new Set<number>();
  const byPath = new Map<string, number>();
  const linksTo = new Map<string, number[]>();
  next.forEach((e, i) => {
    checkPath(e.path);
    byPath.set(e.path, i);
    if (e.hardlinkTo !== undefined) linksTo.set(e.hardlinkTo, [...(linksTo.get(e.hardlinkTo) ?? []), i]);
    if (old.get(e.path)?.sha256 !== e.sha256) pick.add(i);
  });
  const removed = [...old.keys()].filter((p) => !inNext.has(p));
  removed.forEach(checkPath);
  // A file rewritten gets a new inode: every hard link to it is made again.
  for (const i of [...pick]) for (const link of linksTo.get(next[i]!.path) ?? []) pick.add(link);
  // Adding or removing an entry changes its directory's mtime: set it again.
  for (const path of [...[...pick].map((i) => next[i]!.path), ...removed]) {
    const parent = parentOf(path);
    const at = parent === undefined ? undefined : byPath.get(parent);
    if (at !== undefined) pick.add(at);
  }
  const extract = [...pick].sort((a, b) => a - b).map((i) => next[i]!);
  const removedSet = new Set(removed);
  const remove = removed.filter((p) => {
    const parent = parentOf(p);
    return parent === undefined || !removedSet.has(parent);
  });

  const chunks = chunkOffsets(wanted);
  const needed: PatchPlan["chunks"] = [];
  let c = 0;
  let last = -1;
  for (const e of extract) {
    while (c < chunks.length && chunks[c]!.offset + chunks[c]!.size <= e.offset) c++;
    for (let k = Math.max(c, last + 1); k < chunks.length && chunks[k]!.offset < e.offset + e.length; k++) {
      needed.push(chunks[k]!);
      last = k;
    }
  }
  return { extract, remove, chunks: needed, kept: next.length - extract.length };
}

/** The bytes of one entry of the new stream, from the fetched chunks of the plan. */
export function entryReader(plan: PatchPlan, fetched: Map<string, Uint8Array>): (e: PatchEntry) => Buffer {
  const read = reader(plan, fetched);
  return (e) => read(e.offset, e.length);
}

/** Bytes of the new stream, from the fetched chunks of the plan. */
function reader(plan: PatchPlan, fetched: Map<string, Uint8Array>) {
  return (offset: number, length: number): Buffer => {
    const out = Buffer.allocUnsafe(length);
    let lo = 0;
    let hi = plan.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (plan.chunks[mid]!.offset <= offset) lo = mid;
      else hi = mid - 1;
    }
    let done = 0;
    for (let k = lo; done < length; k++) {
      const c = plan.chunks[k];
      const data = c && fetched.get(c.id);
      if (!c || !data) throw new Error(`internal: no chunk holds stream offset ${offset + done}`);
      const from = offset + done - c.offset;
      const n = Math.min(c.size - from, length - done);
      out.set(data.subarray(from, from + n), done);
      done += n;
    }
    return out;
  };
}

/** Remove `path` from the copied root, never through a symlink of it: an absolute one would lead out of the root. */
function removeInside(writer: EntryWriter, path: string) {
  let removed;
  try {
    removed = writer.locate(path);
  } catch (e) {
    if (e instanceof BeneathFailed && e.errno === 2 /* ENOENT */) return; // already gone
    throw e;
  }
  try {
    // Through the directory's fd: nothing on the way is resolved again.
    rmSync(removed.dir.procPath(removed.name), { recursive: true, force: true });
  } finally {
    removed.dir.close();
  }
}

/**
 * Patch `root` (a copy of the running root) into the new one: remove, then
 * extract the plan's entries from the fetched chunks, each checked against
 * its sha256. Returns the bytes extracted.
 */
export async function applyPatch(options: { plan: PatchPlan; fetched: Map<string, Uint8Array>; root: string }): Promise<number> {
  const { plan, root } = options;
  const writer = new EntryWriter(root);
  try {
    for (const path of plan.remove) removeInside(writer, path);
    const read = entryReader(plan, options.fetched);
    // An entry replaces what the copy has at its path. A directory that
    // becomes a file (or the reverse) changes its path's trailing "/", so the
    // old one is in plan.remove and already gone.
    let bytes = 0;
    for (const e of plan.extract) {
      const data = read(e);
      const actual = createHash("sha256").update(data).digest("hex");
      if (actual !== e.sha256) throw new Error(`${e.path}: its bytes have sha256 ${actual}, the image lists ${e.sha256}`);
      writer.write(data, e);
      bytes += data.length;
    }
    writer.finish();
    return bytes;
  } finally {
    writer.close();
  }
}
