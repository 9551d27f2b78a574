import { afterAll, beforeAll, describe } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EXIT } from "../lib/errors.ts";
import { type BadInput, badInputTable } from "../test/support/bad-inputs.ts";
import { requireCommand } from "../test/support/require.ts";
import { startStore, type TestStore, WRITE_TOKEN } from "../test/support/store.ts";
import { StateDb } from "./state.ts";

/**
 * The deployer's commands given what a new user gets wrong (issue 24):
 * stack files, state folders, counts and sizes beyond reason, and deploys
 * refused for an image the store lacks — which leave no state folder, no
 * lock and no daemon behind (they stop the embedded store they started to
 * look). No VM is started: every row is refused before a node is touched.
 */
const USAGE = EXIT.usage.code;
let s: TestStore;

beforeAll(async () => {
  // Deploys that get past the stack file check the qemu driver's programs first.
  requireCommand("qemu-system-x86_64", "socat", "mkfs.ext4", "sfdisk");
  s = await startStore();
}, 60_000);
afterAll(async () => s?.stop());

const stack = (roles: string, head = "") => `version: 1\n${head}roles:\n${roles}`;
const WEB = (extra = "") => `  web:\n    count: 1\n    image: kv@stable\n${extra}`;
const GOOD = stack(WEB());
const hostMiB = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]) / 1024;
/** A stack that has been deployed once, with no node left: its state folder exists (status, power, upgrade go further). */
const deployed = (dir: string) => StateDb.open(join(dir, ".ooo", "s")).close();
/** …and one whose node web-0 is still being written (its deploy was interrupted). */
const halfDeployed = (dir: string) => {
  const db = StateDb.open(join(dir, ".ooo", "s"));
  db.createNode({ name: "web-0", role: "web", idx: 0, pool: "local", driver: "qemu", size: { memoryMiB: 1024, cpus: 1 } });
  db.transition("web-0", "writing-image");
  db.close();
};

const rows: BadInput[] = [
  // The stack file (items 1, 5, 8)
  { name: "deploy a stack file that does not exist", argv: ["deploy", "missing.yaml"], exit: USAGE, says: "the stack file missing.yaml: does not exist" },
  { name: "deploy a folder", argv: ["deploy", "stacks"], files: { stacks: { dir: true } }, exit: USAGE, says: "the stack file stacks: is a folder" },
  { name: "deploy an empty stack file", argv: ["deploy", "s.yaml"], files: { "s.yaml": "" }, exit: USAGE, says: "is empty: a stack file has at least version: 1 and roles:" },
  { name: "deploy a stack file that is not YAML", argv: ["deploy", "s.yaml"], files: { "s.yaml": "version: 1\nroles: [web\n" }, exit: USAGE, says: "is not valid YAML" },
  { name: "deploy a stack file that is a list", argv: ["deploy", "s.yaml"], files: { "s.yaml": "- web\n" }, exit: USAGE, says: "must be a mapping (key: value), not a list" },
  { name: "deploy a stack of version 2", argv: ["deploy", "s.yaml"], files: { "s.yaml": `version: 2\nroles:\n${WEB()}` }, exit: USAGE, says: "version: must be 1" },
  { name: "deploy a stack without roles", argv: ["deploy", "s.yaml"], files: { "s.yaml": "version: 1\n" }, exit: USAGE, says: "roles: is required" },
  { name: "deploy a stack with a misspelt key", argv: ["deploy", "s.yaml"], files: { "s.yaml": stack(WEB("    sizee: { memory: 1G }\n")) }, exit: USAGE, says: "roles.web.sizee: unknown key" },
  { name: "deploy count 100000", argv: ["deploy", "s.yaml"], files: { "s.yaml": stack("  web:\n    count: 100000\n    image: kv@stable\n") }, exit: USAGE, says: "roles.web.count: must be ≤ 1000" },
  { name: "deploy count -1", argv: ["deploy", "s.yaml"], files: { "s.yaml": stack("  web:\n    count: -1\n    image: kv@stable\n") }, exit: USAGE, says: "roles.web.count: must be ≥ 0" },
  { name: "deploy count three", argv: ["deploy", "s.yaml"], files: { "s.yaml": stack("  web:\n    count: three\n    image: kv@stable\n") }, exit: USAGE, says: "roles.web.count: must be a whole number" },
  { name: "deploy memory 1000000000000", argv: ["deploy", "s.yaml"], files: { "s.yaml": stack(WEB("    size: { memory: 1000000000000 }\n")) }, exit: USAGE, says: "roles.web.size.memory: must be at most 16 TiB" },
  { name: "deploy memory 10", argv: ["deploy", "s.yaml"], files: { "s.yaml": stack(WEB("    size: { memory: 10 }\n")) }, exit: USAGE, says: "must be at least 256 MiB" },
  { name: "deploy memory half a gigabyte in words", argv: ["deploy", "s.yaml"], files: { "s.yaml": stack(WEB("    size: { memory: half }\n")) }, exit: USAGE, says: "roles.web.size.memory: must be a size such as 768M, 2G or 8GiB" },
  { name: "deploy disk 1000T", argv: ["deploy", "s.yaml"], files: { "s.yaml": stack(WEB("    size: { disk: 1000T }\n")) }, exit: USAGE, says: "roles.web.size.disk: must be at most 64 TiB" },
  { name: "deploy a node bigger than this host", argv: ["deploy", "s.yaml"], files: { "s.yaml": stack(WEB(`    size: { memory: ${Math.ceil(hostMiB * 2)} }\n`)) }, exit: EXIT.missing.code, says: "node web-0 asks for" },
  { name: "deploy more VMs than this host holds", argv: ["deploy", "s.yaml"], files: { "s.yaml": stack(`  web:\n    count: 1000\n    image: kv@stable\n    size: { memory: ${Math.ceil(hostMiB / 10)} }\n`) }, exit: EXIT.missing.code, says: "the stack's 1000 VMs ask for" },
  { name: "deploy an image reference that is none", argv: ["deploy", "s.yaml"], files: { "s.yaml": stack("  web:\n    count: 1\n    image: kv@\n") }, exit: USAGE, says: "roles.web.image: must be NAME@TAG" },
  { name: "deploy a store url that is no URL", argv: ["deploy", "s.yaml"], files: { "s.yaml": stack(WEB(), "store: { url: 'store:9292' }\n") }, exit: USAGE, says: "store.url: must be" },
  { name: "deploy a store token_file that does not exist", argv: ["deploy", "s.yaml"], files: { "s.yaml": stack(WEB(), "store: { url: 'http://127.0.0.1:1', token_file: read.token }\n") }, exit: USAGE, says: "store.token_file: no such file" },
  { name: "deploy trusting a key file that does not exist", argv: ["deploy", "s.yaml"], files: { "s.yaml": stack(WEB(), "trust: { keys: [ci.pub] }\n") }, exit: USAGE, says: "trust.keys.0: cannot read ci.pub" },
  // State and caches (item 1)
  { name: "deploy --state-dir that is a file", argv: ["deploy", "s.yaml", "--state-dir", "afile"], files: { "s.yaml": GOOD, afile: "x" }, exit: USAGE, says: "--state-dir", },
  { name: "deploy --image-cache that is a file", argv: ["deploy", "s.yaml", "--image-cache", "afile"], files: { "s.yaml": GOOD, afile: "x" }, exit: USAGE, says: "--image-cache afile: is a file, not a folder" },
  { name: "deploy --progress-file that is a folder", argv: ["deploy", "s.yaml", "--progress-file", "p"], files: { "s.yaml": GOOD, p: { dir: true } }, exit: USAGE, says: "--progress-file p: is a folder" },
  // Refused deploys leave nothing (item 7): no state folder, no lock, no store daemon
  {
    name: "deploy an image the embedded store lacks",
    argv: ["deploy", "s.yaml"],
    files: { "s.yaml": GOOD },
    exit: EXIT.failed.code,
    says: /role web: image kv@stable: the store has no images[\s\S]*ooo store-env/,
  },
  { name: "deploy a store nobody answers at", argv: ["deploy", "s.yaml"], files: { "s.yaml": stack(WEB(), "store: { url: 'http://127.0.0.1:1' }\n") }, exit: EXIT.failed.code, says: "The address comes from store.url in" },
  {
    name: "deploy with a write token for the nodes",
    argv: () => ["deploy", "s.yaml"],
    files: { "w.token": WRITE_TOKEN },
    before: (dir) => Bun.write(join(dir, "s.yaml"), stack(WEB(), `store: { url: '${s.url}', token_file: w.token }\n`)).then(() => {}),
    exit: USAGE,
    says: "is a write token of",
  },
  // scale (item 3): the file is written only when the deploy would go ahead
  { name: "scale to a count that is no number", argv: ["scale", "s.yaml", "web=three"], files: { "s.yaml": GOOD }, exit: USAGE, says: "web=three: write ROLE=COUNT, e.g. web=3" },
  { name: "scale a role the stack lacks", argv: ["scale", "s.yaml", "api=2"], files: { "s.yaml": GOOD }, exit: USAGE, says: "has no role api" },
  { name: "scale to 100000", argv: ["scale", "s.yaml", "web=100000"], files: { "s.yaml": GOOD }, exit: USAGE, says: "roles.web.count: must be ≤ 1000" },
  { name: "scale when the deploy is refused", argv: ["scale", "s.yaml", "web=3"], files: { "s.yaml": GOOD }, exit: EXIT.failed.code, says: "the store has no images" },
  { name: "scale without counts", argv: ["scale", "s.yaml"], files: { "s.yaml": GOOD }, exit: USAGE, says: "missing COUNTS" },
  // The commands that need a deployed stack (items 1, 6)
  { name: "status of a stack never deployed", argv: ["status", "s.yaml"], files: { "s.yaml": GOOD }, exit: USAGE, says: "it was never deployed" },
  { name: "status --state-dir of a file", argv: ["status", "s.yaml", "--state-dir", "afile"], files: { "s.yaml": GOOD, afile: "x" }, exit: USAGE, says: "it was never deployed (or --state-dir points elsewhere)" },
  { name: "delete a stack never deployed", argv: ["delete", "s.yaml"], files: { "s.yaml": GOOD }, exit: USAGE, says: "it was never deployed" },
  { name: "power a node of a stack never deployed", argv: ["power", "s.yaml", "web-0", "on"], files: { "s.yaml": GOOD }, exit: USAGE, says: "it was never deployed" },
  { name: "power a node that does not exist", argv: ["power", "s.yaml", "web-9", "on"], files: { "s.yaml": GOOD }, before: deployed, exit: USAGE, says: "no node web-9 in this stack (nodes: none)", leaves: [".ooo"] },
  { name: "power to a state there is none of", argv: ["power", "s.yaml", "web-0", "up"], files: { "s.yaml": GOOD }, exit: USAGE, says: 'target must be one of "on", "off", "soft-off", "reset", "reboot", not "up"' },
  { name: "upgrade a stack never deployed", argv: ["upgrade", "s.yaml"], files: { "s.yaml": GOOD }, exit: USAGE, says: "it was never deployed" },
  { name: "upgrade a stack without nodes", argv: ["upgrade", "s.yaml"], files: { "s.yaml": GOOD }, before: deployed, exit: USAGE, says: "nothing to upgrade: stack s has no deployed node", leaves: [".ooo"] },
  { name: "upgrade a node whose deploy did not finish", argv: ["upgrade", "s.yaml"], files: { "s.yaml": GOOD }, before: halfDeployed, exit: USAGE, says: "cannot upgrade in place: web-0 is writing-image; nothing was changed", leaves: [".ooo"] },
  { name: "takeover a node whose deploy did not finish", argv: ["takeover", "s.yaml", "web-0", "--image", "kv@stable"], files: { "s.yaml": GOOD }, before: halfDeployed, exit: USAGE, says: "web-0 is writing-image", leaves: [".ooo"] },
  { name: "takeover a node that does not exist", argv: ["takeover", "s.yaml", "web-9", "--image", "kv@2"], files: { "s.yaml": GOOD }, before: deployed, exit: USAGE, says: "no node web-9 in this stack", leaves: [".ooo"] },
  { name: "takeover without --image", argv: ["takeover", "s.yaml", "web-0"], files: { "s.yaml": GOOD }, exit: USAGE, says: "missing --image" },
  { name: "takeover an image reference that is none", argv: ["takeover", "s.yaml", "web-0", "--image", "kv@"], files: { "s.yaml": GOOD }, exit: USAGE, says: 'image reference "kv@"' },
  { name: "store-env --state-dir of a file", argv: ["store-env", "s.yaml", "--state-dir", "afile"], files: { "s.yaml": GOOD, afile: "x" }, exit: USAGE, says: "--state-dir afile: is a file" },
  { name: "deploy two stacks at once", argv: ["deploy", "a.yaml", "b.yaml"], exit: USAGE, says: "unexpected argument b.yaml (usage: ooo deploy <stack>)" },
];

describe("the deployer's commands refuse bad input cleanly", () => {
  badInputTable(rows, { env: () => ({ OOO_STORE_TOKEN: "" }) });
});
