import { configDrive } from "./config-drive.ts";
import { ec2 } from "./ec2.ts";
import { heatLocal } from "./heat-local.ts";
import { heat } from "./heat.ts";
import { local } from "./local.ts";
import { request } from "./request.ts";
import type { Collector } from "./types.ts";

/** Every collector os-collect-config knows, by name. */
export const COLLECTORS: ReadonlyMap<string, Collector> = new Map(
  [heatLocal, configDrive, ec2, heat, request, local].map((c) => [c.name, c]),
);

/**
 * The order used when none is configured (later sources win in
 * os-apply-config): the original's order (heat_local ec2 cfn heat request
 * local zaqar) without cfn and zaqar, which ooo does not implement, and with
 * the config drive before the network sources.
 */
export const DEFAULT_COLLECTORS = ["heat_local", "config-drive", "ec2", "heat", "request", "local"];

/** Original collectors that ooo-agent does not implement (named in errors). */
export const UNSUPPORTED_COLLECTORS = ["cfn", "zaqar"];
