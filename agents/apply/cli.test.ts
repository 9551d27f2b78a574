import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MetadataError, TemplateError } from "../errors.ts";
import { applyMain } from "./cli.ts";

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "oac-cli-"));
  mkdirSync(join(work, "t/etc"), { recursive: true });
  writeFileSync(join(work, "t/etc/motd"), "{{greeting}}\n");
  writeFileSync(join(work, "a.json"), '{"greeting": "from a"}');
  writeFileSync(join(work, "b.json"), '{"greeting": "from b"}');
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

async function stdoutOf(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => (chunks.push(String(s)), true)) as typeof process.stdout.write;
  try {
    const code = await fn();
    return { code, out: chunks.join("") };
  } finally {
    process.stdout.write = write;
  }
}
const out = () => join(work, "out");
const motd = () => readFileSync(join(out(), "etc/motd"), "utf8");
const base = () => ["-t", join(work, "t"), "-o", out(), "--fallback-metadata"];

describe("os-apply-config's command line", () => {
  test("-m takes several files; a repeated -m keeps only the last one's (as argparse does)", async () => {
    await applyMain([...base(), "-m", join(work, "b.json"), join(work, "a.json")], {});
    expect(motd()).toBe("from a\n");
    await applyMain([...base(), "-m", join(work, "a.json"), "-m", join(work, "b.json")], {});
    expect(motd()).toBe("from b\n");
  });

  test("without -m: $OS_CONFIG_FILES, else the list in --os-config-files", async () => {
    await applyMain(base(), { OS_CONFIG_FILES: `${join(work, "a.json")}:${join(work, "b.json")}` });
    expect(motd()).toBe("from b\n");
    writeFileSync(join(work, "list.json"), JSON.stringify([join(work, "b.json"), join(work, "a.json")]));
    await applyMain([...base(), "--os-config-files", join(work, "list.json")], {});
    expect(motd()).toBe("from a\n");
  });

  test("--validate renders (and runs executables) but writes nothing", async () => {
    writeFileSync(join(work, "t/etc/script"), `#!/bin/sh\ntouch ${work}/script-ran\n`);
    chmodSync(join(work, "t/etc/script"), 0o755);
    expect(await applyMain([...base(), "--validate", "-m", join(work, "a.json")], {})).toBe(0);
    expect(existsSync(out())).toBe(false);
    expect(existsSync(join(work, "script-ran"))).toBe(true);
  });

  test("--print-templates", async () => {
    expect(await stdoutOf(() => applyMain(["--print-templates"], { OS_CONFIG_APPLIER_TEMPLATES: "/x/y" }))).toEqual({ code: 0, out: "/x/y\n" });
    expect((await stdoutOf(() => applyMain(["--print-templates"], {}))).out).toBe("/usr/libexec/os-apply-config/templates\n");
  });

  test("--key prints, --boolean-key answers with its exit code", async () => {
    expect(await stdoutOf(() => applyMain(["--fallback-metadata", "--key", "greeting", "--type", "raw", "-m", join(work, "a.json")], {}))).toEqual({
      code: 0,
      out: "from a\n",
    });
    writeFileSync(join(work, "c.json"), '{"on": true}');
    expect(await applyMain(["--fallback-metadata", "--boolean-key", "on", "-m", join(work, "c.json")], {})).toBe(0);
  });

  test("errors: a bad template or metadata file stops everything before writing", async () => {
    writeFileSync(join(work, "t/etc/zbad"), "{{#a}}{{/b}}");
    await expect(applyMain([...base(), "-m", join(work, "a.json")], {})).rejects.toThrow(TemplateError);
    expect(existsSync(out())).toBe(false);
    writeFileSync(join(work, "bad.json"), "{");
    await expect(applyMain([...base(), "-m", join(work, "bad.json")], {})).rejects.toThrow(MetadataError);
  });

  test("an executable template that does not read its (large) stdin is fine", async () => {
    writeFileSync(join(work, "big.json"), JSON.stringify({ greeting: "x", big: "y".repeat(1 << 20) }));
    writeFileSync(join(work, "t/etc/quick"), "#!/bin/sh\necho quick\n");
    chmodSync(join(work, "t/etc/quick"), 0o755);
    expect(await applyMain([...base(), "-m", join(work, "big.json")], {})).toBe(0);
    expect(readFileSync(join(out(), "etc/quick"), "utf8")).toBe("quick\n");
  });
});
