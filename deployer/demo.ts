#!/usr/bin/env bun
/**
 * `bun run demo`: the newcomer's first deploy, with the commands a person
 * would type, each shown before it runs:
 *
 *   1. build the default golden image if out/default is missing (bun run build-image)
 *   2. start the stack's embedded image store and publish the image to it, tagged stable
 *   3. deploy fixtures/stacks/demo.yaml (2 roles, 3 qemu nodes): the metadata service
 *      starts, nodes boot, configure themselves and signal; the timeline is printed
 *
 * The nodes keep running; `bun cli/ooo.ts status fixtures/stacks/demo.yaml`
 * shows them and `bun cli/ooo.ts delete fixtures/stacks/demo.yaml` ends them.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { DEFAULT_IMAGE } from "../builder/defaults.ts";

const REPO = resolve(import.meta.dir, "..");
const STACK = "fixtures/stacks/demo.yaml";
const OUTPUT = DEFAULT_IMAGE.output;

function say(text: string) {
  process.stderr.write(`\n\x1b[1m${text}\x1b[0m\n`);
}

async function ooo(args: string[], options: { env?: Record<string, string>; capture?: boolean } = {}): Promise<string> {
  process.stderr.write(`\x1b[36m$ bun cli/ooo.ts ${args.join(" ")}\x1b[0m\n`);
  const child = Bun.spawn(["bun", join(REPO, "cli/ooo.ts"), ...args], {
    cwd: REPO,
    env: { ...process.env, ...options.env },
    stdin: "ignore",
    stdout: options.capture ? "pipe" : "inherit",
    stderr: "inherit",
  });
  const out = options.capture ? await new Response(child.stdout).text() : "";
  const code = await child.exited;
  if (code !== 0) {
    process.stderr.write(`\nthe demo stopped: \`bun cli/ooo.ts ${args[0]}\` failed (exit ${code}).\n`);
    process.exit(code);
  }
  return out;
}

const manifest = join(REPO, `${OUTPUT}.manifest.json`);
const built = () => {
  if (!existsSync(manifest)) return false;
  const m = JSON.parse(readFileSync(manifest, "utf8")) as { artifacts: { type: string; file: string }[] };
  return ["raw", "tar"].every((t) => m.artifacts.some((a) => a.type === t && existsSync(join(REPO, "out", a.file))));
};

say(`1. the golden image (${OUTPUT}: ${DEFAULT_IMAGE.elements.join(" ")})`);
if (built()) process.stderr.write(`${OUTPUT} is built (delete it to build again).\n`);
else await ooo(["build-image", "--force"]); // a build with a part missing is made again whole
const digest = (JSON.parse(readFileSync(manifest, "utf8")) as { digest: string }).digest;

say("2. the image store (embedded in the stack's state folder) and the image in it");
const env = Object.fromEntries(
  [...(await ooo(["store-env", STACK], { capture: true })).matchAll(/export (\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]),
);
process.stderr.write(`(publishing with OOO_STORE_URL=${env.OOO_STORE_URL} and its write token)\n`);
await ooo(["publish", OUTPUT], { env });
await ooo(["promote", "default", digest, "--tag", "stable"], { env });

say(`3. deploy ${STACK}`);
await ooo(["deploy", STACK]);

say("the nodes are running");
process.stderr.write(
  [
    `  bun cli/ooo.ts status ${STACK}     every node's state`,
    `  bun cli/ooo.ts delete ${STACK}     power them off and remove them`,
    `  timeline chart: ${relative(process.cwd(), join(REPO, "fixtures/stacks/.ooo/demo/timelines/latest.html"))}`,
    `  consoles: ${relative(process.cwd(), join(REPO, "fixtures/stacks/.ooo/demo/nodes"))}/NODE/console.log`,
    "",
  ].join("\n"),
);
