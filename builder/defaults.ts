/**
 * The image `ooo build-image` builds when given no elements: the project's
 * main job (README, `npm run build-image`).
 */
export const DEFAULT_IMAGE = {
  elements: ["debian-minimal", "ooo-node", "redis"],
  output: "out/default",
  types: ["raw", "tar"],
};
