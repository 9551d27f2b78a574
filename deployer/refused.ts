import { rmSync } from "node:fs";
import { log } from "../lib/log.ts";
import { firstMissing } from "../lib/user-paths.ts";
import { undoOnInterrupt } from "../lib/interrupt.ts";
import { daemonPid } from "./daemons.ts";
import { embeddedStoreFiles, metadataDaemon, stopEmbeddedStore, stopMetadataService } from "./services.ts";
import { embeddedIronicFiles, stopEmbeddedIronic } from "./ironic/embedded.ts";

/**
 * A deploy or upgrade checks what it can only check with the stack's
 * services up (the roles' images are in the embedded store, its token is
 * read-only) after starting them. When it is then refused — before it
 * touched a single node — it leaves the host as it found it: the daemons it
 * started for the check are stopped again, a state folder it made (and the
 * .ooo/ above it) is removed, and it says so; so does Ctrl-C in that time. Daemons that ran before, and
 * a state folder that existed, are left alone. `fn` calls `acting()` just
 * before its first change to a node; from then on nothing is undone.
 */
export async function refusedLeavesNothing<T>(stateDir: string, fn: (acting: () => void) => Promise<T>): Promise<T> {
  const made = firstMissing(stateDir);
  const before = {
    store: daemonPid(embeddedStoreFiles(stateDir).daemon) !== undefined,
    metadata: daemonPid(metadataDaemon(stateDir)) !== undefined,
    ironic: daemonPid(embeddedIronicFiles(stateDir).daemon) !== undefined,
  };
  let acted = false;
  const undo = async (): Promise<string | undefined> => {
    if (acted) return undefined;
    const undone: string[] = [];
    if (!before.store && (await stopEmbeddedStore(stateDir).catch(() => false))) undone.push("stopped the embedded image store it had started");
    if (!before.metadata && (await stopMetadataService(stateDir).catch(() => false))) undone.push("stopped the metadata service it had started");
    if (!before.ironic && (await stopEmbeddedIronic(stateDir).catch(() => false))) undone.push("stopped the embedded Ironic it had started");
    if (made) {
      rmSync(made, { recursive: true, force: true });
      undone.push(`removed ${made}, which it had made`);
    }
    return `no node was touched${undone.length ? `: ${undone.join("; ")}` : ""}`;
  };
  try {
    // Ctrl-C while still checking undoes the same, and says so.
    return await undoOnInterrupt(undo, () => fn(() => (acted = true)));
  } catch (e) {
    const said = await undo();
    if (said) log.info(said);
    throw e;
  }
}
