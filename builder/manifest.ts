import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { ManifestV1, type Manifest } from "../wire/manifest.ts";
import type { DiskLayout } from "./disk/layout.ts";
import type { BuildOptions } from "./options.ts";
import type { Artifact } from "./outputs/types.ts";

/** Installed packages from the root's dpkg database (none for roots without dpkg). */
export function installedPackages(root: string): Manifest["packages"] {
  const status = join(root, "var/lib/dpkg/status");
  if (!existsSync(status)) return [];
  const packages: Manifest["packages"] = [];
  for (const stanza of readFileSync(status, "utf8").split(/\n\n+/)) {
    const field = (name: string) => new RegExp(`^${name}: (.*)$`, "m").exec(stanza)?.[1];
    if (!/^Status: install ok installed$/m.test(stanza)) continue;
    const name = field("Package");
    if (name) packages.push({ name, version: field("Version") ?? "", arch: field("Architecture") ?? "" });
  }
  return packages.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function buildManifest(input: {
  options: BuildOptions;
  digest: string;
  rootBytes: number;
  root: string;
  elements: { name: string; sha256: string }[];
  statePaths: string[];
  artifacts: Artifact[];
  layout?: DiskLayout;
  boot?: Manifest["boot"];
  phaseSeconds: Record<string, number>;
  totalSeconds: number;
}): Manifest {
  const manifest: Manifest = {
    version: 1,
    name: basename(input.options.output),
    digest: input.digest,
    arch: input.options.arch,
    sourceDateEpoch: input.options.sourceDateEpoch,
    builder: { name: "ooo", version: pkg.version },
    elements: input.elements.map((e) => ({ name: e.name, sha256: e.sha256 })),
    packages: installedPackages(input.root),
    statePaths: input.statePaths,
    artifacts: input.artifacts.map((a) => ({ type: a.type, file: basename(a.path), sha256: a.sha256, size: a.size })),
    sizes: {
      rootBytes: input.rootBytes,
      ...(input.layout ? { rootSlotBytes: input.layout.slotSize, diskBytes: input.layout.size } : {}),
    },
    ...(input.boot ? { boot: input.boot } : {}),
    timings: { totalSeconds: Number(input.totalSeconds.toFixed(3)), phases: input.phaseSeconds },
  };
  return ManifestV1.parse(manifest);
}
