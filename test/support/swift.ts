import { type Subprocess } from "bun";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitReady } from "./ready.ts";
import { requireCommand } from "./require.ts";
import { freePort } from "../../deployer/daemons.ts";
import { run } from "../../lib/run.ts";

/**
 * A one-node OpenStack Swift on loopback for tests: rings with one replica
 * and one device (a folder), account, container and object servers, a proxy
 * with tempauth (user test:tester, key testing) and the static-large-object
 * middleware, and the memcached tempauth keeps its tokens in. Everything
 * lives in a temp folder and runs as this user; stop() kills the processes
 * it started and removes the folder. Needs Debian's swift-proxy,
 * swift-account, swift-container, swift-object and memcached packages
 * (tools/ensure.sh installs them).
 */
export interface TestSwift {
  authUrl: string;
  user: string;
  key: string;
  dir: string;
  stop(): Promise<void>;
}

const PROGRAMS = [
  "/usr/bin/python3",
  "swift-proxy-server",
  "swift-account-server",
  "swift-container-server",
  "swift-object-server",
  "memcached",
];

const user = () => process.env.USER ?? (process.getuid?.() === 0 ? "root" : "nobody");

function serverConf(dir: string, port: number, kind: "account" | "container" | "object") {
  return `[DEFAULT]
devices = ${dir}/srv
mount_check = false
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
user = ${user()}
swift_dir = ${dir}
log_name = ${kind}-server
log_level = WARNING
recon_cache_path = ${dir}/cache

[pipeline:main]
pipeline = ${kind}-server

[app:${kind}-server]
use = egg:swift#${kind}
${kind === "object" ? "disk_chunk_size = 1048576\nnetwork_chunk_size = 1048576\n" : ""}`;
}

function proxyConf(dir: string, port: number, memcachePort: number) {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
user = ${user()}
swift_dir = ${dir}
log_name = proxy-server
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
object_chunk_size = 1048576
client_chunk_size = 1048576

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${memcachePort}

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
`;
}

export async function startSwift(): Promise<TestSwift> {
  requireCommand(...PROGRAMS);
  const dir = mkdtempSync(join(tmpdir(), "ooo-swift-"));
  mkdirSync(join(dir, "srv", "sdb1"), { recursive: true });
  mkdirSync(join(dir, "cache"), { recursive: true });
  const ports = { proxy: freePort(), account: freePort(), container: freePort(), object: freePort(), memcache: freePort() };
  writeFileSync(
    join(dir, "swift.conf"),
    "[swift-hash]\nswift_hash_path_suffix = ooo-test\nswift_hash_path_prefix = ooo-test\n\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n",
  );
  // One Python process builds the three rings (swift-ring-builder's create,
  // add, rebalance): nine separate invocations cost seconds of start-up.
  const rings = (["account", "container", "object"] as const)
    .map(
      (kind) =>
        `b = RingBuilder(6, 1, 1)\n` +
        `b.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": ${ports[kind]}, "device": "sdb1", "weight": 1})\n` +
        `b.rebalance()\nb.save("${kind}.builder")\nb.get_ring().save("${kind}.ring.gz")\n`,
    )
    .join("");
  // Debian's python3, the one the swift packages installed into (a pyenv shim may come first on PATH).
  await run("/usr/bin/python3", ["-c", `from swift.common.ring import RingBuilder\n${rings}`], { cwd: dir, echo: false, what: "building the test Swift's rings" });
  for (const kind of ["account", "container", "object"] as const) writeFileSync(join(dir, `${kind}-server.conf`), serverConf(dir, ports[kind], kind));
  writeFileSync(join(dir, "proxy-server.conf"), proxyConf(dir, ports.proxy, ports.memcache));

  const logFd = openSync(join(dir, "servers.log"), "a");
  const procs: Subprocess[] = [];
  const names = new Map<Subprocess, string>();
  const spawn = (cmd: string[]) => {
    const p = Bun.spawn(cmd, { cwd: dir, stdout: logFd, stderr: logFd, stdin: "ignore" });
    procs.push(p);
    names.set(p, cmd[0]!);
  };
  spawn(["memcached", "-l", "127.0.0.1", "-p", String(ports.memcache), "-U", "0", "-m", "64", ...(process.getuid?.() === 0 ? ["-u", "root"] : [])]);
  for (const kind of ["account", "container", "object"]) spawn([`swift-${kind}-server`, join(dir, `${kind}-server.conf`), "-v"]);
  spawn(["swift-proxy-server", join(dir, "proxy-server.conf"), "-v"]);

  const stop = async () => {
    for (const p of procs) p.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    closeSync(logFd);
    rmSync(dir, { recursive: true, force: true });
  };
  const authUrl = `http://127.0.0.1:${ports.proxy}/auth/v1.0`;
  // Ready when a token works against the account (all four servers answer).
  await waitReady(
    "the test Swift",
    async () => {
      const auth = await fetch(authUrl, { headers: { "X-Auth-User": "test:tester", "X-Auth-Key": "testing" } });
      const token = auth.headers.get("X-Auth-Token");
      const url = auth.headers.get("X-Storage-Url");
      if (!auth.ok || !token || !url) return false;
      const probe = await fetch(`${url}/ooo-probe`, { method: "PUT", headers: { "X-Auth-Token": token } });
      return probe.status === 201 || probe.status === 202;
    },
    {
      died: () => {
        const dead = procs.find((p) => p.exitCode !== null);
        return dead && `${names.get(dead)} exited ${dead.exitCode}`;
      },
      logs: () => Bun.file(join(dir, "servers.log")).text(),
      stop,
    },
  );
  return { authUrl, user: "test:tester", key: "testing", dir, stop };
}
