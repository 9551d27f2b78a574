import { resolve } from "node:path";
import type { Argv, CommandModule } from "yargs";
import { UsageError } from "../lib/errors.ts";
import { whileInterruptible } from "../lib/interrupt.ts";
import { folderToWrite, inputFile } from "../lib/user-paths.ts";
import { log, table } from "../lib/log.ts";
import { imageRef } from "../store/client/resolve.ts";
import { IMAGE_REF_FORMS } from "../wire/image-ref.ts";
import { attachProgressFile, progressFileOption } from "../lib/progress-file.ts";
import { deleteStack } from "./delete.ts";
import { deploy, stateDirOf, type DeployReport } from "./deploy.ts";
import { driverFor } from "./drivers/index.ts";
import type { PowerTarget } from "./drivers/driver.ts";
import { DeployFailed, NoState, UnknownNode, UpgradeFailed } from "./errors.ts";
import { notUpgraded, upgrade, upgradeTable, type UpgradeProgress, type UpgradeReport } from "./upgrade.ts";
import { lockStack } from "./lock.ts";
import { serveMetadata } from "./metadata-service.ts";
import { driverNode } from "./node-ops.ts";
import { parseCounts, scaledStack, writeScaled } from "./scale.ts";
import { ensureEmbeddedStore } from "./services.ts";
import { prepareStackTls } from "./stack-tls.ts";
import { loadStack } from "./stack.ts";
import { StateDb } from "./state.ts";
import { stackStatus, statusText } from "./status.ts";
import { timelineTable } from "./timeline.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { enroll } from "./bare-metal/enroll.ts";
import { machineStatus, machinesTable } from "./bare-metal/report.ts";
import { noteProvisioning } from "./provisioning/settings.ts";

/** The deployer's commands: deploy, status, scale, delete, power, store-env (and the metadata service daemon). */

type StackArgs = { stack: string; "state-dir"?: string };

const withStack = <T>(y: Argv<T>) =>
  y
    .positional("stack", { type: "string", demandOption: true, describe: "the stack file (YAML; deployer/stack-schema.ts documents it)" })
    .option("state-dir", { type: "string", describe: "DIR: the stack's state folder (default .ooo/NAME/ beside the stack file)" }) as Argv<T & StackArgs>;

/** The state folder of a stack that was deployed: --state-dir, or the default beside the file. */
function deployedStateDir(argv: StackArgs): string {
  const stateDir = stateDirOf(inputFileOrState(argv), argv["state-dir"]);
  if (!existsSync(join(stateDir, "state.db"))) throw new NoState(stateDir);
  return stateDir;
}

/** status, delete, power work from the state alone: the stack file may be gone, if --state-dir says where the state is. */
function inputFileOrState(argv: StackArgs): string {
  return argv["state-dir"] && !existsSync(argv.stack) ? argv.stack : inputFile(argv.stack, "the stack file");
}

/** What a deploy interrupted by Ctrl-C leaves, and how the next run goes on. */
const deployLeft = (command: string, stack: string) =>
  `nodes being written or booting are left as they are (ooo status ${stack} shows them); \`ooo ${command} ${stack}\` again resumes where this one stopped`;

function printReport(r: DeployReport, json?: boolean) {
  const rows = r.outcomes.map((o) => [o.node, o.role, o.action, o.result, o.action === "none" ? "" : o.why, (o.error ?? "").split("\n")[0]!.slice(0, 60)]);
  for (const name of r.removed) rows.push([name, "", "remove", "removed", "the stack no longer has it", ""]);
  process.stderr.write(
    `\n${table(["node", "role", "action", "result", "why", "error"], rows)}\n\n` +
      (r.timelineFiles ? `${timelineTable(r.timeline)}\n\ntimeline chart: ${r.timelineFiles.html}\n        (JSON: ${r.timelineFiles.json})\n` : "nothing changed\n"),
  );
  if (json) process.stdout.write(JSON.stringify({ stack: r.stack.name, stateDir: r.stateDir, run: r.run, outcomes: r.outcomes, removed: r.removed, changed: r.changed, timeline: r.timeline, timelineFiles: r.timelineFiles }) + "\n");
  const failed = r.outcomes.filter((o) => o.result === "failed");
  if (failed.length) throw new DeployFailed(failed.map((f) => ({ node: f.node, error: f.error ?? "failed" })));
}

type DeployArgs = StackArgs & { json?: boolean; "image-cache"?: string; "progress-file"?: string };

/** A node's upgrade progress: a plain line, or one with the bytes it has fetched (for --progress-file). */
const showProgress = (p: UpgradeProgress) => (p.bytes === undefined ? log.info(p.text) : log.progress(p.text, p.bytes, p.total));

export const deployCommand: CommandModule<object, DeployArgs> = {
  command: "deploy <stack>",
  describe: "make the stack's nodes what the stack file says (create, retry, reconfigure; again = no change)",
  builder: (y) =>
    withStack(y)
      .option("image-cache", { type: "string", describe: "DIR: the downloaded golden disks (default STATE/images)" })
      .option("json", { type: "boolean", describe: "print the outcome and the timeline as JSON on stdout" })
      .option("progress-file", progressFileOption)
      .example("$0 deploy fixtures/stacks/demo.yaml", "") as unknown as Argv<DeployArgs>,
  handler: async (argv) => {
    attachProgressFile(argv["progress-file"]);
    const r = await whileInterruptible(
      () => deployLeft("deploy", argv.stack),
      () => deploy(argv.stack, { stateDir: argv["state-dir"], imageCache: argv["image-cache"] }),
    );
    printReport(r, argv.json);
  },
};

type ScaleArgs = DeployArgs & { counts: string[] };

export const scaleCommand: CommandModule<object, ScaleArgs> = {
  command: "scale <stack> <counts..>",
  describe: "change roles' node counts in the stack file (ROLE=N …) and deploy",
  builder: (y) =>
    withStack(y)
      .positional("counts", { type: "string", array: true, describe: "ROLE=COUNT, one for each role to change (web=3)" })
      .option("image-cache", { type: "string", describe: "DIR: the downloaded golden disks (default STATE/images)" })
      .option("json", { type: "boolean", describe: "print the outcome as JSON on stdout" })
      .option("progress-file", progressFileOption)
      .example("$0 scale fixtures/stacks/demo.yaml web=3", "") as unknown as Argv<ScaleArgs>,
  handler: async (argv) => {
    const counts = parseCounts(argv.counts.map(String));
    const file = inputFile(argv.stack, "the stack file");
    const scaled = scaledStack(file, counts);
    attachProgressFile(argv["progress-file"]);
    let written = false;
    const r = await whileInterruptible(
      () => (written ? `the stack file has the new counts; ${deployLeft("deploy", argv.stack)}` : `the stack file is unchanged; nothing was done`),
      () =>
        deploy(file, {
          stack: scaled.stack,
          stateDir: argv["state-dir"],
          imageCache: argv["image-cache"],
          command: "scale",
          beforeChanges: async () => {
            await writeScaled(file, scaled);
            written = true;
            for (const [role, n] of Object.entries(counts)) log.info(`${role}: ${scaled.before[role]} → ${n} (written to ${argv.stack})`);
          },
        }),
    );
    printReport(r, argv.json);
  },
};

export const statusCommand: CommandModule<object, StackArgs & { json?: boolean }> = {
  command: "status <stack>",
  describe: "show every node's state, power, image and metadata serial, and the stack's services",
  builder: (y) => withStack(y).option("json", { type: "boolean", describe: "print JSON on stdout" }) as unknown as Argv<StackArgs & { json?: boolean }>,
  handler: async (argv) => {
    const stateDir = deployedStateDir(argv);
    let stack;
    try {
      stack = loadStack(argv.stack);
    } catch (e) {
      log.warn(`the stack file does not load (${(e as Error).message.split("\n")[0]}); showing the state only`);
    }
    const s = await stackStatus(stateDir, stack);
    if (argv.json) process.stdout.write(JSON.stringify(s, null, 2) + "\n");
    else process.stdout.write(statusText(s) + "\n");
  },
};

export const deleteCommand: CommandModule<object, StackArgs & { purge?: boolean }> = {
  command: "delete <stack>",
  describe: "power off and remove every node, stop the stack's services (--purge: also its state, caches and store)",
  builder: (y) =>
    withStack(y).option("purge", { type: "boolean", describe: "also remove the state folder: history, image cache, embedded store" }) as unknown as Argv<
      StackArgs & { purge?: boolean }
    >,
  handler: async (argv) => {
    const r = await deleteStack(stateDirOf(inputFileOrState(argv), argv["state-dir"]), { purge: argv.purge });
    process.stderr.write(
      `removed ${r.removed.length ? r.removed.join(", ") : "no nodes"}; stopped ${r.stopped.length ? r.stopped.join(" and ") : "nothing (no service was running)"}${r.purged ? "; state folder removed" : ""}\n`,
    );
  },
};

type PowerArgs = StackArgs & { node: string; target: string };

export const powerCommand: CommandModule<object, PowerArgs> = {
  command: "power <stack> <node> <target>",
  describe: "power a node on, off (pull the plug), soft-off (ACPI), reset or reboot",
  builder: (y) =>
    withStack(y)
      .positional("node", { type: "string", demandOption: true, describe: "the node's name (web-0; ooo status lists them)" })
      .positional("target", {
        choices: ["on", "off", "soft-off", "reset", "reboot"],
        demandOption: true,
        describe: "on, off (pull the plug), soft-off (ACPI), reset or reboot",
      }) as unknown as Argv<PowerArgs>,
  handler: async (argv) => {
    const stateDir = deployedStateDir(argv);
    const db = StateDb.open(stateDir);
    const unlock = lockStack(stateDir, `power ${argv.node} ${argv.target}`);
    try {
      const row = db.node(argv.node);
      if (!row) throw new UnknownNode(argv.node, db.nodes().map((n) => n.name));
      const driver = driverFor(row.driver);
      await log.step(`${argv.node}: power ${argv.target}`, () => driver.setPower(driverNode(stateDir, row), argv.target as PowerTarget));
      db.event(argv.node, argv.target === "on" ? "power-on" : `power-${argv.target}`, { by: "ooo power" });
    } finally {
      unlock();
      db.close();
    }
  },
};

export const storeEnvCommand: CommandModule<object, StackArgs> = {
  command: "store-env <stack>",
  describe: "start the stack's embedded image store if needed; print OOO_STORE_URL and OOO_STORE_TOKEN for it",
  builder: (y) =>
    withStack(y)
      .example("# then ooo publish and ooo store list use that store", "")
      .example(`eval "$($0 store-env fixtures/stacks/demo.yaml)"`, "") as unknown as Argv<StackArgs>,
  handler: async (argv) => {
    const stack = loadStack(argv.stack);
    if (argv["state-dir"]) folderToWrite(argv["state-dir"], "--state-dir");
    if (stack.store.kind !== "embedded") {
      process.stdout.write(`export OOO_STORE_URL=${stack.store.url}\n`);
      return;
    }
    const stateDir = stateDirOf(argv.stack, argv["state-dir"]);
    const db = StateDb.open(stateDir);
    const unlock = lockStack(stateDir, "store-env");
    try {
      // The CA before the store: it starts with the certificate the first deploy would give it (and where it listens).
      noteProvisioning(stateDir, stack.provisioning);
      await prepareStackTls(stack, stateDir, db);
      const s = await ensureEmbeddedStore(stateDir);
      process.stdout.write(`export OOO_STORE_URL=${s.url}\nexport OOO_STORE_TOKEN=${s.writeToken}\n${s.caFile ? `export OOO_STORE_CA=${s.caFile}\n` : ""}`);
    } finally {
      unlock();
      db.close();
    }
  },
};

type MetadataServiceArgs = { "state-dir": string; port?: number; "tls-cert"?: string; "tls-key"?: string };

export const metadataServiceCommand: CommandModule<object, MetadataServiceArgs> = {
  command: "metadata-service",
  describe: false, // started by ooo deploy, detached; not for people
  builder: (y) =>
    y
      .option("state-dir", { type: "string", demandOption: true })
      .option("port", { type: "number", describe: "the port to try first" })
      .option("tls-cert", { type: "string", describe: "serve https with this PEM certificate" })
      .option("tls-key", { type: "string", describe: "and this PEM key" }) as unknown as Argv<MetadataServiceArgs>,
  handler: async (argv) => {
    if (Boolean(argv["tls-cert"]) !== Boolean(argv["tls-key"])) throw new UsageError("--tls-cert and --tls-key go together");
    const tls = argv["tls-cert"] && argv["tls-key"] ? { cert: argv["tls-cert"], key: argv["tls-key"] } : undefined;
    await serveMetadata(resolve(argv["state-dir"]), { preferredPort: argv.port, tls });
  },
};

function printUpgrade(r: UpgradeReport, json?: boolean) {
  process.stderr.write(
    `\n${upgradeTable(r)}\n\n${timelineTable(r.timeline)}\n` +
      (r.timelineFiles ? `\ntimeline chart: ${r.timelineFiles.html}\n        (JSON: ${r.timelineFiles.json})\n` : ""),
  );
  if (json) process.stdout.write(JSON.stringify({ stack: r.stack, stateDir: r.stateDir, run: r.run, nodes: r.nodes, stoppedAt: r.stoppedAt, timeline: r.timeline, timelineFiles: r.timelineFiles }) + "\n");
  const bad = r.nodes.filter(notUpgraded);
  if (bad.length) throw new UpgradeFailed(bad.map((n) => `${n.node}: ${n.result}${n.reason ? `: ${n.reason}` : ""}`));
}

type UpgradeArgs = StackArgs & { json?: boolean; "progress-file"?: string };

const upgradeLeft = (stack: string, again = `ooo upgrade ${stack}`) =>
  `nodes already moving to their new image go on by themselves (each boots it on trial and keeps it, or falls back); ooo status ${stack} shows where each is, and \`${again}\` again goes on with the rest`;

export const upgradeCommand: CommandModule<object, UpgradeArgs> = {
  command: "upgrade <stack>",
  describe: "move every node to the image its role now names, in place, batch by batch (rolling_updates)",
  builder: (y) =>
    withStack(y)
      .option("json", { type: "boolean", describe: "print the outcome and the timeline as JSON on stdout" })
      .option("progress-file", progressFileOption)
      .example("# after changing a role's image in the stack file", "")
      .example("$0 upgrade fixtures/stacks/demo.yaml", "") as unknown as Argv<UpgradeArgs>,
  handler: async (argv) => {
    attachProgressFile(argv["progress-file"]);
    const r = await whileInterruptible(
      () => upgradeLeft(argv.stack),
      () => upgrade(argv.stack, { stateDir: argv["state-dir"], onProgress: showProgress }),
    );
    printUpgrade(r, argv.json);
  },
};

type TakeoverArgs = UpgradeArgs & { node: string; image: string };

export const takeoverCommand: CommandModule<object, TakeoverArgs> = {
  command: "takeover <stack> <node>",
  describe: "move one node to an image in place (the original's takeovernode), whatever its role names",
  builder: (y) =>
    withStack(y)
      .positional("node", { type: "string", demandOption: true, describe: "the node's name (web-0; ooo status lists them)" })
      .option("image", { type: "string", demandOption: true, describe: `the image: ${IMAGE_REF_FORMS}` })
      .option("json", { type: "boolean", describe: "print the outcome as JSON on stdout" })
      .option("progress-file", progressFileOption) as unknown as Argv<TakeoverArgs>,
  handler: async (argv) => {
    const image = imageRef(argv.image).text;
    attachProgressFile(argv["progress-file"]);
    const r = await whileInterruptible(
      () => upgradeLeft(argv.stack, `ooo takeover ${argv.stack} ${argv.node} --image ${image}`),
      () => upgrade(argv.stack, { stateDir: argv["state-dir"], nodes: [argv.node], image, onProgress: showProgress }),
    );
    printUpgrade(r, argv.json);
  },
};

export const deployerCommands = [deployCommand, statusCommand, scaleCommand, deleteCommand, powerCommand, upgradeCommand, takeoverCommand, storeEnvCommand, metadataServiceCommand];

type EnrollArgs = StackArgs & { standby?: boolean; json?: boolean };

export const enrollCommand: CommandModule<object, EnrollArgs> = {
  command: "enroll <stack>",
  describe: "check every bare-metal machine's BMC (all problems at once, before anything is touched) and record the machines, the embedded Ironic's enrolled into it; --standby: boot them into the deploy ramdisk to wait there",
  builder: (y) =>
    withStack(y)
      .option("standby", { type: "boolean", describe: "bring every machine no node uses into the deploy ramdisk (fast track)" })
      .option("json", { type: "boolean", describe: "print the machines as JSON on stdout" }) as unknown as Argv<EnrollArgs>,
  handler: async (argv) => {
    const r = await enroll(argv.stack, { stateDir: argv["state-dir"], standby: argv.standby });
    const machines = r.machines.map(machineStatus);
    process.stderr.write(`\n${machinesTable(machines)}\n`);
    if (argv.json) process.stdout.write(JSON.stringify({ stateDir: r.stateDir, machines }) + "\n");
  },
};

deployerCommands.push(enrollCommand);
