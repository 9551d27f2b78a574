import { readFileSync } from "node:fs";
import { basename, dirname, extname, resolve } from "node:path";
import type { z } from "zod";
import { InvalidInput, KeyUnusable, type Problem, systemReason } from "../lib/errors.ts";
import type { TrustedKey } from "../lib/image-trust.ts";
import { parsePublicKey } from "../lib/minisign.ts";
import { parseYamlText } from "../lib/validate.ts";
import { inputFile } from "../lib/user-paths.ts";
import type { NodeSize } from "./drivers/driver.ts";
import type { InventoryEntry } from "./drivers/index.ts";
import { stackRules } from "./stack-rules.ts";
import { InventoryEntry as InventoryEntrySchema } from "./drivers/index.ts";
import { LABEL_RE, Provisioning, Role, StackFileV1, StoreSettings, Settings, Size, TrustSettings, type SizeV1 } from "./stack-schema.ts";
import { DRIVERS } from "./drivers/index.ts";
import { GiB, MiB, parseDuration, parseSize } from "./units.ts";

/**
 * Loading a stack file: parse (YAML, then the zod schema) → normalize
 * (defaults, units, node names, merged metadata) → rules (cross-field
 * checks, stack-rules.ts). Every problem is reported at once with its place
 * (`stack.yaml:12 roles.web.count: must be ≥ 0`); schema problems do not
 * hide rule problems in the parts that did parse.
 */
export { STACK_VERSION, StackFileV1 } from "./stack-schema.ts";
export const StackFile = StackFileV1;

export interface RollingUpdatePolicy {
  maxBatchSize: number;
  minInService: number;
  pauseSeconds: number;
  policy: "rebuild-in-place" | "replace";
}

export interface RoleSpec {
  name: string;
  count: number;
  /** The image reference as written (resolved against the store at deploy time). */
  image: string;
  /** The inventory entry its nodes come from. */
  pool: string;
  metadata: Record<string, unknown>;
  nameFormat: string;
  rollingUpdates: RollingUpdatePolicy;
  /** Per-node settings by node name, as written. */
  overrides: Record<string, { metadata?: Record<string, unknown>; size?: SizeV1; machine?: string }>;
}

export interface NodeSpec {
  name: string;
  role: string;
  index: number;
  pool: string;
  driver: string;
  size: NodeSize;
  /** The role's metadata with the node's merged over it. */
  metadata: Record<string, unknown>;
  /** Guest TCP ports to reach from the host (the role's `expose`). */
  expose: number[];
  /** Bare metal: the machine the stack file names for it (else the deployer picks a free one). */
  machine?: string;
}

/** The provisioning network, normalized (stack file `provisioning:`). */
export interface StackProvisioning {
  address: string;
  interface: string;
  dhcp: { range: [string, string] } | { proxy: true };
  ramdisk: string;
  ports: { metadata: number; store: number; http: number; ironic: number };
}

export type StoreChoice = { kind: "embedded" } | { kind: "url"; url: string; tokenFile?: string; caFile?: string };

export interface Stack {
  file: string;
  dir: string;
  name: string;
  description?: string;
  store: StoreChoice;
  /** Keys an image's manifest must be signed by (empty: unsigned images are allowed). */
  trustedKeys: TrustedKey[];
  /** The stack allows plain http across a network (trust.plain_http). */
  plainHttp: boolean;
  signalTimeoutSeconds: number;
  pollingIntervalSeconds: number;
  inventory: Record<string, InventoryEntry>;
  /** Where bare-metal machines boot from and reach the services. */
  provisioning?: StackProvisioning;
  roles: RoleSpec[];
  nodes: NodeSpec[];
  warnings: Problem[];
}

export const DEFAULT_SIZE = { memoryMiB: 1024, cpus: 1 } as const;
export const MIN_MEMORY_MIB = 256;
/** Sanity limits, so that a slip of the unit is caught by the file's check, not by the host. */
export const MAX_MEMORY_MIB = 16 * 1024 ** 2;
export const MAX_DISK_BYTES = 64 * 2 ** 40;
export const DEFAULT_SIGNAL_TIMEOUT = 600;
export const DEFAULT_POLLING_INTERVAL = 5;
export const DEFAULT_NAME_FORMAT = "{role}-{index}";

type Path = (string | number)[];
/** A problem before it has a line: rules speak in document paths. */
export interface PathProblem {
  path: Path;
  message: string;
  level?: "error" | "warning";
}

/** Zod issues as problems; an unknown key is reported at the key itself. */
function issueProblems(issues: z.core.$ZodIssue[]): PathProblem[] {
  const out: PathProblem[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ path: [...path, key], message: `unknown key${knownKeysHint(path)}` });
    } else if (issue.code === "invalid_key") {
      out.push({ path, message: issue.issues[0]?.message ?? issue.message });
    } else if (issue.code === "invalid_union" && "note" in issue && issue.note === "No matching discriminator") {
      out.push({ path, message: `must be one of: ${(issue as { options?: unknown[] }).options?.join(", ")}` });
    } else out.push({ path, message: issue.message });
  }
  return out;
}

function knownKeysHint(path: Path): string {
  const shape = (s: { shape?: Record<string, unknown> }) => Object.keys(s.shape ?? {});
  let keys: string[] = [];
  if (path.length === 0) keys = shape(StackFileV1);
  else if (path[0] === "roles" && path.length === 2) keys = shape(Role);
  else if (path[0] === "store" && path.length === 1) keys = shape(StoreSettings);
  else if (path[0] === "settings" && path.length === 1) keys = shape(Settings);
  else if (path.at(-1) === "size") keys = shape(Size);
  return keys.length ? ` (known: ${keys.join(", ")})` : "";
}

/** What parsed of an invalid file, so that rules can still look at it. */
function salvage(value: unknown): StackFileV1 {
  const v = (value && typeof value === "object" ? value : {}) as Record<string, unknown>;
  const part = <T>(schema: z.ZodType<T>, x: unknown): T | undefined => {
    const r = schema.safeParse(x);
    return r.success ? r.data : undefined;
  };
  // Entries under a good key: parsed, or (keep = true) a placeholder so rules do not report them missing as well.
  const entries = <T>(schema: z.ZodType<T>, x: unknown, keep?: T) =>
    Object.fromEntries(
      Object.entries(x && typeof x === "object" ? (x as Record<string, unknown>) : {})
        .filter(([k]) => LABEL_RE.test(k))
        .map(([k, e]) => [k, part(schema, e) ?? keep] as const)
        .filter((e): e is readonly [string, T] => e[1] !== undefined),
    );
  return {
    version: 1,
    name: typeof v.name === "string" ? v.name : undefined,
    store: part(StoreSettings, v.store),
    trust: part(TrustSettings, v.trust),
    settings: part(Settings, v.settings),
    provisioning: part(Provisioning, v.provisioning),
    inventory: v.inventory === undefined ? undefined : entries(InventoryEntrySchema, v.inventory, { driver: "?" } as unknown as InventoryEntry),
    roles: entries(Role, v.roles),
  };
}

export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && b && typeof v === "object" && typeof b === "object" && !Array.isArray(v) && !Array.isArray(b)
        ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export function nodeName(format: string, role: string, index: number): string {
  return format.replaceAll("{role}", role).replaceAll("{index}", String(index));
}

function sizeOf(layers: (SizeV1 | undefined)[], place: Path[], problems: PathProblem[]): NodeSize {
  const size: NodeSize = { ...DEFAULT_SIZE };
  layers.forEach((layer, i) => {
    if (!layer) return;
    if (layer.memory !== undefined) {
      const bytes = parseSize(layer.memory, MiB)!;
      size.memoryMiB = Math.floor(bytes / MiB);
      if (size.memoryMiB < MIN_MEMORY_MIB)
        problems.push({ path: [...place[i]!, "memory"], message: `must be at least ${MIN_MEMORY_MIB} MiB (a Debian node does not boot in less)` });
      else if (size.memoryMiB > MAX_MEMORY_MIB) problems.push({ path: [...place[i]!, "memory"], message: `must be at most ${MAX_MEMORY_MIB / 1024 ** 2} TiB (is it MiB where GiB was meant?)` });
    }
    if (layer.cpus !== undefined) size.cpus = layer.cpus;
    if (layer.disk !== undefined) {
      size.diskBytes = Math.floor(parseSize(layer.disk, GiB)! / MiB) * MiB;
      if (size.diskBytes > MAX_DISK_BYTES) problems.push({ path: [...place[i]!, "disk"], message: `must be at most ${MAX_DISK_BYTES / 2 ** 40} TiB` });
    }
  });
  return size;
}

function normalize(data: StackFileV1, file: string, problems: PathProblem[]): Stack {
  const fileName = basename(file, extname(file));
  const inventory: Record<string, InventoryEntry> = Object.fromEntries(
    Object.entries(data.inventory ?? { local: { driver: "qemu", accel: "tcg", boot_mode: "bios" } }).map(([name, entry]) => {
      // File paths in an entry (BMC credentials …) are relative to the stack file.
      const driver = DRIVERS[entry.driver];
      return [name, driver?.resolvePaths ? (driver.resolvePaths(entry as never, dirname(file)) as InventoryEntry) : entry];
    }),
  );
  const pools = Object.keys(inventory);
  const store: StoreChoice = data.store?.url
    ? {
        kind: "url",
        url: data.store.url,
        tokenFile: data.store.token_file && resolve(dirname(file), data.store.token_file),
        caFile: data.store.ca_file && resolve(dirname(file), data.store.ca_file),
      }
    : { kind: "embedded" };
  const trustedKeys: TrustedKey[] = [];
  (data.trust?.keys ?? []).forEach((given, i) => {
    try {
      trustedKeys.push({ name: given, key: parsePublicKey(readFileSync(resolve(dirname(file), given), "utf8"), given) });
    } catch (e) {
      problems.push({ path: ["trust", "keys", i], message: e instanceof KeyUnusable ? e.message : `cannot read ${given}: ${systemReason(e) ?? (e as Error).message}` });
    }
  });
  const roles: RoleSpec[] = [];
  const nodes: NodeSpec[] = [];
  for (const [name, role] of Object.entries(data.roles ?? {})) {
    const pool = role.inventory ?? (pools.length === 1 ? pools[0]! : "");
    const rolling = role.rolling_updates;
    const spec: RoleSpec = {
      name,
      count: role.count,
      image: role.image,
      pool,
      metadata: role.metadata ?? {},
      nameFormat: role.name_format ?? DEFAULT_NAME_FORMAT,
      rollingUpdates: {
        maxBatchSize: rolling?.max_batch_size ?? 1,
        minInService: rolling?.min_in_service ?? 0,
        pauseSeconds: parseDuration(rolling?.pause ?? 0) ?? 0,
        policy: rolling?.policy ?? "rebuild-in-place",
      },
      overrides: role.nodes ?? {},
    };
    roles.push(spec);
    for (let index = 0; index < role.count; index++) {
      const node = nodeName(spec.nameFormat, name, index);
      const override = spec.overrides[node];
      nodes.push({
        name: node,
        role: name,
        index,
        pool,
        driver: inventory[pool]?.driver ?? "",
        size: sizeOf(
          [data.defaults?.size, role.size, override?.size],
          [["defaults", "size"], ["roles", name, "size"], ["roles", name, "nodes", node, "size"]],
          problems,
        ),
        metadata: deepMerge(spec.metadata, override?.metadata ?? {}),
        expose: role.expose ?? [],
        ...(override?.machine ? { machine: override.machine } : {}),
      });
    }
  }
  return {
    file,
    dir: dirname(file),
    name: data.name ?? fileName,
    description: data.description,
    store,
    trustedKeys,
    plainHttp: data.trust?.plain_http ?? false,
    signalTimeoutSeconds: parseDuration(data.settings?.signal_timeout ?? DEFAULT_SIGNAL_TIMEOUT)!,
    pollingIntervalSeconds: parseDuration(data.settings?.polling_interval ?? DEFAULT_POLLING_INTERVAL)!,
    inventory,
    ...(data.provisioning ? { provisioning: normalizeProvisioning(data.provisioning) } : {}),
    roles,
    nodes,
    warnings: [],
  };
}

function normalizeProvisioning(p: z.infer<typeof Provisioning>): StackProvisioning {
  const dhcp: StackProvisioning["dhcp"] = "range" in p.dhcp ? { range: p.dhcp.range.split("-") as [string, string] } : { proxy: true };
  return {
    address: p.address,
    interface: p.interface,
    dhcp,
    ramdisk: p.ramdisk,
    ports: { metadata: p.ports?.metadata ?? 6385, store: p.ports?.store ?? 9292, http: p.ports?.http ?? 8080, ironic: p.ports?.ironic ?? 6386 },
  };
}

/** Parse a stack file's text. Throws InvalidInput with every problem; warnings are on the result. */
export function parseStack(text: string, file: string): Stack {
  file = resolve(file);
  const { value, lineOf } = parseYamlText(text, file);
  if (value === null || value === undefined)
    throw new InvalidInput(`${file} is not a valid stack file`, [{ file, message: "is empty: a stack file has at least version: 1 and roles: (fixtures/stacks/demo.yaml is one)" }]);
  const parsed = StackFileV1.safeParse(value);
  const found: PathProblem[] = parsed.success ? [] : issueProblems(parsed.error.issues);
  const data = parsed.success ? parsed.data : salvage(value);
  const stack = normalize(data, file, found);
  const provisioningGiven = typeof value === "object" && value !== null && "provisioning" in value;
  found.push(...stackRules(stack, { named: data.name !== undefined, provisioningGiven, rawStore: data.store }));
  const place = (p: PathProblem): Problem => ({
    file,
    line: lineOf(p.path),
    path: p.path.length ? p.path.map(String).join(".") : undefined,
    message: p.message,
  });
  const errors = found.filter((p) => p.level !== "warning");
  if (errors.length) throw new InvalidInput(`${file} is not a valid stack file`, errors.map(place));
  stack.warnings = found.filter((p) => p.level === "warning").map(place);
  return stack;
}

export function loadStack(file: string): Stack {
  return parseStack(readFileSync(inputFile(file, "the stack file"), "utf8"), file);
}
