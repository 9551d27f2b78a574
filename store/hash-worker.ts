import { createHash, type Hash } from "node:crypto";

/**
 * The thread behind ParallelHash (store/parallel-hash.ts): hashes the blocks
 * it is sent, per job, and answers each job's `end` with its hex digests.
 */
declare const self: Worker;

type Message =
  | { kind: "start"; job: number; algorithms: string[] }
  | { kind: "data"; job: number; bytes: Uint8Array }
  | { kind: "end"; job: number };

const jobs = new Map<number, Hash[]>();

self.onmessage = (event: MessageEvent<Message>) => {
  const m = event.data;
  if (m.kind === "start") jobs.set(m.job, m.algorithms.map((a) => createHash(a)));
  else if (m.kind === "data") for (const h of jobs.get(m.job) ?? []) h.update(m.bytes);
  else {
    const hashes = jobs.get(m.job) ?? [];
    jobs.delete(m.job);
    self.postMessage({ job: m.job, digests: hashes.map((h) => h.digest("hex")) });
  }
};
