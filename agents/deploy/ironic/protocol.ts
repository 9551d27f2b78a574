import { z } from "zod";

/**
 * The agent protocol of OpenStack Ironic (what ironic-python-agent speaks),
 * as far as Ironic 21.4's `direct` deploy of a whole-disk image uses it:
 *
 *   agent → Ironic   GET  /v1/lookup?addresses=MAC,…           → the node and the agent token (once)
 *                    POST /v1/heartbeat/{node}                 {callback_url, agent_token, agent_version}
 *   Ironic → agent   POST /v1/commands/?wait=…&agent_token=…   {name: "extension.command", params}
 *                    GET  /v1/commands/?agent_token=…          → {commands: [result, …]}
 *
 * A command's result is `{id, command_name (without the extension),
 * command_status: RUNNING|SUCCEEDED|FAILED, command_error, command_result}`;
 * an error answer carries `faultstring` (Ironic reads that key, and fails
 * on an error without it). Only what the agent reads is checked here:
 * Ironic's answers, and the commands it sends.
 */

/** The API version the agent asks for: heartbeats with agent_verify_ca (1.68; Ironic 16.0, Victoria). */
export const AGENT_API_VERSION = "1.68";
/** The version the agent reports in its heartbeats (Ironic only requires one). */
export const AGENT_VERSION = "ooo-agent 1";
/** ooo's one hardware manager, whose version Ironic checks before every step (deploy_version). */
export const HARDWARE_MANAGER = { name: "ooo", version: "1" } as const;

export const LookupAnswer = z.looseObject({
  node: z.looseObject({
    uuid: z.string(),
    properties: z.record(z.string(), z.unknown()).default({}),
    instance_info: z.record(z.string(), z.unknown()).default({}),
  }),
  config: z.looseObject({
    heartbeat_timeout: z.number().positive().default(300),
    agent_token: z.string().optional(),
  }),
});
export type LookupAnswer = z.infer<typeof LookupAnswer>;

export const CommandRequest = z.object({
  name: z.string().regex(/^\w+\.\w+$/, "must be EXTENSION.COMMAND"),
  params: z.record(z.string(), z.unknown()).default({}),
});
export type CommandRequest = z.infer<typeof CommandRequest>;

/** A step as Ironic names it (the args only for execute_deploy_step). */
export const Step = z.looseObject({
  interface: z.string(),
  step: z.string(),
  args: z.record(z.string(), z.unknown()).nullish(),
});

/** `image_info` of the write_image step (a whole-disk image: no partition sizes). */
export const ImageInfo = z.looseObject({
  id: z.string(),
  urls: z.array(z.string()).min(1),
  disk_format: z.string().nullish(),
  stream_raw_images: z.boolean().optional(),
  checksum: z.string().nullish(),
  os_hash_algo: z.string().nullish(),
  os_hash_value: z.string().nullish(),
  node_uuid: z.string().optional(),
});
export type ImageInfo = z.infer<typeof ImageInfo>;

export type CommandStatus = "RUNNING" | "SUCCEEDED" | "FAILED";

export interface CommandResult {
  id: string;
  command_name: string;
  command_status: CommandStatus;
  command_error: { type: string; code: number; message: string; details: string } | null;
  command_result: unknown;
}
