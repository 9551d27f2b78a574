import { type Subprocess } from "bun";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../deployer/daemons.ts";
import { run } from "../../lib/run.ts";
import { waitReady } from "./ready.ts";
import { requireCommand } from "./require.ts";

/**
 * A real OpenStack Glance (Debian's python3-glance) on loopback for tests:
 * the v2 API over a sqlite database and a file store, without Keystone (the
 * no-auth pipeline of Glance's own glance-api-paste.ini, where every request
 * is an admin's). One process (workers = 0) so that stop() leaves nothing
 * running; everything lives in a temp folder that stop() removes.
 * `imagesDir` is the file store: a test may corrupt what Glance keeps.
 */
export interface TestGlance {
  url: string;
  dir: string;
  imagesDir: string;
  /** The glance-api process (benchmarks read its CPU time). */
  pid: number;
  stop(): Promise<void>;
}

// Debian's python3, the one python3-glance installed into (a pyenv shim may come first on PATH).
const PYTHON = "/usr/bin/python3";
const GLANCE = "/usr/lib/python3/dist-packages/glance/cmd/api.py";

// The no-auth pipeline of Glance's etc/glance-api-paste.ini, without the
// middlewares (cors, healthcheck, osprofiler) that need settings of their own.
const PASTE = `[pipeline:glance-api]
pipeline = versionnegotiation unauthenticated-context rootapp

[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app

[app:apiversions]
paste.app_factory = glance.api.versions:create_resource

[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory

[filter:versionnegotiation]
paste.filter_factory = glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory

[filter:unauthenticated-context]
paste.filter_factory = glance.api.middleware.context:UnauthenticatedContextMiddleware.factory
`;

function apiConf(dir: string, port: number) {
  return `[DEFAULT]
bind_host = 127.0.0.1
bind_port = ${port}
workers = 0
enabled_backends = fs:file
log_file = ${dir}/api.log

[database]
connection = sqlite:///${dir}/glance.sqlite

[paste_deploy]
config_file = ${dir}/glance-api-paste.ini

[glance_store]
default_backend = fs

[fs]
filesystem_store_datadir = ${dir}/images

[os_glance_staging_store]
filesystem_store_datadir = ${dir}/staging

[os_glance_tasks_store]
filesystem_store_datadir = ${dir}/tasks
`;
}

/** Say up front when Glance is missing (before minutes of other work). */
export const requireGlance = () => requireCommand(PYTHON, GLANCE);

const main = (module: string) => `import sys; from glance.cmd.${module} import main; sys.argv[0] = "glance-${module}"; sys.exit(main())`;

export async function startGlance(): Promise<TestGlance> {
  requireGlance();
  const dir = mkdtempSync(join(tmpdir(), "ooo-glance-"));
  const port = freePort();
  const conf = join(dir, "glance-api.conf");
  writeFileSync(join(dir, "glance-api-paste.ini"), PASTE);
  writeFileSync(conf, apiConf(dir, port));
  await run(PYTHON, ["-c", main("manage"), "--config-file", conf, "db_sync"], { cwd: dir, echo: false, what: "glance-manage db_sync" });

  const logFd = openSync(join(dir, "console.log"), "a");
  const proc: Subprocess = Bun.spawn([PYTHON, "-c", main("api"), "--config-file", conf], {
    cwd: dir,
    stdout: logFd,
    stderr: logFd,
    stdin: "ignore",
  });
  const stop = async () => {
    proc.kill("SIGKILL");
    await proc.exited;
    closeSync(logFd);
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  await waitReady("the test Glance", async () => (await fetch(`${url}/v2/images`)).ok, {
    died: () => (proc.exitCode !== null ? `exited ${proc.exitCode}` : undefined),
    logs: async () => (await Promise.all(["console.log", "api.log"].map((f) => Bun.file(join(dir, f)).text().catch(() => "")))).join("\n"),
    stop,
  });
  return { url, dir, imagesDir: join(dir, "images"), pid: proc.pid, stop };
}
