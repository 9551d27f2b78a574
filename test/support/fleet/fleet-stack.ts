import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { stateDirOf } from "../../../deployer/deploy.ts";
import { daemonPid } from "../../../deployer/daemons.ts";
import { embeddedStoreFiles, ensureEmbeddedStore, metadataDaemon, stopEmbeddedStore, stopMetadataService } from "../../../deployer/services.ts";
import { prepareStackTls } from "../../../deployer/stack-tls.ts";
import { loadStack, type Stack } from "../../../deployer/stack.ts";
import { StateDb } from "../../../deployer/state.ts";
import { promote } from "../../../pipeline/promote.ts";
import { publish } from "../../../pipeline/publish.ts";
import { StoreClient } from "../../../store/client/client.ts";
import { writeManifest } from "../manifest.ts";
import { makeRoot, writeCanonicalTar } from "../roots.ts";
import { noise } from "../store.ts";
import { registerSimDriver, simStack, type PowerEvent } from "./sim-driver.ts";

/** A role has at most this many nodes (stack-schema.ts): a larger fleet is several roles. */
export const ROLE_MAX = 1000;

/**
 * A stack of `nodes` simulated nodes (roles of at most ROLE_MAX), with its embedded store
 * holding a small image (fleet@live), the simulated driver registered in
 * this process: the stack file is an ordinary one
 * (qemu inventory: no file can name the simulated driver); `stack` is it
 * turned to the simulated fleet, for deploy() and upgrade() to take.
 */
export interface FleetStack {
  file: string;
  stateDir: string;
  stack: Stack;
}

export const FLEET_IMAGE = "fleet";

export async function fleetStack(
  dir: string,
  o: { nodes: number; pollingSeconds?: number; batch?: number; signalTimeout?: string },
  /** The machines' side of the power switch (the fleet). */
  onPower: (e: PowerEvent) => void,
): Promise<FleetStack> {
  registerSimDriver(onPower);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "fleet.yaml");
  writeFileSync(
    file,
    stringify({
      version: 1,
      name: "fleet",
      store: { embedded: true },
      settings: { signal_timeout: o.signalTimeout ?? "10m", polling_interval: `${o.pollingSeconds ?? 5}s` },
      inventory: { local: { driver: "qemu" } },
      roles: Object.fromEntries(
        Array.from({ length: Math.ceil(o.nodes / ROLE_MAX) }, (_, i) => [
          `r${i}`,
          {
            count: Math.min(ROLE_MAX, o.nodes - i * ROLE_MAX),
            image: `${FLEET_IMAGE}@live`,
            metadata: { service: { name: "example", workers: 4 } },
            rolling_updates: { max_batch_size: o.batch ?? 50, min_in_service: 0 },
          },
        ]),
      ),
    }),
  );
  const stack = simStack(loadStack(file));
  const stateDir = stateDirOf(file);
  const db = StateDb.open(stateDir);
  try {
    // As `ooo store-env` does: the stack's CA, then its store with that certificate.
    await prepareStackTls(stack, stateDir, db);
  } finally {
    db.close();
  }
  return { file, stateDir, stack };
}

/** Publish version `version` of the fleet's image (a small root and disk) and give it the tag `live`; its digest. */
export async function publishFleetImage(f: FleetStack, version: number): Promise<string> {
  const s = await ensureEmbeddedStore(f.stateDir);
  const client = new StoreClient({ url: s.url, token: s.writeToken, ca: s.ca });
  const work = join(f.stateDir, `image-${version}`);
  const out = join(work, `${FLEET_IMAGE}-${version}`);
  makeRoot(join(work, "root"), { files: 4, variant: version });
  await writeCanonicalTar(join(work, "root"), `${out}.tar`);
  writeFileSync(`${out}.raw`, noise(64 * 1024, version));
  const manifest = writeManifest(out, { name: FLEET_IMAGE, artifacts: [{ type: "tar", file: `${FLEET_IMAGE}-${version}.tar` }, { type: "raw", file: `${FLEET_IMAGE}-${version}.raw` }] });
  await publish({ client, output: out, version: String(version) });
  await promote({ client, image: `${FLEET_IMAGE}@${version}`, tag: "live" });
  rmSync(work, { recursive: true, force: true });
  return manifest.digest;
}

/** Stop the stack's daemons (what `ooo delete` does at the end, without removing the nodes one by one). */
export async function stopFleetServices(f: FleetStack) {
  await stopMetadataService(f.stateDir).catch(() => false);
  await stopEmbeddedStore(f.stateDir).catch(() => false);
}

/** The same at once, for an exit handler (a bench or test interrupted): the daemons are sent SIGTERM. */
export function killFleetServices(f: FleetStack) {
  for (const d of [metadataDaemon(f.stateDir), embeddedStoreFiles(f.stateDir).daemon]) {
    const pid = daemonPid(d);
    try {
      if (pid !== undefined) process.kill(pid, "SIGTERM");
    } catch {} // gone meanwhile
  }
}
