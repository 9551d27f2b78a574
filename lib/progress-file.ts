import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { jsonLinesSink, log } from "./log.ts";
import { outputFile } from "./user-paths.ts";

/**
 * `--progress-file FILE`, the same on every long command (build-image,
 * publish, deploy, upgrade): the step events the terminal shows, as JSON
 * lines (wire/step-event.ts) appended to FILE, for CI systems to render.
 */
export const PROGRESS_FILE_DESCRIPTION =
  "append every step's events (start, end, fail, elapsed seconds, bytes) to FILE as JSON lines (schema: wire/step-event.ts); `/dev/fd/3` or `/dev/stderr` work too";

export const progressFileOption = {
  type: "string",
  describe: `FILE: ${PROGRESS_FILE_DESCRIPTION.replaceAll("`", "")}`,
} as const;

/** Start writing the progress stream to `path` (nothing without one); each line is written whole, at once. Returns the way to stop. */
export function attachProgressFile(path: string | undefined): () => void {
  if (!path) return () => {};
  if (!path.startsWith("/dev/")) {
    outputFile(path, "--progress-file", { force: true }); // appended to, never replaced
    mkdirSync(dirname(path), { recursive: true });
  }
  const fd = openSync(path, "a");
  const write = (line: string) => {
    const bytes = Buffer.from(line);
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done);
  };
  return log.addSink({ ...jsonLinesSink(write), close: () => closeSync(fd) });
}
