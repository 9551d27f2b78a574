import { loadKexecKernel } from "./kexec.ts";

/**
 * A thread behind kexec.ts's preloadKexecKernel: kexec_file_load blocks its
 * caller while the kernel reads and hashes the kernel and the initrd
 * (seconds under emulation); here it blocks only this thread.
 */
declare const self: Worker;

self.onmessage = (event: MessageEvent<Parameters<typeof loadKexecKernel>[0]>) => {
  self.postMessage(loadKexecKernel(event.data));
};
