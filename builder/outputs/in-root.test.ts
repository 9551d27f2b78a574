import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveInRoot } from "./in-root.ts";

const root = mkdtempSync(join(tmpdir(), "ooo-in-root-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, "usr/bin"), { recursive: true });
mkdirSync(join(root, "boot"));
writeFileSync(join(root, "usr/bin/busybox"), "");
writeFileSync(join(root, "boot/vmlinuz-6.1.0-57-amd64"), "");
symlinkSync("usr/bin", join(root, "bin"));
symlinkSync("boot/vmlinuz-6.1.0-57-amd64", join(root, "vmlinuz"));
symlinkSync("/etc/passwd", join(root, "escape"));
symlinkSync("../../../../../../../boot/vmlinuz-6.1.0-57-amd64", join(root, "usr/bin/up"));

describe("paths as the image resolves them", () => {
  test("links followed inside the root, relative or absolute, never out of it", () => {
    const links: string[] = [];
    expect(resolveInRoot(root, "/bin/busybox", (l) => links.push(l))).toBe("usr/bin/busybox");
    expect(links).toEqual(["bin"]);
    expect(resolveInRoot(root, "vmlinuz")).toBe("boot/vmlinuz-6.1.0-57-amd64");
    expect(resolveInRoot(root, "usr/bin/up")).toBe("boot/vmlinuz-6.1.0-57-amd64");
    // /etc/passwd of the image, which has none: not the host's.
    expect(resolveInRoot(root, "escape")).toBeUndefined();
  });
});
