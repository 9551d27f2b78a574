import { z } from "zod";
import { clientTls } from "../../lib/tls.ts";
import { IronicFailed } from "../errors.ts";

/**
 * Ironic's REST API (v1), the calls ooo's ironic driver makes, over fetch:
 * http_basic login (Keystone is not supported), the API version agreed
 * once per client — the highest both know, at least 1.56 (a config drive
 * given as JSON) — and every answer checked with zod. An error names the
 * node it was about and carries Ironic's own message; "node is locked"
 * (the conductor is busy with it) is retried for a while, as
 * python-ironicclient does.
 */
export const CLIENT_MAX_VERSION = "1.82";
export const CLIENT_MIN_VERSION = "1.56";
const TIMEOUT_MS = 30_000;
const LOCKED_RETRY_MS = 30_000;

export const IronicNode = z.looseObject({
  uuid: z.string(),
  name: z.string().nullable(),
  driver: z.string(),
  resource_class: z.string().nullable().optional(),
  provision_state: z.string(),
  target_provision_state: z.string().nullable(),
  power_state: z.string().nullable(),
  target_power_state: z.string().nullable(),
  maintenance: z.boolean(),
  maintenance_reason: z.string().nullable(),
  last_error: z.string().nullable(),
  instance_uuid: z.string().nullable(),
  instance_info: z.record(z.string(), z.unknown()),
  driver_info: z.record(z.string(), z.unknown()),
  properties: z.record(z.string(), z.unknown()),
  deploy_step: z.record(z.string(), z.unknown()).nullable().optional(),
  allocation_uuid: z.string().nullable().optional(),
});
export type IronicNode = z.infer<typeof IronicNode>;

const NodeList = z.object({ nodes: z.array(IronicNode), next: z.string().optional() });
const InterfaceCheck = z.looseObject({ result: z.boolean().nullable(), reason: z.string().nullable().optional() });
export const NodeValidation = z.record(z.string(), InterfaceCheck);
export type NodeValidation = z.infer<typeof NodeValidation>;
const Root = z.looseObject({ default_version: z.looseObject({ version: z.string(), min_version: z.string() }) });
const BootDevice = z.looseObject({ boot_device: z.string().nullable(), persistent: z.boolean().nullable() });
const Port = z.looseObject({ uuid: z.string(), address: z.string(), node_uuid: z.string() });
const PortList = z.object({ ports: z.array(Port) });
export const Allocation = z.looseObject({
  uuid: z.string(),
  name: z.string().nullable(),
  resource_class: z.string().nullable(),
  node_uuid: z.string().nullable(),
  state: z.string(),
  last_error: z.string().nullable(),
});
export type Allocation = z.infer<typeof Allocation>;

/** What `PUT …/states/provision` accepts (Ironic's verbs). */
export type ProvisionTarget = "manage" | "provide" | "active" | "deleted" | "rebuild" | "abort" | "clean" | "adopt";
export type PowerTarget = "power on" | "power off" | "rebooting" | "soft power off" | "soft rebooting";

/** A config drive as JSON (API ≥ 1.56): the conductor makes the ISO. (Or a string: gzip then base64 of a drive image, or its URL.) */
export interface ConfigDrive {
  meta_data?: Record<string, unknown>;
  network_data?: Record<string, unknown>;
  user_data?: string | Record<string, unknown> | unknown[];
  vendor_data?: Record<string, unknown>;
}

export interface IronicClientOptions {
  url: string;
  /** http_basic; none for an Ironic with `auth_strategy = noauth`. */
  login?: { username: string; password: string };
  /** The CA (PEM) of an https Ironic whose certificate the system does not trust. */
  ca?: string;
  /** Where the login came from, for the hint when Ironic refuses it. */
  loginSource?: string;
}

const versionNumber = (v: string) => v.split(".").map(Number) as [number, number];
const older = (a: string, b: string) => {
  const [x, y] = [versionNumber(a), versionNumber(b)];
  return x[0] < y[0] || (x[0] === y[0] && x[1] < y[1]);
};

/** Ironic's error body: `{"error_message": "<JSON with faultstring>"}` (a string holding JSON), else the text. */
export function ironicMessage(text: string): string {
  try {
    const outer = JSON.parse(text) as { error_message?: unknown };
    const inner = typeof outer.error_message === "string" ? (JSON.parse(outer.error_message) as { faultstring?: string }) : (outer.error_message as { faultstring?: string });
    if (inner?.faultstring) return inner.faultstring;
  } catch {}
  return text.trim().slice(0, 300) || "no message";
}

export class IronicClient {
  private version?: Promise<string>;

  constructor(readonly options: IronicClientOptions) {}

  get url() {
    return this.options.url.replace(/\/+$/, "");
  }

  /** The API version this client speaks with this Ironic (asked once). */
  apiVersion(): Promise<string> {
    this.version ??= (async () => {
      const res = await this.raw("GET", "/", undefined, undefined, false);
      const root = Root.safeParse(await res.json().catch(() => undefined));
      if (!root.success) throw new IronicFailed(this.url, undefined, undefined, "GET / did not answer as Ironic does (no default_version)");
      const server = root.data.default_version.version;
      if (older(server, CLIENT_MIN_VERSION))
        throw new IronicFailed(this.url, undefined, undefined, `its API goes up to ${server}; ooo needs ${CLIENT_MIN_VERSION} (Ironic 13.0, Stein) or newer`);
      return older(server, CLIENT_MAX_VERSION) ? server : CLIENT_MAX_VERSION;
    })();
    this.version.catch(() => (this.version = undefined));
    return this.version;
  }

  private async raw(method: string, path: string, body: unknown, node: string | undefined, versioned = true): Promise<Response> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (versioned) headers["X-OpenStack-Ironic-API-Version"] = await this.apiVersion();
    if (this.options.login) headers.authorization = `Basic ${Buffer.from(`${this.options.login.username}:${this.options.login.password}`).toString("base64")}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    try {
      return await fetch(`${this.url}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
        ...clientTls({ ca: this.options.ca }),
      });
    } catch (e) {
      throw new IronicFailed(this.url, node, undefined, `${method} ${path}: ${(e as Error).message}`, { hint: "Is Ironic running, and is the inventory entry's url right?" });
    }
  }

  /** A request whose answer must be 2xx; a node that is locked is asked again for a while. */
  private async call(method: string, path: string, options: { body?: unknown; node?: string } = {}): Promise<Response> {
    for (const deadline = Date.now() + LOCKED_RETRY_MS; ; await Bun.sleep(1_000)) {
      const res = await this.raw(method, path, options.body, options.node);
      if (res.ok) return res;
      const message = ironicMessage(await res.text().catch(() => ""));
      if (res.status === 409 && /\block(ed)?\b/i.test(message) && Date.now() < deadline) continue;
      // An Ironic behind Keystone says so in its challenge: ooo speaks http_basic only.
      if (res.status === 401 && /^keystone/i.test(res.headers.get("www-authenticate") ?? ""))
        throw new IronicFailed(this.url, options.node, res.status, `${method} ${path}: this Ironic wants Keystone tokens`, {
          hint: "Keystone is not supported: ooo logs in to Ironic with http_basic (its auth_strategy = http_basic, an htpasswd of bcrypt entries).",
        });
      if (res.status === 401 || res.status === 403)
        throw new IronicFailed(this.url, options.node, res.status, `${method} ${path}: ${message}`, {
          hint: `Ironic refused the login${this.options.loginSource ? ` from ${this.options.loginSource}` : ""}: check its username and password.`,
        });
      throw new IronicFailed(this.url, options.node, res.status, message);
    }
  }

  private async json<T>(schema: z.ZodType<T>, method: string, path: string, options: { body?: unknown; node?: string } = {}): Promise<T> {
    const res = await this.call(method, path, options);
    const parsed = schema.safeParse(await res.json().catch(() => undefined));
    if (!parsed.success)
      throw new IronicFailed(this.url, options.node, res.status, `${method} ${path}: unexpected answer (${parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")})`);
    return parsed.data;
  }

  private nodePath(id: string, rest = "") {
    return `/v1/nodes/${encodeURIComponent(id)}${rest}`;
  }

  getNode(id: string): Promise<IronicNode> {
    return this.json(IronicNode, "GET", this.nodePath(id), { node: id });
  }

  /** Every node (all pages), optionally of one resource class or provision state. */
  async listNodes(filter: { resourceClass?: string; provisionState?: string; pageSize?: number } = {}): Promise<IronicNode[]> {
    const q = new URLSearchParams({ detail: "true" });
    if (filter.pageSize) q.set("limit", String(filter.pageSize));
    if (filter.resourceClass) q.set("resource_class", filter.resourceClass);
    if (filter.provisionState) q.set("provision_state", filter.provisionState);
    const nodes: IronicNode[] = [];
    for (;;) {
      const page: z.infer<typeof NodeList> = await this.json(NodeList, "GET", `/v1/nodes?${q}`);
      nodes.push(...page.nodes);
      // Ironic 21.4's `next` link drops the resource_class and provision_state filters: only its marker is taken.
      const marker = page.next && page.nodes.length ? new URL(page.next).searchParams.get("marker") : null;
      if (!marker) return nodes;
      q.set("marker", marker);
    }
  }

  validate(id: string): Promise<NodeValidation> {
    return this.json(NodeValidation, "GET", this.nodePath(id, "/validate"), { node: id });
  }

  /** Ask the node's BMC (through Ironic) for its boot device: a read that fails when the BMC or its login does. */
  bootDevice(id: string): Promise<z.infer<typeof BootDevice>> {
    return this.json(BootDevice, "GET", this.nodePath(id, "/management/boot_device"), { node: id });
  }

  createNode(fields: Record<string, unknown> & { driver: string }): Promise<IronicNode> {
    return this.json(IronicNode, "POST", "/v1/nodes", { body: fields, node: typeof fields.name === "string" ? fields.name : undefined });
  }

  async deleteNode(id: string): Promise<void> {
    await this.call("DELETE", this.nodePath(id), { node: id });
  }

  createPort(nodeUuid: string, mac: string): Promise<z.infer<typeof Port>> {
    return this.json(Port, "POST", "/v1/ports", { body: { node_uuid: nodeUuid, address: mac }, node: nodeUuid });
  }

  /** The node's ports (its NICs' MACs, as Ironic knows them). */
  async ports(nodeUuid: string): Promise<z.infer<typeof Port>[]> {
    return (await this.json(PortList, "GET", `/v1/ports?${new URLSearchParams({ node_uuid: nodeUuid, fields: "uuid,address,node_uuid" })}`, { node: nodeUuid })).ports;
  }

  /**
   * Claim a node of a resource class (API 1.52+): the conductor picks one
   * that is available, not in maintenance and not reserved, and sets its
   * instance_uuid to the allocation's UUID, which the caller may choose
   * (ooo uses its node's). The allocation is `allocating` until it is
   * `active` (node_uuid set) or `error` (last_error says why).
   */
  createAllocation(fields: { resource_class: string; uuid?: string; name?: string; candidate_nodes?: string[] }): Promise<Allocation> {
    return this.json(Allocation, "POST", "/v1/allocations", { body: fields, node: fields.name });
  }

  getAllocation(id: string): Promise<Allocation> {
    return this.json(Allocation, "GET", `/v1/allocations/${encodeURIComponent(id)}`, { node: id });
  }

  /** Give the node back (a deployed node's allocation goes by itself when it is undeployed). */
  async deleteAllocation(id: string): Promise<void> {
    await this.call("DELETE", `/v1/allocations/${encodeURIComponent(id)}`, { node: id });
  }

  /** Into maintenance with a reason (Ironic then leaves the node alone), or out of it. */
  async setMaintenance(id: string, reason: string | false): Promise<void> {
    await this.call(reason === false ? "DELETE" : "PUT", this.nodePath(id, "/maintenance"), { node: id, ...(reason === false ? {} : { body: { reason } }) });
  }

  /** JSON patch of the node (RFC 6902, as Ironic takes it). */
  patchNode(id: string, ops: { op: "add" | "replace" | "remove"; path: string; value?: unknown }[]): Promise<IronicNode> {
    return this.json(IronicNode, "PATCH", this.nodePath(id), { body: ops, node: id });
  }

  /** Set keys of instance_info (others are kept); `add` replaces a key that exists. */
  setInstanceInfo(id: string, info: Record<string, unknown>): Promise<IronicNode> {
    // Ironic's patch paths are words and hyphens only (no JSON-pointer escapes): so are instance_info's keys.
    return this.patchNode(id, Object.entries(info).map(([k, value]) => ({ op: "add" as const, path: `/instance_info/${k}`, value })));
  }

  async setProvisionState(id: string, target: ProvisionTarget, options: { configdrive?: ConfigDrive | string } = {}): Promise<void> {
    await this.call("PUT", this.nodePath(id, "/states/provision"), { body: { target, ...(options.configdrive ? { configdrive: options.configdrive } : {}) }, node: id });
  }

  async setPowerState(id: string, target: PowerTarget, options: { timeoutSeconds?: number } = {}): Promise<void> {
    await this.call("PUT", this.nodePath(id, "/states/power"), { body: { target, ...(options.timeoutSeconds ? { timeout: options.timeoutSeconds } : {}) }, node: id });
  }
}
