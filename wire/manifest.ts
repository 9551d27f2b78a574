import { z } from "zod";
import { Digest, Sha256Hex } from "./image-ref.ts";

/**
 * The build manifest (`NAME.manifest.json`): what an image is and how it was
 * made. Written by the builder, stored with the image by the store, read by
 * the pipeline, the deployer and the node agents. Defined once, here.
 *
 * `digest` is the image's content address: `sha256:` + the sha256 of the
 * root in canonical form (lib/tar/canonical.ts) — the same bytes as the
 * `tar` artifact. It does not depend on the filesystem the root is written
 * to, so an ext4 and an erofs image of one tree share it.
 */
export const Artifact = z.object({
  type: z.string().describe("Output type: tar, rootfs, raw, disk-map (where the raw disk's data is: wire/disk-map.ts), qcow2, vmlinuz, initrd, …"),
  file: z.string().describe("File name, relative to the manifest"),
  sha256: Sha256Hex,
  size: z.number().int().nonnegative().describe("Bytes (apparent size)"),
});

export const ManifestV1 = z.object({
  version: z.literal(1).describe("Manifest format version"),
  name: z.string().describe("Image name (basename of -o)"),
  digest: Digest.describe("Content address: sha256 of the canonical root tar"),
  arch: z.string(),
  sourceDateEpoch: z.number().int().describe("Every mtime in the root is clamped to this"),
  builder: z.object({ name: z.literal("ooo"), version: z.string() }),
  elements: z.array(z.object({ name: z.string(), sha256: Sha256Hex })).describe("Elements and their content hashes"),
  packages: z
    .array(z.object({ name: z.string(), version: z.string(), arch: z.string() }))
    .describe("Installed packages (dpkg); empty for roots without dpkg"),
  statePaths: z.array(z.string()).default([]).describe("Paths kept on the state partition"),
  artifacts: z.array(Artifact),
  sizes: z.object({
    rootBytes: z.number().int().nonnegative().describe("Size of the canonical root tar"),
    rootSlotBytes: z.number().int().nonnegative().optional().describe("Size of one root slot on the disk"),
    diskBytes: z.number().int().nonnegative().optional(),
  }),
  boot: z
    .object({
      kernelCmdline: z.string().describe("Kernel arguments every boot gets; a slot adds root=, ro and ooo.slot="),
      rootFsType: z.enum(["ext4", "erofs"]),
      partUuids: z
        .record(z.string(), z.string())
        .describe("PARTUUIDs of the disk as built, by partition name (ooo-root-a, ooo-root-b, ooo-state, …)"),
    })
    .optional()
    .describe("Present when the build made a disk image"),
  timings: z.object({ totalSeconds: z.number(), phases: z.record(z.string(), z.number()) }),
});

export type Manifest = z.infer<typeof ManifestV1>;

/** Parse any known manifest version, translating older ones forward. */
export const Manifest = ManifestV1;
