import { Conflict } from "./errors.ts";
import type { ImageStatus } from "./image.ts";

/**
 * Glance's image status machine (glance/domain/__init__.py).
 * A failed upload goes back to `queued` so it can be retried; `killed` is
 * Glance's legacy end state, kept in the enum but never entered by ooo.
 */
const NEXT: Record<ImageStatus, readonly ImageStatus[]> = {
  queued: ["saving", "uploading", "importing", "active", "deleted"],
  saving: ["active", "killed", "deleted", "queued"],
  uploading: ["importing", "queued", "deleted"],
  importing: ["active", "deleted", "queued"],
  active: ["pending_delete", "deleted", "deactivated"],
  deactivated: ["active", "deleted"],
  pending_delete: ["deleted", "active"],
  killed: ["deleted"],
  deleted: [],
};

function canTransition(from: ImageStatus, to: ImageStatus) {
  return NEXT[from].includes(to);
}

/** Throws Glance's 409 when the move is not allowed. */
export function checkTransition(from: ImageStatus, to: ImageStatus) {
  if (!canTransition(from, to)) throw new Conflict(`Image status transition from ${from} to ${to} is not allowed`);
}
