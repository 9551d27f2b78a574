/**
 * DIB's hook phases in the order disk-image-create runs them, and where each
 * runs: `target` phases run chrooted into the root being built, `host`
 * phases outside it with TARGET_ROOT pointing at it.
 */
export const PHASES = [
  { name: "root.d", where: "host" },
  { name: "extra-data.d", where: "host" },
  { name: "pre-install.d", where: "target" },
  { name: "install.d", where: "target" },
  { name: "post-install.d", where: "target" },
  { name: "post-root.d", where: "host" },
  { name: "block-device.d", where: "host" },
  { name: "pre-finalise.d", where: "host" },
  { name: "finalise.d", where: "target" },
  { name: "cleanup.d", where: "host" },
] as const;

export type Phase = (typeof PHASES)[number]["name"];
export const PHASE_NAMES: readonly string[] = PHASES.map((p) => p.name);

/** Ramdisk-only phases DIB knows; recognised so they are not mistaken for data. */
export const RAMDISK_PHASES = ["binary-deps.d", "init.d", "ramdisk-install.d", "udev.d"] as const;
