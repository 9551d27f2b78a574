import type { Socket } from "node:net";
import { connectWhenReady } from "./unix-socket.ts";

/**
 * A minimal QMP client (QEMU Machine Protocol: JSON lines over a unix
 * socket): the greeting, qmp_capabilities, then one command at a time.
 */
export class Qmp {
  private buffer = "";
  private waiters: ((msg: Record<string, unknown>) => void)[] = [];
  readonly events: Record<string, unknown>[] = [];

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (data: string) => {
      this.buffer += data;
      let nl: number;
      while ((nl = this.buffer.indexOf("\n")) >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ("event" in msg) this.events.push(msg);
        else this.waiters.shift()?.(msg);
      }
    });
    socket.on("error", () => {});
  }

  static async connect(path: string, timeoutMs = 10_000): Promise<Qmp> {
    const qmp = new Qmp(await connectWhenReady(path, "QMP socket", timeoutMs));
    await qmp.next(); // greeting
    await qmp.command("qmp_capabilities");
    return qmp;
  }

  private next(): Promise<Record<string, unknown>> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async command(execute: string, args?: Record<string, unknown>): Promise<unknown> {
    const reply = this.next();
    this.socket.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + "\n");
    const msg = await reply;
    if ("error" in msg) throw new Error(`QMP ${execute}: ${JSON.stringify(msg.error)}`);
    return msg.return;
  }

  close() {
    this.socket.destroy();
  }
}
