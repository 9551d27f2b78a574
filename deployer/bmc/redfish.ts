import { readFileSync } from "node:fs";
import { z } from "zod";
import { clientTls } from "../../lib/tls.ts";
import type { BootMode } from "../../wire/deploy.ts";
import { BmcFailed } from "../errors.ts";
import type { PowerState } from "../drivers/driver.ts";
import type { Bmc, BootDevice } from "./bmc.ts";
import { readBmcLogin } from "./credentials.ts";

/**
 * Redfish over fetch with HTTP basic auth, on the ComputerSystem resource
 * the inventory names (…/redfish/v1/Systems/ID), with the calls Ironic's
 * redfish driver (sushy) makes: the system's PowerState, the
 * ComputerSystem.Reset action, and a PATCH of Boot for a one-time boot
 * source in UEFI or Legacy mode. An https BMC is verified against the
 * system's CAs, or the CA file the inventory names.
 */
const TIMEOUT_MS = 30_000;

const System = z.looseObject({
  PowerState: z.string().optional(),
  Actions: z.looseObject({ "#ComputerSystem.Reset": z.looseObject({ target: z.string().optional() }).optional() }).optional(),
});

const RESET: Record<"on" | "off" | "soft" | "reset", string> = { on: "On", off: "ForceOff", soft: "GracefulShutdown", reset: "ForceRestart" };

export class RedfishBmc implements Bmc {
  readonly address: string;
  private readonly ca?: string;

  constructor(
    readonly machine: string,
    private readonly target: { url: string; credentials: string; caFile?: string },
  ) {
    this.address = target.url;
    if (target.caFile) {
      try {
        this.ca = readFileSync(target.caFile, "utf8");
      } catch (e) {
        throw new BmcFailed(machine, `cannot read its CA file ${target.caFile}: ${(e as Error).message}`);
      }
    }
  }

  private async call(method: string, url: string, body?: unknown): Promise<Response> {
    const login = readBmcLogin(this.target.credentials);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          authorization: `Basic ${Buffer.from(`${login.username}:${login.password}`).toString("base64")}`,
          accept: "application/json",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
        ...clientTls({ ca: this.ca }),
      });
    } catch (e) {
      throw new BmcFailed(this.machine, `${method} ${url}: ${(e as Error).message}`);
    }
    if (res.status === 401 || res.status === 403)
      throw new BmcFailed(this.machine, `${method} ${url}: ${res.status}: the BMC refused the login`, {
        hint: `Check the username and password in ${this.target.credentials}.`,
      });
    if (!res.ok) throw new BmcFailed(this.machine, `${method} ${url}: ${res.status} ${await redfishMessage(res)}`);
    return res;
  }

  private async system() {
    const res = await this.call("GET", this.target.url);
    const parsed = System.safeParse(await res.json().catch(() => undefined));
    if (!parsed.success) throw new BmcFailed(this.machine, `${this.target.url} is not a Redfish ComputerSystem`);
    return parsed.data;
  }

  async powerState(): Promise<PowerState> {
    const state = (await this.system()).PowerState;
    // PoweringOn counts as on, PoweringOff as off: what it is heading for.
    if (state === "On" || state === "PoweringOn") return "on";
    if (state === "Off" || state === "PoweringOff") return "off";
    throw new BmcFailed(this.machine, `${this.target.url}: unexpected PowerState ${state}`);
  }

  async power(action: "on" | "off" | "soft" | "reset"): Promise<void> {
    const system = await this.system();
    if (action === "reset" && system.PowerState === "Off") action = "on";
    const target = system.Actions?.["#ComputerSystem.Reset"]?.target ?? `${this.target.url.replace(/\/+$/, "")}/Actions/ComputerSystem.Reset`;
    await this.call("POST", new URL(target, this.target.url).href, { ResetType: RESET[action] });
  }

  async setBootDevice(device: BootDevice, options: { mode: BootMode; persistent?: boolean }): Promise<void> {
    await this.call("PATCH", this.target.url, {
      Boot: {
        BootSourceOverrideTarget: device === "network" ? "Pxe" : "Hdd",
        BootSourceOverrideEnabled: options.persistent ? "Continuous" : "Once",
        BootSourceOverrideMode: options.mode === "uefi" ? "UEFI" : "Legacy",
      },
    });
  }
}

/** The message of a Redfish error body (DMTF's Base registry), else the text. */
async function redfishMessage(res: Response): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: { message?: string; "@Message.ExtendedInfo"?: { Message?: string }[] } };
    return body.error?.["@Message.ExtendedInfo"]?.[0]?.Message ?? body.error?.message ?? text.slice(0, 200);
  } catch {
    return text.slice(0, 200).trim();
  }
}
