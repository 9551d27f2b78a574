import { timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { readCredentials } from "./bmc-credentials.ts";
import { bootOverride, ChassisError, powerOff, powerOn, powerState, readSpec, reset, setBootOverride, softOff, type BootOverride } from "./chassis.ts";

/**
 * A Redfish front for test machines (Debian has no Redfish emulator): a
 * small Bun server on loopback exposing each machine folder as a Redfish
 * ComputerSystem, sharing the chassis with the IPMI front. What it serves
 * is what Ironic's redfish driver (sushy) reads and writes:
 * - GET  /redfish/v1/                         service root (no login, as the standard says)
 * - GET  /redfish/v1/Systems                  the collection
 * - GET  /redfish/v1/Systems/ID               PowerState, Boot, Reset action, MAC
 * - PATCH /redfish/v1/Systems/ID              {"Boot": {BootSourceOverrideTarget: Pxe|Hdd|None,
 *                                              BootSourceOverrideEnabled: Once|Continuous|Disabled,
 *                                              BootSourceOverrideMode: UEFI|Legacy}}
 * - POST /redfish/v1/Systems/ID/Actions/ComputerSystem.Reset  {"ResetType": On|ForceOn|ForceOff|
 *                                              GracefulShutdown|ForceRestart}
 * HTTP basic auth for everything but the root. No sessions: sushy's default
 * authentication tries a session, finds no SessionService and falls back to
 * basic auth.
 */
export interface RedfishServer {
  url: string;
  /** System ids → machine folders. */
  systems: Record<string, string>;
  stop(): Promise<void>;
}

const TARGETS: Record<string, BootOverride["target"]> = { None: "none", Pxe: "pxe", Hdd: "disk" };
const TARGET_NAMES: Record<BootOverride["target"], string> = { none: "None", pxe: "Pxe", disk: "Hdd" };
const ENABLED: Record<string, BootOverride["enabled"]> = { Disabled: "disabled", Once: "once", Continuous: "continuous" };
const ENABLED_NAMES: Record<BootOverride["enabled"], string> = { disabled: "Disabled", once: "Once", continuous: "Continuous" };
const RESET_TYPES = ["On", "ForceOn", "ForceOff", "GracefulShutdown", "ForceRestart"] as const;

const BootPatch = z.object({
  Boot: z
    .object({
      BootSourceOverrideTarget: z.enum(["None", "Pxe", "Hdd"]).optional(),
      BootSourceOverrideEnabled: z.enum(["Disabled", "Once", "Continuous"]).optional(),
      BootSourceOverrideMode: z.enum(["UEFI", "Legacy"]).optional(),
    })
    .strict(),
});
const ResetBody = z.object({ ResetType: z.enum(RESET_TYPES) });

/** A Redfish error body (DMTF's Base message registry). */
function error(status: number, message: string, code = "Base.1.0.GeneralError") {
  return Response.json({ error: { code, message, "@Message.ExtendedInfo": [{ MessageId: code, Message: message }] } }, { status });
}

function system(id: string, dir: string) {
  const spec = readSpec(dir);
  const boot = bootOverride(dir);
  const path = `/redfish/v1/Systems/${id}`;
  return {
    "@odata.type": "#ComputerSystem.v1_10_0.ComputerSystem",
    "@odata.id": path,
    Id: id,
    Name: spec.name,
    SystemType: "Physical",
    Manufacturer: "ooo test bed",
    Model: `qemu ${spec.firmware === "uefi" ? "OVMF" : "SeaBIOS"}`,
    PowerState: powerState(dir) === "on" ? "On" : "Off",
    MemorySummary: { TotalSystemMemoryGiB: spec.memoryMiB / 1024 },
    ProcessorSummary: { Count: spec.cpus },
    Boot: {
      BootSourceOverrideEnabled: ENABLED_NAMES[boot.enabled],
      BootSourceOverrideTarget: TARGET_NAMES[boot.target],
      "BootSourceOverrideTarget@Redfish.AllowableValues": Object.keys(TARGETS),
      BootSourceOverrideMode: spec.firmware === "uefi" ? "UEFI" : "Legacy",
    },
    EthernetInterfaces: { "@odata.id": `${path}/EthernetInterfaces` },
    Actions: {
      "#ComputerSystem.Reset": { target: `${path}/Actions/ComputerSystem.Reset`, "ResetType@Redfish.AllowableValues": RESET_TYPES },
    },
  };
}

/** With `unix`, it also answers on that socket (the test bed serves it inside its namespace from there). */
export function startRedfish(o: { systems: Record<string, string>; credentials: string; port?: number; unix?: string }): RedfishServer {
  const creds = readCredentials(o.credentials);
  const expected = Buffer.from(`Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`);
  const authorized = (req: Request) => {
    const got = Buffer.from(req.headers.get("authorization") ?? "");
    return got.length === expected.length && timingSafeEqual(got, expected);
  };
  const fetch = async (req: Request) => {
    const res = await route(req);
    // sushy asks with "Connection: close" and Bun closes, but without saying
    // so urllib3 pools the socket and its next request may hit the closed
    // one ("Remote end closed connection without response"). Say it.
    if (req.headers.get("connection")?.toLowerCase() === "close") res.headers.set("Connection", "close");
    return res;
  };
  const server = Bun.serve({ hostname: "127.0.0.1", port: o.port ?? 0, fetch });
  const onSocket = o.unix ? Bun.serve({ unix: o.unix, fetch }) : undefined;
  async function route(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname.replace(/\/+$/, "") || "/";
    if (path === "/redfish") return Response.json({ v1: "/redfish/v1/" });
    if (path === "/redfish/v1")
      return Response.json({
        "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
        "@odata.id": "/redfish/v1/",
        Id: "RootService",
        Name: "ooo test bed Redfish service",
        RedfishVersion: "1.6.0",
        UUID: "6f6f6f2d-7465-7374-6265-642d726f6f74",
        Systems: { "@odata.id": "/redfish/v1/Systems" },
      });
    if (!authorized(req)) return new Response(null, { status: 401, headers: { "WWW-Authenticate": 'Basic realm="ooo"' } });
    if (path === "/redfish/v1/Systems")
      return Response.json({
        "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
        "@odata.id": "/redfish/v1/Systems",
        Name: "Computer System Collection",
        Members: Object.keys(o.systems).map((id) => ({ "@odata.id": `/redfish/v1/Systems/${id}` })),
        "Members@odata.count": Object.keys(o.systems).length,
      });
    const m = /^\/redfish\/v1\/Systems\/([^/]+)(\/.*)?$/.exec(path);
    const id = m?.[1];
    const dir = id === undefined ? undefined : o.systems[id];
    if (!id || !dir) return error(404, `no such resource: ${path}`, "Base.1.0.ResourceMissingAtURI");
    try {
      return await systemRoute(req, id, dir, m?.[2] ?? "");
    } catch (e) {
      if (e instanceof ChassisError) return error(500, e.message);
      throw e;
    }
  }
  return {
    url: `http://127.0.0.1:${server.port}`,
    systems: o.systems,
    async stop() {
      await server.stop(true);
      await onSocket?.stop(true);
    },
  };
}

async function systemRoute(req: Request, id: string, dir: string, sub: string): Promise<Response> {
  const base = `/redfish/v1/Systems/${id}`;
  if (sub === "" && req.method === "GET") return Response.json(system(id, dir));
  if (sub === "" && req.method === "PATCH") {
    const body = BootPatch.safeParse(await req.json().catch(() => undefined));
    if (!body.success) return error(400, `PATCH ${base}: ${body.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`, "Base.1.0.PropertyValueNotInList");
    const want = body.data.Boot;
    const firmware = readSpec(dir).firmware === "uefi" ? "UEFI" : "Legacy";
    if (want.BootSourceOverrideMode && want.BootSourceOverrideMode !== firmware)
      return error(400, `${id} boots ${firmware} only; BootSourceOverrideMode ${want.BootSourceOverrideMode} is not available`, "Base.1.0.PropertyValueNotInList");
    const now = bootOverride(dir);
    const target = want.BootSourceOverrideTarget ? TARGETS[want.BootSourceOverrideTarget]! : now.target;
    let enabled = want.BootSourceOverrideEnabled ? ENABLED[want.BootSourceOverrideEnabled]! : now.enabled;
    // Setting a target alone enables it once, as BMCs do when Enabled was Disabled.
    if (want.BootSourceOverrideTarget && !want.BootSourceOverrideEnabled && enabled === "disabled") enabled = "once";
    await setBootOverride(dir, target === "none" ? { target, enabled: "disabled" } : { target, enabled });
    return new Response(null, { status: 204 });
  }
  if (sub === "/EthernetInterfaces" && req.method === "GET")
    return Response.json({
      "@odata.type": "#EthernetInterfaceCollection.EthernetInterfaceCollection",
      "@odata.id": `${base}/EthernetInterfaces`,
      Name: "Ethernet Interface Collection",
      Members: [{ "@odata.id": `${base}/EthernetInterfaces/nic0` }],
      "Members@odata.count": 1,
    });
  if (sub === "/EthernetInterfaces/nic0" && req.method === "GET")
    return Response.json({
      "@odata.type": "#EthernetInterface.v1_4_0.EthernetInterface",
      "@odata.id": `${base}/EthernetInterfaces/nic0`,
      Id: "nic0",
      Name: "provisioning NIC",
      MACAddress: readSpec(dir).mac,
      PermanentMACAddress: readSpec(dir).mac,
    });
  if (sub === "/Actions/ComputerSystem.Reset" && req.method === "POST") {
    const body = ResetBody.safeParse(await req.json().catch(() => undefined));
    if (!body.success) return error(400, `ResetType must be one of ${RESET_TYPES.join(", ")}`, "Base.1.0.ActionParameterNotSupported");
    const type = body.data.ResetType;
    if (type === "On" || type === "ForceOn") await powerOn(dir);
    else if (type === "ForceOff") await powerOff(dir);
    else if (type === "GracefulShutdown") await softOff(dir);
    else await reset(dir);
    return new Response(null, { status: 204 });
  }
  return error(405, `${req.method} ${base}${sub} is not supported`, "Base.1.0.ActionNotSupported");
}
