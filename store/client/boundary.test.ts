import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

/**
 * The store's client stands apart from its server (store/README.md): the
 * client imports only itself, wire/ and lib/; the node agents, the pipeline
 * and the deployer reach the store only through the client, so the agent
 * binary carries no server code. Checked on the modules Bun actually bundles.
 */
const REPO = normalize(join(import.meta.dir, "../.."));
const isServer = (path: string) => path.startsWith("store/") && !path.startsWith("store/client/");
const sources = (dir: string): string[] =>
  readdirSync(join(REPO, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
    .map((f) => join(dir, f));

/** Every module a bundle of these entry points holds, repository-relative. */
async function bundled(entrypoints: string[]): Promise<string[]> {
  const result = await Bun.build({ entrypoints: entrypoints.map((e) => join(REPO, e)), target: "bun", metafile: true, root: REPO });
  if (!result.success) throw new AggregateError(result.logs, "bundling failed");
  return Object.keys(result.metafile!.inputs).filter((p) => !p.includes("node_modules"));
}

test("the client's modules import nothing of the server, not even types", () => {
  const allowed = ["store/client/", "wire/", "lib/"];
  const offences = [];
  for (const file of sources("store/client")) {
    const text = readFileSync(join(REPO, file), "utf8");
    for (const [, spec] of text.matchAll(/(?:from|import)\s*\(?\s*"(\.[^"]+)"/g)) {
      const target = relative(REPO, join(REPO, dirname(file), spec!));
      if (!allowed.some((a) => target.startsWith(a))) offences.push(`${file} imports ${target}`);
    }
  }
  expect(offences).toEqual([]);
  expect(sources("store/client").length).toBeGreaterThan(5);
});

test("the agent binary (the entry points of its one recipe, elements/ooo-agent/build-agent) carries no server code", async () => {
  const recipe = readFileSync(join(REPO, "elements/ooo-agent/build-agent"), "utf8");
  const entries = recipe.split(/\s+/).filter((w) => w.endsWith(".ts"));
  expect(entries).toEqual(["agents/main.ts", "lib/hash-worker.ts", "store/client/receive-worker.ts", "agents/takeover/kexec-worker.ts"]);
  expect(entries).toContain("agents/main.ts");
  const modules = await bundled(entries);
  expect(modules).toContain("store/client/client.ts");
  expect(modules.filter(isServer)).toEqual([]);
});

test("the pipeline and the deployer link only the client", async () => {
  const modules = await bundled([...sources("pipeline"), ...sources("deployer")]);
  expect(modules).toContain("store/client/resolve.ts");
  expect(modules.filter(isServer)).toEqual([]);
});
