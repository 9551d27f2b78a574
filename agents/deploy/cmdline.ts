import { z } from "zod";
import { normaliseMac, RAMDISK_CMDLINE } from "../../wire/deploy.ts";
import { Sha256Hex } from "../../wire/image-ref.ts";
import { BadRamdiskCmdline } from "../errors.ts";

/**
 * What the boot script told the ramdisk on its kernel command line
 * (RAMDISK_CMDLINE): where the metadata service is, which NIC the machine
 * booted from, and which CA the service's TLS chain ends in.
 */
export interface RamdiskArgs {
  metadataUrl: string;
  bootMac?: string;
  caSha256?: string;
  /** Where the pinned CA certificate is served (plain http: its sha256 is what makes it trusted). */
  caUrl?: string;
}

export const HttpUrl = z.url({ protocol: /^https?$/ });

/** The value of `key=` on a kernel command line (the last one wins, as the kernel's own parameters). */
export function cmdlineWord(cmdline: string, key: string): string | undefined {
  let value: string | undefined;
  for (const word of cmdline.trim().split(/\s+/)) if (word.startsWith(`${key}=`)) value = word.slice(key.length + 1);
  return value;
}

export function parseRamdiskCmdline(cmdline: string): RamdiskArgs {
  const url = cmdlineWord(cmdline, RAMDISK_CMDLINE.metadataUrl);
  if (!url) throw new BadRamdiskCmdline(`the kernel command line has no ${RAMDISK_CMDLINE.metadataUrl}=URL (the metadata service): the boot script must give it`);
  if (!HttpUrl.safeParse(url).success) throw new BadRamdiskCmdline(`${RAMDISK_CMDLINE.metadataUrl}=${url} is not an http(s) URL`);
  return { metadataUrl: url, ...bootAndCa(cmdline) };
}

/** The boot NIC and the CA pin, as both the metadata service's and Ironic's boot scripts give them. */
export function bootAndCa(cmdline: string): { bootMac?: string; caSha256?: string; caUrl?: string } {
  const bootif = cmdlineWord(cmdline, RAMDISK_CMDLINE.bootMac);
  const bootMac = bootif === undefined ? undefined : normaliseMac(bootif);
  if (bootif !== undefined && !bootMac) throw new BadRamdiskCmdline(`${RAMDISK_CMDLINE.bootMac}=${bootif} is not a MAC address`);
  const ca = cmdlineWord(cmdline, RAMDISK_CMDLINE.caSha256)?.toLowerCase();
  if (ca !== undefined && !Sha256Hex.safeParse(ca).success) throw new BadRamdiskCmdline(`${RAMDISK_CMDLINE.caSha256}=${ca} is not a sha256 (64 hex digits)`);
  const caUrl = cmdlineWord(cmdline, RAMDISK_CMDLINE.caUrl);
  if (caUrl !== undefined && !HttpUrl.safeParse(caUrl).success) throw new BadRamdiskCmdline(`${RAMDISK_CMDLINE.caUrl}=${caUrl} is not an http(s) URL`);
  if (ca && !caUrl) throw new BadRamdiskCmdline(`${RAMDISK_CMDLINE.caSha256}= needs ${RAMDISK_CMDLINE.caUrl}=URL (where the CA certificate is served)`);
  return { ...(bootMac ? { bootMac } : {}), ...(ca ? { caSha256: ca, caUrl } : {}) };
}
