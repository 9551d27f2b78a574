import { log } from "../../lib/log.ts";
import { caFingerprint } from "../../wire/deploy.ts";

/**
 * The stack's CA for a ramdisk that has nothing yet: the certificate is
 * fetched over plain http (beside the boot files) and trusted only if its
 * sha256 (of the DER certificate, as `openssl x509 -fingerprint -sha256`)
 * is the one on the kernel command line (RAMDISK_CMDLINE.caSha256), which
 * came with the boot script. From then on the ramdisk verifies the metadata
 * service against it, so its token and the config drive (the node's token
 * and trust) never cross the network in clear. A certificate that does not
 * match is never used: the ramdisk waits and asks again, saying so.
 */
export async function pinnedCa(url: string, sha256: string): Promise<string> {
  let delay = 1;
  let said = "";
  for (;;) {
    let why: string;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
      if (!res.ok) why = `${url} answered ${res.status}`;
      else {
        const pem = await res.text();
        let got: string;
        try {
          got = caFingerprint(pem);
        } catch {
          got = "not a certificate";
        }
        if (got === sha256) {
          log.info(`the stack's CA from ${url} has the pinned sha256 ${sha256.slice(0, 16)}…: trusted`);
          return pem;
        }
        why = `the certificate at ${url} is ${got === "not a certificate" ? got : `sha256 ${got}`}, not the pinned ${sha256}: not trusted`;
      }
    } catch (e) {
      why = `${url} is not reachable: ${(e as Error).message}`;
    }
    if (why !== said) log.warn(`${why}; trying again`);
    said = why;
    await Bun.sleep(delay * 1000);
    delay = Math.min(delay * 2, 15);
  }
}
