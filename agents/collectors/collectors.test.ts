import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireCommand, requireRoot } from "../../test/support/require.ts";
import { splitDeployments } from "../collect/deployments.ts";
import { SourceNotAvailable, SourceNotConfigured } from "../errors.ts";
import { pyDumps } from "../pyjson/dumps.ts";
import { parseJson } from "../pyjson/parse.ts";
import { configDrive, driveSystem, parseBlkidExport } from "./config-drive.ts";
import { ec2 } from "./ec2.ts";
import { heat } from "./heat.ts";
import { local } from "./local.ts";
import { request } from "./request.ts";
import { readNodeTrust } from "../trust.ts";
import type { CollectContext, Output } from "./types.ts";

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "collectors-"));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));
const servers: { stop(force?: boolean): void }[] = [];
afterAll(() => servers.forEach((s) => s.stop(true)));

const ctx = (settings: Record<string, string[]>, memo: Record<string, unknown> = {}): CollectContext => ({
  settings,
  cachedir: join(work, "cache"),
  deploymentKeys: ["deployments"],
  signal: AbortSignal.timeout(5000),
  memo,
});
const show = (outputs: Output[]) => outputs.map(([n, c]) => [n, pyDumps(c)]);

const ooo = {
  version: 1,
  node: "web-0",
  role: "web",
  serial: 1,
  image: { name: "web", digest: `sha256:${"0".repeat(64)}` },
  signal_url: "http://127.0.0.1:1/v1/nodes/web-0/signal",
};

describe("heat: ooo's metadata service", () => {
  test("GET /v1/nodes/NODE/metadata with the node's bearer token; ETag makes an unchanged poll a 304", async () => {
    const seen: { auth: string | null; inm: string | null; path: string }[] = [];
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req) {
        seen.push({ auth: req.headers.get("authorization"), inm: req.headers.get("if-none-match"), path: new URL(req.url).pathname });
        if (req.headers.get("if-none-match") === '"v1"') return new Response(null, { status: 304 });
        return Response.json({ ooo, motd: "hi", deployments: [{ id: "1", name: "cfg", group: "os-apply-config", config: { a: 1 } }] }, { headers: { etag: '"v1"' } });
      },
    });
    servers.push(server);
    writeFileSync(join(work, "token"), "s3cret\n");
    const memo = {};
    const settings = { metadata_url: [`http://127.0.0.1:${server.port}/`], node: ["web-0"], token_file: [join(work, "token")] };
    const first = await heat.collect(ctx(settings, memo));
    const second = await heat.collect(ctx(settings, memo));
    expect(show(first)).toEqual(show(second));
    expect(first.map(([n]) => n)).toEqual(["heat", "cfg"]);
    expect(seen).toEqual([
      { auth: "Bearer s3cret", inm: null, path: "/v1/nodes/web-0/metadata" },
      { auth: "Bearer s3cret", inm: '"v1"', path: "/v1/nodes/web-0/metadata" },
    ]);
  });

  test("metadata that is not valid node metadata is refused (the last good copy stays in use)", async () => {
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => Response.json({ ooo: { ...ooo, serial: -1 } }) });
    servers.push(server);
    const settings = { metadata_url: [`http://127.0.0.1:${server.port}`], node: ["web-0"] };
    await expect(heat.collect(ctx(settings))).rejects.toThrow(SourceNotAvailable);
  });

  test.each([
    ["wrong token", 401],
    ["unknown node", 404],
    ["server error", 500],
  ])("%s (HTTP %d) is unavailable", async (_, status) => {
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("no", { status }) });
    servers.push(server);
    await expect(heat.collect(ctx({ metadata_url: [`http://127.0.0.1:${server.port}`], node: ["n"] }))).rejects.toThrow(SourceNotAvailable);
  });

  test("without metadata_url and node it is not configured (quiet)", async () => {
    await expect(heat.collect(ctx({ node: ["n"] }))).rejects.toThrow(SourceNotConfigured);
  });
});

describe("request", () => {
  test("a JSON object at a URL, deployments split; anything else is unavailable", async () => {
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (req) => (new URL(req.url).pathname === "/list" ? Response.json([1]) : new Response('{"a": 1.0, "deployments": [{"name": "d", "config": {"x": 1}}]}')),
    });
    servers.push(server);
    const out = await request.collect(ctx({ metadata_url: [`http://127.0.0.1:${server.port}/md`] }));
    expect(show(out)).toEqual([
      ["request", '{"a": 1.0, "deployments": [{"name": "d", "config": {"x": 1}}]}'],
      ["d", '{"x": 1}'],
    ]);
    await expect(request.collect(ctx({ metadata_url: [`http://127.0.0.1:${server.port}/list`] }))).rejects.toThrow(SourceNotAvailable);
    await expect(request.collect(ctx({}))).rejects.toThrow(SourceNotConfigured);
  });
});

describe("local", () => {
  const dir = () => {
    const d = join(work, "local");
    mkdirSync(d, { recursive: true });
    chmodSync(d, 0o755);
    return d;
  };

  test("each file is an output named by its file name, sorted; hidden files and folders skipped", async () => {
    const d = dir();
    writeFileSync(join(d, "b.json"), "[1]");
    writeFileSync(join(d, "a"), '"x"');
    writeFileSync(join(d, "Z"), "null");
    writeFileSync(join(d, ".hidden"), "{}");
    mkdirSync(join(d, "sub"));
    expect(show(await local.collect(ctx({ path: [d, join(work, "missing")] })))).toEqual([
      ["Z", "null"],
      ["a", '"x"'],
      ["b.json", "[1]"],
    ]);
  });

  test.each([
    ["a world-writable folder", (d: string) => chmodSync(d, 0o777)],
    ["a world-writable file", (d: string) => (writeFileSync(join(d, "f"), "{}"), chmodSync(join(d, "f"), 0o666))],
    ["a file that is not JSON", (d: string) => writeFileSync(join(d, "f"), "{nope")],
  ])("refused as a whole: %s", async (_, spoil) => {
    const d = dir();
    writeFileSync(join(d, "good"), "{}");
    spoil(d);
    await expect(local.collect(ctx({ path: [d] }))).rejects.toThrow(SourceNotAvailable);
  });

  test("a dangling symlink is skipped, not fatal", async () => {
    const d = dir();
    symlinkSync("/nonexistent", join(d, "dangling"));
    expect(await local.collect(ctx({ path: [d] }))).toEqual([]);
  });
});

describe("ec2", () => {
  test("crawls the EC2 layout once, then reuses its cache", async () => {
    const tree: Record<string, string> = {
      "/latest/meta-data/": "ami-id\nhostname\npublic-keys/\nplacement/",
      "/latest/meta-data/ami-id": "ami-123",
      "/latest/meta-data/hostname": "node-1",
      "/latest/meta-data/public-keys/": "0=mykey",
      "/latest/meta-data/public-keys/0/": "openssh-key",
      "/latest/meta-data/public-keys/0/openssh-key": "ssh-ed25519 AAAA",
      "/latest/meta-data/placement/": "availability-zone",
      "/latest/meta-data/placement/availability-zone": "nova",
    };
    let requests = 0;
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req) {
        requests++;
        const body = tree[new URL(req.url).pathname];
        return body === undefined ? new Response("", { status: 404 }) : new Response(body);
      },
    });
    servers.push(server);
    const settings = { metadata_url: [`http://127.0.0.1:${server.port}/latest/meta-data`] };
    const [[name, md]] = (await ec2.collect(ctx(settings))) as [Output];
    expect(name).toBe("ec2");
    expect(pyDumps(md)).toBe(
      '{"ami-id": "ami-123", "hostname": "node-1", "public-keys": {"0": {"openssh-key": "ssh-ed25519 AAAA"}}, "placement": {"availability-zone": "nova"}}',
    );
    mkdirSync(join(work, "cache"));
    writeFileSync(join(work, "cache/ec2.json"), pyDumps(md, { indent: 1 }));
    const before = requests;
    await ec2.collect(ctx(settings));
    expect(requests).toBe(before);
  });
});

describe("config-drive", () => {
  test.each([
    [
      "two devices, escaped spaces",
      "DEVNAME=/dev/vda1\nUUID=x\nTYPE=ext4\n\nDEVNAME=/dev/vdb\nLABEL=config-2\nTYPE=vfat\n\nDEVNAME=/dev/sr0\nLABEL=my\\ disk\nTYPE=iso9660\n",
      [
        { devname: "/dev/vda1", type: "ext4" },
        { devname: "/dev/vdb", label: "config-2", type: "vfat" },
        { devname: "/dev/sr0", label: "my disk", type: "iso9660" },
      ],
    ],
    ["nothing", "", []],
  ])("blkid -o export: %s", (_, text, expected) => {
    expect(parseBlkidExport(text)).toEqual(expected);
  });

  // ext4: this host's kernel has no vfat or iso9660; the collector takes all three.
  test("reads ooo/metadata.json from a real filesystem found by its label", async () => {
    requireRoot();
    requireCommand("mkfs.ext4", "losetup", "blkid", "mount");
    const label = `OOO${process.pid % 100000}`;
    const image = join(work, "drive.img");
    const content = join(work, "content");
    mkdirSync(join(content, "ooo"), { recursive: true });
    writeFileSync(join(content, "ooo/metadata.json"), '{"from": "drive", "deployments": [{"name": "d", "group": "os-apply-config", "config": {"k": 1.5}}]}');
    const sh = (cmd: string) => {
      const r = Bun.spawnSync(["sh", "-c", cmd]);
      if (r.exitCode !== 0) throw new Error(`${cmd}: ${r.stderr}`);
      return r.stdout.toString().trim();
    };
    sh(`truncate -s 4M ${image} && mkfs.ext4 -q -L ${label} -d ${content} ${image}`);
    const loop = sh(`losetup -f --show ${image}`);
    try {
      const out = await configDrive.collect(ctx({ label: [label] }));
      expect(show(out)).toEqual([
        ["config-drive", '{"from": "drive", "deployments": [{"name": "d", "group": "os-apply-config", "config": {"k": 1.5}}]}'],
        ["d", '{"k": 1.5}'],
      ]);
      // The drive was mounted only for the read.
      expect(sh(`grep -c ${loop} /proc/mounts || true`)).toBe("0");
    } finally {
      sh(`losetup -d ${loop}`);
    }
  });

  test("the drive is found by label, mounted read-only for the read, and found and read once per run", async () => {
    const saved = { ...driveSystem };
    const mounts: string[] = [];
    let blkids = 0;
    // It must exist: a drive whose device node is gone is looked for again.
    const fakeDevice = join(work, "fake0");
    writeFileSync(fakeDevice, "");
    const drive = join(work, "drive");
    mkdirSync(join(drive, "ooo"), { recursive: true });
    writeFileSync(join(drive, "ooo/metadata.json"), '{"k": "v"}');
    Object.assign(driveSystem, {
      blkid: async () => {
        blkids++;
        return `DEVNAME=${fakeDevice}\nLABEL=config-2\nTYPE=iso9660\n`;
      },
      mounts: () => "",
      mount: async (dev: string, dir: string) => {
        mounts.push(dev);
        rmSync(dir, { recursive: true });
        symlinkSync(drive, dir);
      },
      umount: async (dir: string) => rmSync(dir),
    });
    try {
      const memo = {};
      expect(show(await configDrive.collect(ctx({}, memo)))).toEqual([["config-drive", '{"k": "v"}']]);
      expect(show(await configDrive.collect(ctx({}, memo)))).toEqual([["config-drive", '{"k": "v"}']]);
      expect(mounts).toEqual([fakeDevice]);
      expect(blkids).toBe(1);
    } finally {
      Object.assign(driveSystem, saved);
    }
  });

  test("what the node trusts comes from the drive and is kept for the other agents; a bad trust block makes the drive unavailable", async () => {
    const saved = { ...driveSystem };
    const savedRunDir = process.env.OOO_RUN_DIR;
    const fakeDevice = join(work, "fake1");
    writeFileSync(fakeDevice, "");
    const drive = join(work, "drive");
    mkdirSync(join(drive, "ooo"), { recursive: true });
    const pub = "untrusted comment: minisign public key 0123456789ABCDEF\nRWTv7cyrkHhWNBRPQSDZ3IFbh4DBXbPMGIRHMqKp+YpGb6g4e9CK6cmS\n";
    writeFileSync(join(drive, "ooo/metadata.json"), JSON.stringify({ k: "v", ooo_trust: { keys: [pub], ca: "-----BEGIN CERTIFICATE-----\n…" } }));
    Object.assign(driveSystem, {
      blkid: async () => `DEVNAME=${fakeDevice}\nLABEL=config-2\nTYPE=iso9660\n`,
      mounts: () => "",
      mount: async (_dev: string, dir: string) => {
        rmSync(dir, { recursive: true });
        symlinkSync(drive, dir);
      },
      umount: async (dir: string) => rmSync(dir),
    });
    process.env.OOO_RUN_DIR = join(work, "run");
    try {
      await configDrive.collect(ctx({}));
      expect(readNodeTrust()).toEqual({ keys: [pub], ca: "-----BEGIN CERTIFICATE-----\n…" });
      writeFileSync(join(drive, "ooo/metadata.json"), JSON.stringify({ ooo_trust: { keys: "not a list" } }));
      await expect(configDrive.collect(ctx({}))).rejects.toThrow(/unusable trust block/);
    } finally {
      Object.assign(driveSystem, saved);
      if (savedRunDir === undefined) delete process.env.OOO_RUN_DIR;
      else process.env.OOO_RUN_DIR = savedRunDir;
    }
  });

  test("no drive with the label is unavailable", async () => {
    await expect(configDrive.collect(ctx({ device: [join(work, "no-such-device")] }))).rejects.toThrow(SourceNotAvailable);
  });
});

describe("deployments", () => {
  const content = parseJson(`{
    "deployments": [
      {"name": "a", "group": "os-apply-config", "config": {"x": 1}},
      {"name": "b", "config": "default group is Heat::Ungrouped"},
      {"name": "c", "group": "script", "config": "#!/bin/sh"},
      {"group": "os-apply-config", "config": {}},
      "not an object",
      {"name": "d", "group": "os-apply-config"},
      {"name": "../../etc/evil", "group": "os-apply-config", "config": {}},
      {"name": "..", "config": {}}
    ],
    "extra": {"name": "e", "config": {}}
  }`);
  test("os-apply-config and ungrouped items become outputs; others, nameless, config-less and path-like ones do not", () => {
    expect(splitDeployments("heat", content, ["deployments"]).map(([n]) => n)).toEqual(["heat", "a", "b"]);
  });
  test("more deployment keys; a key that is not a list is skipped", () => {
    const c = parseJson('{"deployments": {"not": "a list"}, "more": [{"name": "m", "config": {}}]}');
    expect(splitDeployments("x", c, ["deployments", "more"]).map(([n]) => n)).toEqual(["x", "m"]);
  });
});
