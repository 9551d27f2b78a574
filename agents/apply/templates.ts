import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

export const DEFAULT_TEMPLATES_DIR = "/usr/libexec/os-apply-config/templates";
export const CONTROL_SUFFIX = ".oac";

/** The templates root: $OS_CONFIG_APPLIER_TEMPLATES, else /usr/libexec/os-apply-config/templates. */
export function defaultTemplatesDir(env = process.env): string {
  return env.OS_CONFIG_APPLIER_TEMPLATES ?? DEFAULT_TEMPLATES_DIR;
}

export interface TemplateFile {
  /** The template on disk. */
  source: string;
  /** Its path relative to the root, `/`-separated: where it lands under the output root. */
  relative: string;
}

/**
 * Every template under `root`, as os.walk finds them: symlinked directories
 * are neither entered nor rendered, `*.oac` control files are skipped, a
 * missing root yields nothing. Sorted bytewise so runs are repeatable (os.walk
 * follows directory order).
 */
export function findTemplates(root: string): TemplateFile[] {
  const out: TemplateFile[] = [];
  const walk = (dir: string, rel: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    for (const e of entries) {
      const path = join(dir, e.name);
      const relative = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        walk(path, relative);
        continue;
      }
      if (e.isSymbolicLink() && isDirectory(path)) continue;
      if (e.name.endsWith(CONTROL_SUFFIX)) continue;
      out.push({ source: path, relative });
    }
  };
  walk(root, "");
  return out;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
