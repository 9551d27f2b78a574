import { existsSync, lstatSync, readdirSync, rmSync, truncateSync } from "node:fs";
import { join } from "node:path";

/**
 * What disk-image-create does to the root after cleanup.d, plus what a
 * reproducible, configuration-free golden root needs:
 * - /tmp emptied (the hooks mount point included);
 * - every file under /var/log truncated (DIB), and apt/dpkg logs with them.
 */
export function finalizeRoot(root: string) {
  const tmp = join(root, "tmp");
  if (existsSync(tmp)) for (const name of readdirSync(tmp)) rmSync(join(tmp, name), { recursive: true, force: true });

  const truncateUnder = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = lstatSync(p);
      if (st.isDirectory()) truncateUnder(p);
      else if (st.isFile() && st.size > 0) truncateSync(p, 0);
    }
  };
  truncateUnder(join(root, "var/log"));
}
