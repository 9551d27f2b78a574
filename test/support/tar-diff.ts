import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { extract } from "tar-stream";

/** What each entry of a tar is: its header fields and the sha256 of its data. */
async function entries(file: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on("entry", (header, stream, next) => {
      const h = createHash("sha256");
      stream.on("data", (d: unknown) => void h.update(d as Buffer));
      stream.on("end", () => {
        const { name, mode, uid, gid, size, mtime, type, linkname, pax } = header;
        out.set(name, JSON.stringify({ mode, uid, gid, size, mtime: mtime?.getTime(), type, linkname, pax, data: h.digest("hex") }));
        next();
      });
      stream.on("error", reject);
    });
    ex.on("finish", resolve);
    ex.on("error", reject);
  });
  createReadStream(file).pipe(ex);
  await done;
  return out;
}

/** An entry that differs between two tars: how each describes it (undefined: it lacks the entry). */
export interface EntryDiff {
  name: string;
  first?: string;
  second?: string;
  /** A regular file in both, with different bytes. */
  contentDiffers: boolean;
}

/** The entries that differ between two tars, in name order. */
export async function differingEntries(a: string, b: string, limit = Infinity): Promise<EntryDiff[]> {
  const [ea, eb] = await Promise.all([entries(a), entries(b)]);
  const names = [...new Set([...ea.keys(), ...eb.keys()])].sort();
  const diffs: EntryDiff[] = [];
  for (const name of names) {
    const first = ea.get(name);
    const second = eb.get(name);
    if (first === second) continue;
    const [x, y] = [first, second].map((e) => (e ? (JSON.parse(e) as { type: string; data: string }) : undefined));
    diffs.push({ name, first, second, contentDiffers: x?.type === "file" && y?.type === "file" && x.data !== y.data });
    if (diffs.length >= limit) break;
  }
  return diffs;
}

/** The entries that differ between two tars, for a readable failure message. */
export async function tarDiff(a: string, b: string, limit = 20): Promise<string[]> {
  return (await differingEntries(a, b, limit)).map(({ name, first, second }) =>
    !first ? `only in second: ${name}` : !second ? `only in first: ${name}` : `differs: ${name}\n      ${first}\n      ${second}`,
  );
}
