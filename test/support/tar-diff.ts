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

/** The entries that differ between two tars, for a readable failure message. */
export async function tarDiff(a: string, b: string, limit = 20): Promise<string[]> {
  const [ea, eb] = await Promise.all([entries(a), entries(b)]);
  const names = [...new Set([...ea.keys(), ...eb.keys()])].sort();
  const diffs: string[] = [];
  for (const n of names) {
    const x = ea.get(n);
    const y = eb.get(n);
    if (x === y) continue;
    diffs.push(!x ? `only in second: ${n}` : !y ? `only in first: ${n}` : `differs: ${n}\n      ${x}\n      ${y}`);
    if (diffs.length >= limit) break;
  }
  return diffs;
}
