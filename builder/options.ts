import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";

/** Debian's name for the machine's architecture, as DIB's ARCH (x86_64 → amd64). */
export function hostArch(): string {
  return process.arch === "x64" ? "amd64" : process.arch === "arm64" ? "arm64" : process.arch;
}

/**
 * SOURCE_DATE_EPOCH when the caller sets none: a fixed instant (2024-01-01),
 * so that a build is reproducible by default. Every mtime in the image is
 * clamped to it.
 */
export const DEFAULT_SOURCE_DATE_EPOCH = 1704067200;

/** The validated options of one build; flags mirror disk-image-create's. */
export const BuildOptions = z.object({
  elements: z.array(z.string().min(1)).min(1).describe("Elements to build from (DIB: positional)"),
  output: z.string().min(1).default("image").describe("-o: output name without extension"),
  types: z.array(z.string().min(1)).min(1).describe("-t: output types"),
  arch: z.string().default(hostArch()).describe("-a: architecture"),
  skipBase: z.boolean().default(false).describe("-n: do not add the base element"),
  packages: z.array(z.string()).default([]).describe("-p: extra packages to install"),
  uncompressed: z.boolean().default(false).describe("-u: do not compress qcow2"),
  imageSize: z.number().positive().optional().describe("--image-size: disk size in GB"),
  checksum: z.boolean().default(false).describe("--checksum: write .md5 and .sha256 beside each output"),
  offline: z.boolean().default(false).describe("--offline: do not update caches from the network"),
  noTmpfs: z.boolean().default(false).describe("--no-tmpfs: build on disk instead of in memory"),
  logfile: z.string().optional().describe("--logfile: the full log (default: OUTPUT.log)"),
  elementsPath: z.array(z.string()).default([]).describe("--elements-path: searched before ELEMENTS_PATH"),
  imageCache: z.string().default(process.env.DIB_IMAGE_CACHE ?? join(homedir(), ".cache", "image-create")),
  noCache: z.boolean().default(false).describe("--no-cache: ignore cached layers (still saves new ones)"),
  keepFailed: z.boolean().default(false).describe("--keep-failed: keep the work folder of a failed build"),
  trace: z.boolean().default(false).describe("-x: trace hooks (DIB_DEBUG_TRACE=1)"),
  json: z.boolean().default(false).describe("--json: print the manifest on stdout"),
  sourceDateEpoch: z.number().int().nonnegative().default(DEFAULT_SOURCE_DATE_EPOCH),
  /** Seconds a hook may run before it is killed and the build fails (0: no limit). */
  hookTimeout: z.number().nonnegative().default(0),
});

export type BuildOptions = z.infer<typeof BuildOptions>;
export type BuildOptionsInput = z.input<typeof BuildOptions>;
