import { EXIT, OooError } from "../lib/errors.ts";

/**
 * The deployer's named errors: what went wrong and what the user needs to
 * fix it. Only the CLI turns them into text and exit codes.
 */

/** Another `ooo deploy` (or delete, scale) holds the stack's lock. */
export class StackBusy extends OooError {
  readonly code = "stack-busy";
  constructor(
    readonly stateDir: string,
    readonly holder: string,
  ) {
    super(`another ooo command is working on this stack (${holder})`, {
      hint: `Wait for it to finish. If it is gone, its lock in ${stateDir} is released automatically.`,
    });
  }
}

/** A role's image reference names no image its nodes can run. */
export class RoleImageUnusable extends OooError {
  readonly code = "role-image-unusable";
  constructor(
    readonly role: string,
    readonly ref: string,
    reason: string,
    hint = "`ooo store list` shows what the store has; `ooo publish` puts a build there.",
  ) {
    super(`role ${role}: image ${ref}: ${reason}`, { hint });
  }
}

/** Every image problem of a deploy, found before any node is touched. */
export class RoleImagesUnusable extends OooError {
  readonly code = "role-images-unusable";
  constructor(readonly problems: RoleImageUnusable[]) {
    super(`nothing was powered on; the stack's images are not all usable:\n${problems.map((p) => `  - ${p.message}`).join("\n")}`, {
      hint: problems[0]?.hint,
    });
  }
}

/** Downloaded bytes did not match the digest the manifest promised. */
export class ImageCorrupt extends OooError {
  readonly code = "image-corrupt";
  constructor(what: string, expected: string, got: string) {
    super(`${what}: expected sha256:${expected}, got sha256:${got}; the download was discarded`);
  }
}

/** A node driver could not do what it was asked (start qemu, write a disk …). */
export class DriverFailed extends OooError {
  readonly code = "driver-failed";
  constructor(
    readonly node: string,
    message: string,
    options?: { cause?: unknown; hint?: string },
  ) {
    super(`${node}: ${message}`, options);
  }
}

/** The stack names a driver ooo does not have. */
export class UnknownDriver extends OooError {
  readonly code = "unknown-driver";
  override readonly exitCode = EXIT.usage.code;
  constructor(name: string, known: string[]) {
    super(`no node driver called ${name} (known: ${known.join(", ")})`);
  }
}

/**
 * Nodes would get a token that is not read-only: every node's metadata
 * carries the store token, so a write token there lets any node (or anyone
 * who reads one) publish, retag or delete images.
 */
export class NodeTokenNotReadOnly extends OooError {
  readonly code = "node-token-not-read-only";
  override readonly exitCode = EXIT.usage.code;
  constructor(
    readonly setting: string,
    readonly url: string,
    scope: "write" | "unknown",
  ) {
    super(
      scope === "write"
        ? `the store token from ${setting} is a write token of ${url}: nodes get this token, and may only get a read-only one`
        : `${url} cannot say whether the token from ${setting} is read-only (it has no /v2/ooo/whoami): nodes get this token, and may only get a read-only one`,
      {
        hint:
          "Give the stack a read token: `store: {url: …, token_file: FILE}` in the stack file, FILE's first line a token from the store's read tokens (OOO_STORE_READ_TOKEN); keep the write token for publishing only (ooo publish --token-file).",
      },
    );
  }
}

/** The embedded store or the metadata service would not start. */
export class ServiceFailed extends OooError {
  readonly code = "service-failed";
  constructor(service: string, reason: string, readonly logFile?: string) {
    super(`${service} did not start: ${reason}${logFile ? ` (log: ${logFile})` : ""}`);
  }
}

/** The deploy ended with nodes that failed; the others are up. */
export class DeployFailed extends OooError {
  readonly code = "deploy-failed";
  constructor(readonly failed: { node: string; error: string }[]) {
    super(
      `${failed.length} node${failed.length === 1 ? "" : "s"} failed:\n${failed
        .map((f) => `  - ${f.node}: ${f.error.split("\n").join("\n      ")}`)
        .join("\n")}`,
      { hint: "Fix the cause and run `ooo deploy` again: it retries only the failed nodes." },
    );
  }
}

/** `ooo status` or `delete` on a stack that was never deployed. */
export class NoState extends OooError {
  readonly code = "no-state";
  override readonly exitCode = EXIT.usage.code;
  constructor(stateDir: string) {
    super(`this stack has no state in ${stateDir}: it was never deployed (or --state-dir points elsewhere)`);
  }
}

/** A node named on the command line is not part of the stack. */
export class UnknownNode extends OooError {
  readonly code = "unknown-node";
  override readonly exitCode = EXIT.usage.code;
  constructor(node: string, known: string[]) {
    super(`no node ${node} in this stack (nodes: ${known.join(", ") || "none"})`);
  }
}

export class NothingToUpgrade extends OooError {
  readonly code = "nothing-to-upgrade";
  override readonly exitCode = EXIT.usage.code;
  constructor(what: string) {
    super(`nothing to upgrade: ${what} has no deployed node`, { hint: "Deploy the stack first (ooo deploy STACK)." });
  }
}

export class UpgradeImpossible extends OooError {
  readonly code = "upgrade-impossible";
  override readonly exitCode = EXIT.usage.code;
  constructor(detail: string) {
    super(`cannot upgrade: ${detail}`, { hint: "Lower min_in_service, or add nodes to the role." });
  }
}

/** Nodes an in-place upgrade cannot reach: their root is not running (still being deployed, or gone). */
export class NodesNotRunning extends OooError {
  readonly code = "nodes-not-running";
  override readonly exitCode = EXIT.usage.code;
  constructor(nodes: { name: string; state: string }[]) {
    super(`cannot upgrade in place: ${nodes.map((n) => `${n.name} is ${n.state}`).join(", ")}; nothing was changed`, {
      hint: "An in-place upgrade needs the node's agents running: finish its deploy first (ooo deploy STACK), or name other nodes.",
    });
  }
}

export class UpgradeFailed extends OooError {
  readonly code = "upgrade-failed";
  constructor(readonly nodes: string[]) {
    super(`${nodes.length} node${nodes.length === 1 ? "" : "s"} did not upgrade:\n${nodes.map((n) => `  - ${n}`).join("\n")}`);
  }
}

/** The stack's VMs do not fit in this host (checked before anything starts: capacity.ts). */
export class HostTooSmall extends OooError {
  readonly code = "host-too-small";
  override readonly exitCode = EXIT.missing.code;
  constructor(what: string, hint: string) {
    super(`${what}: nothing was started`, { hint });
  }
}

/** A credentials file (a BMC's, an Ironic's) that cannot be used: missing, readable by others, not {username, password}. Never shows its content. */
export class BmcCredentialsUnusable extends OooError {
  readonly code = "bmc-credentials-unusable";
  constructor(
    readonly file: string,
    reason: string,
    what = "BMC",
  ) {
    super(`${what} credentials ${file}: ${reason}`, { hint: "Write it as YAML with username: and password:, mode 0600 (umask 077 before writing it)." });
  }
}

/** A machine's BMC did not do what it was asked (unreachable, refused the login, answered an error). */
export class BmcFailed extends OooError {
  readonly code = "bmc-failed";
  constructor(
    readonly machine: string,
    message: string,
    options?: { cause?: unknown; hint?: string },
  ) {
    super(`machine ${machine}'s BMC: ${message}`, options);
  }
}

/** Machines that cannot be used, every one named, found before any machine was touched. */
export class MachinesUnusable extends OooError {
  readonly code = "machines-unusable";
  constructor(readonly problems: { machine: string; message: string }[]) {
    super(`nothing was touched; ${problems.length === 1 ? "a machine is" : `${problems.length} machines are`} not usable:\n${problems.map((p) => `  - ${p.machine}: ${p.message}`).join("\n")}`, {
      hint: "Fix the inventory (BMC address, credentials file) or the BMC, then run the command again.",
    });
  }
}

/** The stack's bare-metal machines need a provisioning network the stack does not describe well enough. */
export class ProvisioningUnusable extends OooError {
  readonly code = "provisioning-unusable";
  constructor(message: string, hint?: string) {
    super(`provisioning network: ${message}`, hint ? { hint } : undefined);
  }
}

/**
 * Ironic did not do what it was asked: unreachable, the login refused, or
 * an error it answered (its own message, and the node it was about).
 */
export class IronicFailed extends OooError {
  readonly code = "ironic-failed";
  constructor(
    readonly api: string,
    readonly node: string | undefined,
    readonly status: number | undefined,
    message: string,
    options?: { cause?: unknown; hint?: string },
  ) {
    super(`Ironic ${api}: ${node ? `node ${node}: ` : ""}${message}${status ? ` (HTTP ${status})` : ""}`, options);
  }
}

/** An Ironic node ended in a state it was not asked for (deploy failed, …), with Ironic's last_error. */
export class IronicNodeFailed extends OooError {
  readonly code = "ironic-node-failed";
  constructor(
    readonly node: string,
    readonly state: string,
    readonly lastError: string | null,
    wanted: string,
  ) {
    super(`Ironic node ${node} is "${state}", not "${wanted}"${lastError ? `: ${lastError}` : ""}`);
  }
}
