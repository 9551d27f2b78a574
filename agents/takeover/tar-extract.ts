import { spawn } from "node:child_process";

/**
 * `tar -x` into a freshly made filesystem, fed from memory (stream-install.ts),
 * so that modes, numeric owners, xattrs and mtimes land exactly as the
 * canonical stream says. Only there: the tree holds nothing but what the
 * stream made, and GNU tar defers a symlink that points out (absolute or
 * with "..") to the end, so no entry is written through one. A copy of a
 * running root is patched by write-entry.ts instead.
 */
export function tarExtract(target: string, extraArgs: string[] = []) {
  const tar = spawn("tar", ["--numeric-owner", "--xattrs", "--xattrs-include=*", ...extraArgs, "-xpf", "-", "-C", target], {
    stdio: ["pipe", "ignore", "pipe"],
  });
  let tarError = "";
  tar.stderr.on("data", (d: Buffer) => (tarError = (tarError + d.toString()).slice(-4000)));
  const exited = new Promise<number>((resolve) => tar.on("close", (code) => resolve(code ?? 1)));
  let pipeError: Error | undefined;
  tar.stdin.on("error", (e) => (pipeError = e));
  return {
    write: (data: Uint8Array) =>
      new Promise<void>((resolve, reject) => {
        if (pipeError) return reject(pipeError);
        if (tar.stdin.write(data)) resolve();
        else tar.stdin.once("drain", resolve);
      }),
    /** Close the input; throws if tar failed. */
    async end() {
      tar.stdin.end();
      const code = await exited;
      if (code !== 0) throw new Error(`tar failed writing the new root (exit ${code}): ${tarError.trim().split("\n").slice(-5).join("; ")}`);
    },
    /** Close the input after a failure of ours; tar's own exit no longer matters. */
    abort() {
      tar.stdin.end();
    },
  };
}
