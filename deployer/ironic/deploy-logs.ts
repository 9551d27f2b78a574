import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { capture } from "../../lib/run.ts";

/**
 * The agent's logs Ironic keeps after a failed deploy ([agent]
 * deploy_logs_local_path: NODE-UUID_NAME_INSTANCE_TIME.tar.gz, the tar.gz
 * the agent's log.collect_system_logs sent): the newest of the node's since
 * the deploy began, its files' last lines.
 */
export async function agentLogTail(dir: string, nodeUuid: string, since: number, lines = 25): Promise<string | undefined> {
  let newest: { file: string; at: number } | undefined;
  try {
    for (const name of readdirSync(dir)) {
      if (!name.startsWith(`${nodeUuid}_`) || !name.endsWith(".tar.gz")) continue;
      const at = statSync(join(dir, name)).mtimeMs;
      if (at >= since - 1_000 && (!newest || at > newest.at)) newest = { file: join(dir, name), at };
    }
  } catch {
    return undefined;
  }
  if (!newest) return undefined;
  // tar -O: the members' contents one after the other (the agent sends its log, a file or two).
  const text = await capture("tar", ["-xzOf", newest.file]).catch(() => undefined);
  return text?.trimEnd().split("\n").slice(-lines).join("\n") || undefined;
}
