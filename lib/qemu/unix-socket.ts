import { connect, type Socket } from "node:net";

/** Connect to a unix socket qemu is about to create: retry until it answers or `timeoutMs` passes. */
export async function connectWhenReady(path: string, what: string, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect(path);
        s.once("connect", () => resolve(s));
        s.once("error", reject);
      });
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${what} ${path} did not answer: ${(e as Error).message}`);
      await Bun.sleep(50);
    }
  }
}
