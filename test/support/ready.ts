/**
 * Wait for a server a test started: poll `probe` until it says yes. If a
 * process died (`died` names it) or `timeoutMs` passed, stop what was
 * started and throw with the tail of its logs, so a failed start says why.
 */
export async function waitReady(
  what: string,
  probe: () => Promise<boolean>,
  o: { died: () => string | undefined; logs: () => Promise<string>; stop: () => Promise<void>; timeoutMs?: number },
): Promise<void> {
  for (const deadline = Date.now() + (o.timeoutMs ?? 60_000); ; await Bun.sleep(200)) {
    if (await probe().catch(() => false)) return;
    const died = o.died();
    if (died !== undefined || Date.now() > deadline) {
      const logs = await o.logs().catch(() => "");
      await o.stop();
      throw new Error(`${what} did not start${died ? ` (${died})` : ""}:\n${logs.slice(-3000)}`);
    }
  }
}
