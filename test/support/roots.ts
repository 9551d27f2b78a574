import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { canonicalTar } from "../../lib/tar/canonical.ts";
import { noise } from "./store.ts";

/**
 * Small synthetic roots for chunking tests: a tree of files of varied sizes
 * (some shared text, some noise), and its canonical tar as the builder
 * writes it. `variant` changes one file and adds one, as a package update
 * would.
 */
export function makeRoot(dir: string, options: { files?: number; variant?: number } = {}) {
  const files = options.files ?? 120;
  for (let i = 0; i < files; i++) {
    const sub = join(dir, "usr", `d${i % 7}`);
    mkdirSync(sub, { recursive: true });
    const size = 2000 + ((i * 7919) % 90_000);
    writeFileSync(join(sub, `f${i}`), noise(size, i + 1));
  }
  mkdirSync(join(dir, "etc"), { recursive: true });
  writeFileSync(join(dir, "etc", "hostname"), "node\n");
  if (options.variant) {
    writeFileSync(join(dir, "usr", "d3", "f10"), noise(30_000, 1000 + options.variant));
    mkdirSync(join(dir, "usr", "new"), { recursive: true });
    writeFileSync(join(dir, "usr", "new", "added"), noise(20_000, 2000 + options.variant));
  }
  return dir;
}

export async function writeCanonicalTar(root: string, out: string, sourceDateEpoch = 1704067200) {
  const fd = openSync(out, "w");
  try {
    for await (const piece of canonicalTar(root, { sourceDateEpoch })) writeSync(fd, piece);
  } finally {
    closeSync(fd);
  }
  return out;
}
