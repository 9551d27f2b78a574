import { readFileSync } from "node:fs";

/**
 * getpwnam/getpwuid and getgrnam/getgrgid from the files databases. The
 * agent is a static binary without Python's NSS bindings; images keep their
 * accounts in /etc/passwd and /etc/group, which is what `files` reads.
 */
interface Entry {
  name: string;
  id: number;
}

function readDb(path: string): Entry[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  const out: Entry[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const fields = line.split(":");
    const id = Number(fields[2]);
    if (fields[0] && Number.isInteger(id)) out.push({ name: fields[0], id });
  }
  return out;
}

export const accountFiles = { passwd: "/etc/passwd", group: "/etc/group" };

function lookup(db: string, q: { name?: string; id?: number }): number | undefined {
  const entries = readDb(db);
  const hit = q.name !== undefined ? entries.find((e) => e.name === q.name) : entries.find((e) => e.id === q.id);
  return hit?.id;
}

export const lookupUser = (q: { name?: string; id?: number }) => lookup(accountFiles.passwd, q);
export const lookupGroup = (q: { name?: string; id?: number }) => lookup(accountFiles.group, q);
