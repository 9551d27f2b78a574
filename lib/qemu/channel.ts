import type { Socket } from "node:net";
import { connectWhenReady } from "./unix-socket.ts";

/**
 * Host side of the debug-channel element's command channel on the guest's
 * second serial port: send `ID COMMAND`, read until `OOO-END ID STATUS`.
 */
export class DebugChannel {
  private buffer = "";
  private counter = 0;
  private listeners: (() => void)[] = [];
  private ready = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      this.buffer += d.replaceAll("\r", "");
      if (this.buffer.includes("OOO-CHANNEL-READY")) {
        this.ready = true;
        this.buffer = this.buffer.replaceAll("OOO-CHANNEL-READY\n", "");
      }
      for (const l of this.listeners.splice(0)) l();
    });
    socket.on("error", () => {});
  }

  static async connect(path: string, timeoutMs = 10_000): Promise<DebugChannel> {
    return new DebugChannel(await connectWhenReady(path, "debug channel", timeoutMs));
  }

  private changed(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("timed out")), timeoutMs);
      this.listeners.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Run a shell command in the guest; resolves with its status and merged output. */
  async exec(command: string, timeoutMs = 60_000): Promise<{ status: number; output: string }> {
    const id = `c${++this.counter}${Date.now().toString(36)}`;
    const deadline = Date.now() + timeoutMs;
    // Sent once the guest's channel said it is listening, exactly once.
    let sent = false;
    for (;;) {
      const end = new RegExp(`OOO-BEGIN ${id}\\n([\\s\\S]*?)OOO-END ${id} (\\d+)\\n`).exec(this.buffer);
      if (end) {
        this.buffer = this.buffer.slice(end.index + end[0].length);
        return { status: Number(end[2]), output: end[1]! };
      }
      if (Date.now() > deadline)
        throw new Error(`guest command ${sent ? "timed out" : "never sent: the channel did not come up"} after ${timeoutMs / 1000}s: ${command}`);
      if (!sent && this.ready) {
        this.socket.write(`${id} ${command}\n`);
        sent = true;
      }
      await this.changed(Math.max(1, Math.min(1000, deadline - Date.now()))).catch(() => {});
    }
  }

  close() {
    this.socket.destroy();
  }
}
