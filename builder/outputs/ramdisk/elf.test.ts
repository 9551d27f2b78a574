import { describe, expect, test } from "bun:test";
import { elfNeeds, parseReadelf } from "./elf.ts";

describe("what a program needs before it runs", () => {
  test("readelf's interpreter and NEEDED lines", () => {
    const program = "  INTERP  0x000318 ...\n      [Requesting program interpreter: /lib64/ld-linux-x86-64.so.2]\n";
    const dynamic = " 0x0000000000000001 (NEEDED)             Shared library: [libfdisk.so.1]\n 0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]\n 0x000000000000000c (INIT) 0x3000\n";
    expect(parseReadelf(program, dynamic)).toEqual({ interpreter: "/lib64/ld-linux-x86-64.so.2", needed: ["libfdisk.so.1", "libc.so.6"] });
  });

  test("a real program of this host, and a script (nothing)", async () => {
    const sfdisk = await elfNeeds("/usr/sbin/sfdisk");
    expect(sfdisk.interpreter).toMatch(/ld-linux/);
    expect(sfdisk.needed).toContain("libfdisk.so.1");
    expect(await elfNeeds("/usr/bin/ldd")).toEqual({ needed: [] });
  });
});
