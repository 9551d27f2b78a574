import { expect } from "bun:test";
import { HOOK_SAFE_PATH } from "../../builder/environment.ts";

/**
 * Element folders as DIB's hooks see them: as they are, or — a path with a
 * blank, as a clone in "/root/my projects" has — through a link in the
 * build's work folder (builder/environment.ts plainElementPaths).
 */
export const asHooksSeeThem = (paths: string[]) => paths.map((p) => (HOOK_SAFE_PATH.test(p) ? p : expect.stringMatching(/\/elements-path\/\d+$/)));
