import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { requireCommand, requireRoot } from "../support/require.ts";
import { CompletionSignal } from "../../wire/signal.ts";

/**
 * The agent elements in a real Debian root, short of booting it: build
 * debian-minimal + os-collect-config + os-apply-config + os-refresh-config,
 * then, chrooted into the root (with /proc, /sys, /dev as on a node), run
 * the image's os-collect-config as its systemd unit would. A labelled
 * config drive (a loop device) gives the first metadata, which renders
 * /etc/os-collect-config.conf through the element's template; the collector
 * takes the same settings from it at once and polls the metadata service on
 * 127.0.0.1 with the node's token in that first cycle, so one
 * os-refresh-config run renders the files (the conf included) and the
 * completion signal arrives.
 * (The VM test boots the same image under qemu.)
 */
const REPO = resolve(import.meta.dir, "../..");
let work: string;
let root: string;
let loop: string | undefined;
let server: ReturnType<typeof Bun.serve>;
const signals: CompletionSignal[] = [];

/** Run argv (no shell: the clone's path may hold anything). */
function sh(argv: string[], options: { timeoutMs?: number; cwd?: string } = {}) {
  const r = Bun.spawnSync(argv, { timeout: options.timeoutMs, cwd: options.cwd });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (${r.exitCode}):\n${r.stderr.toString().slice(-3000)}`);
  return r.stdout.toString();
}

beforeAll(() => {
  requireRoot();
  requireCommand("mmdebstrap", "mkfs.ext4", "losetup", "unshare", "chroot", "tar");
  work = mkdtempSync(join(tmpdir(), "agent-elements-"));
  root = join(work, "root");
  sh([process.execPath, "cli/ooo.ts", "build-image", "-o", `${work}/node`, "debian-minimal", "os-collect-config", "os-apply-config", "os-refresh-config", "-t", "tar"], {
    cwd: REPO,
    timeoutMs: 240_000,
  });
  mkdirSync(root);
  sh(["tar", "-xf", `${work}/node.tar`, "-C", root]);
  rmSync(join(work, "node.tar"));

  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      if (req.headers.get("authorization") !== "Bearer node-token") return new Response("no", { status: 401 });
      if (url.pathname === "/v1/nodes/web-0/metadata") {
        return Response.json({
          ooo: {
            version: 1,
            node: "web-0",
            role: "web",
            serial: 1,
            image: { name: "node", digest: `sha256:${"e".repeat(64)}` },
            signal_url: `http://127.0.0.1:${server.port}/v1/nodes/web-0/signal`,
          },
          "os-collect-config": bootstrap()["os-collect-config"],
          motd: "configured by ooo",
        });
      }
      if (url.pathname === "/v1/nodes/web-0/signal") {
        signals.push(CompletionSignal.parse(await req.json()));
        return new Response(null, { status: 204 });
      }
      return new Response("not found", { status: 404 });
    },
  });

  // What a deployer puts on the config drive: where the metadata service is.
  const drive = join(work, "drive");
  mkdirSync(join(drive, "ooo"), { recursive: true });
  writeFileSync(join(drive, "ooo/metadata.json"), JSON.stringify(bootstrap()));
  sh(["truncate", "-s", "4M", `${work}/drive.img`]);
  sh(["mkfs.ext4", "-q", "-L", "config-2", "-d", drive, `${work}/drive.img`]);
  loop = sh(["losetup", "-f", "--show", `${work}/drive.img`]).trim();

  // A template of the node's own, beside the element's.
  writeFileSync(join(root, "usr/libexec/os-apply-config/templates/etc/motd"), "{{motd}}\n");
}, 300_000);

function bootstrap() {
  return {
    "os-collect-config": {
      collectors: ["config-drive", "heat", "local"],
      polling_interval: 1,
      heat: { metadata_url: `http://127.0.0.1:${server.port}`, node: "web-0", token: "node-token" },
    },
  };
}

afterAll(() => {
  server?.stop(true);
  if (loop) sh(["losetup", "-d", loop]);
  if (work) rmSync(work, { recursive: true, force: true });
}, 60_000);

describe("agent elements in a Debian root", () => {
  test("the image's os-collect-config: config drive → its own config → metadata service → configured → signalled", async () => {
    expect(statSync(join(root, "etc/systemd/system/multi-user.target.wants/os-collect-config.service")).isFile()).toBe(true);
    const child = Bun.spawn(
      [
        "unshare", "--mount", "--propagation", "private", "sh", "-c",
        'mount -t proc proc "$1/proc" && mount -t sysfs sysfs "$1/sys" && mount --bind /dev "$1/dev" && ' +
          'mount -t tmpfs tmpfs "$1/run" && exec chroot "$1" /usr/local/bin/os-collect-config',
        "sh", root,
      ],
      { stdout: "pipe", stderr: "pipe", env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/root" } },
    );
    const output = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
    const committed = join(root, "var/lib/os-collect-config/heat.json.last");
    try {
      // The signal comes from os-refresh-config; the commit follows when it has exited.
      const until = Date.now() + 30_000;
      while (!(signals.length && existsSync(committed)) && Date.now() < until && child.exitCode === null) await Bun.sleep(100);
    } finally {
      child.kill("SIGTERM");
      await child.exited;
    }
    const [stdout, stderr] = await output;
    expect(signals.length, `${stdout}\n${stderr}`).toBeGreaterThan(0);
    expect(signals[0]).toMatchObject({ status: "SUCCESS", id: "web-0:1", metadata_serial: 1 });
    expect(Object.keys(signals[0]!.data.timings!)).toContain("configure.d/20-os-apply-config");
    expect(readFileSync(join(root, "etc/motd"), "utf8")).toBe("configured by ooo\n");
    const conf = join(root, "etc/os-collect-config.conf");
    expect(readFileSync(conf, "utf8")).toContain("[heat]\nmetadata_url = http://127.0.0.1:");
    expect(statSync(conf).mode & 0o777).toBe(0o600);
    expect(existsSync(committed)).toBe(true);
    // One configuration run on first boot, already with the service's metadata.
    expect(`${stdout}\n${stderr}`.match(/Executing os-refresh-config/g)?.length, `${stdout}\n${stderr}`).toBe(1);
  }, 60_000);
});
