import { BadRamdiskCmdline } from "../../errors.ts";
import { bootAndCa, cmdlineWord, HttpUrl } from "../cmdline.ts";

/**
 * The kernel command line Ironic's iPXE script gives the deploy ramdisk:
 * `ipa-api-url=` (Ironic's API, from its [service_catalog]
 * endpoint_override) and `BOOTIF=${mac}`; and, as ironic-python-agent
 * reads them, `ipa-advertise-host=` / `ipa-listen-port=` for the callback
 * URL. ooo's CA pin (`ooo.ca=`, `ooo.ca_url=`) comes from the embedded
 * Ironic's [pxe] kernel_append_params when it speaks https. A ramdisk
 * booted with `ipa-api-url=` is Ironic's agent; with `ooo.md=`, ooo's.
 */
export const IRONIC_CMDLINE = { apiUrl: "ipa-api-url", advertiseHost: "ipa-advertise-host", listenPort: "ipa-listen-port" } as const;
/** ironic-python-agent's port. */
export const DEFAULT_LISTEN_PORT = 9999;

export interface IronicArgs {
  apiUrl: string;
  listenPort: number;
  advertiseHost?: string;
  bootMac?: string;
  caSha256?: string;
  caUrl?: string;
}

export const bootsIronicAgent = (cmdline: string) => cmdlineWord(cmdline, IRONIC_CMDLINE.apiUrl) !== undefined;

export function parseIronicCmdline(cmdline: string): IronicArgs {
  const apiUrl = cmdlineWord(cmdline, IRONIC_CMDLINE.apiUrl);
  if (!apiUrl || !HttpUrl.safeParse(apiUrl).success) throw new BadRamdiskCmdline(`${IRONIC_CMDLINE.apiUrl}=${apiUrl ?? ""} is not an http(s) URL`);
  const port = cmdlineWord(cmdline, IRONIC_CMDLINE.listenPort);
  const listenPort = port === undefined ? DEFAULT_LISTEN_PORT : Number(port);
  if (!Number.isInteger(listenPort) || listenPort < 1 || listenPort > 65535) throw new BadRamdiskCmdline(`${IRONIC_CMDLINE.listenPort}=${port} is not a TCP port`);
  const advertiseHost = cmdlineWord(cmdline, IRONIC_CMDLINE.advertiseHost);
  return { apiUrl, listenPort, ...(advertiseHost ? { advertiseHost } : {}), ...bootAndCa(cmdline) };
}
