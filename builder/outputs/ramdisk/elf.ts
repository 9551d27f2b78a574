import { capture } from "../../../lib/run.ts";

/**
 * What a dynamically linked program needs before it runs: its interpreter
 * (the dynamic loader) and its DT_NEEDED libraries, read with binutils'
 * readelf (it reads any ELF file, whatever the host; nothing of the image
 * is executed). A static program, or a script, needs neither.
 */
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

export interface ElfNeeds {
  interpreter?: string;
  needed: string[];
}

export function parseReadelf(programHeaders: string, dynamic: string): ElfNeeds {
  const interpreter = /\[Requesting program interpreter: ([^\]]+)\]/.exec(programHeaders)?.[1];
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
  return { interpreter, needed };
}

export async function elfNeeds(file: string): Promise<ElfNeeds> {
  const head = Buffer.from(await Bun.file(file).slice(0, 4).arrayBuffer());
  if (!head.equals(ELF_MAGIC)) return { needed: [] };
  const [program, dynamic] = await Promise.all([
    capture("readelf", ["-l", "-W", file], { what: `reading the program headers of ${file}` }),
    capture("readelf", ["-d", "-W", file], { what: `reading the dynamic section of ${file}` }),
  ]);
  return parseReadelf(program, dynamic);
}

/** Where the dynamic loader looks for a library by default (Debian: multiarch folders first). */
export function librarySearchPath(arch: string): string[] {
  const triplet = { amd64: "x86_64-linux-gnu", arm64: "aarch64-linux-gnu", i386: "i386-linux-gnu", ppc64el: "powerpc64le-linux-gnu", s390x: "s390x-linux-gnu" }[arch];
  return [...(triplet ? [`/lib/${triplet}`, `/usr/lib/${triplet}`] : []), "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"];
}
