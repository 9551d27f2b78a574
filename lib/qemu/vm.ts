import { existsSync, mkdirSync, openSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import type { Accel } from "./accel.ts";
import { DebugChannel } from "./channel.ts";
import { newVarStore, type Firmware } from "./firmware.ts";
import { machineArgs } from "./machine.ts";
import { Qmp } from "./qmp.ts";

/**
 * One qemu virtual machine: serial console captured to a log file and
 * watched line by line, QMP for power control, an optional debug command
 * channel on the second serial port, and user networking with restrict=on
 * (the guest reaches nothing but the forwards given, all to loopback).
 */
export interface VmOptions {
  name: string;
  /** Run folder: sockets and the console log go here. */
  dir: string;
  /** `serial`: what the guest reads as the disk's serial number (root device hints match it). */
  disk: { file: string; format: "raw" | "qcow2"; serial?: string };
  /** More disks (a config drive, a seed), attached after the boot disk. */
  extraDisks?: { file: string; format: "raw" | "qcow2"; readOnly?: boolean; serial?: string }[];
  accel: Accel;
  /** bios (default) or uefi; a UEFI machine keeps its variable store in `dir` across power cycles, as a real one keeps its NVRAM. */
  firmware?: Firmware;
  memoryMiB?: number;
  cpus?: number;
  /** Direct boot instead of the disk's bootloader. */
  kernel?: { vmlinuz: string; initrd: string; append: string };
  debugChannel?: boolean;
  /** guestfwd rules: guest IP:port → a command run per connection (its stdio is the connection). */
  guestForwards?: { ip: string; port: number; command: string }[];
  /** hostfwd rules: host 127.0.0.1:hostPort → guest port. */
  hostForwards?: { hostPort: number; guestPort: number }[];
  consoleLog?: string;
  extraArgs?: string[];
}

export class Vm {
  readonly consoleLog: string;
  readonly startedAt = performance.now();
  private consoleText = "";
  private lineListeners: (() => void)[] = [];
  private exited = false;
  private exitInfo = "";

  private constructor(
    readonly options: VmOptions,
    private readonly child: ResultPromise,
    readonly qmp: Qmp,
    readonly channel: DebugChannel | undefined,
    logFd: number,
  ) {
    this.consoleLog = options.consoleLog ?? join(options.dir, "console.log");
    child.stdout!.on("data", (d: Buffer) => {
      writeSync(logFd, d);
      this.consoleText += d.toString("utf8").replaceAll("\r", "");
      if (this.consoleText.length > 4_000_000) this.consoleText = this.consoleText.slice(-2_000_000);
      for (const l of this.lineListeners.splice(0)) l();
    });
    child.stderr!.on("data", (d: Buffer) => {
      this.exitInfo += d.toString();
    });
    void child.then(
      (r) => this.onExit(`exit ${r.exitCode}${r.signal ? ` (${r.signal})` : ""}`, logFd),
      () => this.onExit("failed", logFd),
    );
  }

  private onExit(how: string, fd: number) {
    this.exited = true;
    this.exitInfo = `qemu ${how}: ${this.exitInfo.trim()}`;
    try {
      closeSync(fd);
    } catch {}
    for (const l of this.lineListeners.splice(0)) l();
  }

  static async start(options: VmOptions): Promise<Vm> {
    mkdirSync(options.dir, { recursive: true });
    const qmpPath = join(options.dir, "qmp.sock");
    const dbgPath = join(options.dir, "debug.sock");
    const varStore = join(options.dir, "ovmf-vars.fd");
    if (options.firmware === "uefi" && !existsSync(varStore)) newVarStore(varStore);
    const args = [
      ...machineArgs({
        name: options.name,
        accel: options.accel,
        memoryMiB: options.memoryMiB ?? 1024,
        cpus: options.cpus ?? 1,
        guestForwards: options.guestForwards,
        hostForwards: options.hostForwards,
        firmware: options.firmware,
        varStore,
      }),
      ...diskArgs(options.disk, "disk0", ",discard=unmap"),
      ...(options.extraDisks ?? []).flatMap((d, i) => diskArgs(d, `disk${i + 1}`, d.readOnly ? ",readonly=on" : "")),
      "-chardev", "stdio,id=console,signal=off",
      "-serial", "chardev:console",
      ...(options.debugChannel ? ["-chardev", `socket,id=dbg,path=${dbgPath},server=on,wait=off`, "-serial", "chardev:dbg"] : []),
      "-qmp", `unix:${qmpPath},server=on,wait=off`,
      ...(options.kernel ? ["-kernel", options.kernel.vmlinuz, "-initrd", options.kernel.initrd, "-append", options.kernel.append] : []),
      ...(options.extraArgs ?? []),
    ];
    const logFd = openSync(options.consoleLog ?? join(options.dir, "console.log"), "w");
    const child = execa("qemu-system-x86_64", args, { stdin: "ignore", buffer: false, reject: false });
    const qmp = await Qmp.connect(qmpPath);
    const channel = options.debugChannel ? await DebugChannel.connect(dbgPath) : undefined;
    return new Vm(options, child, qmp, channel, logFd);
  }

  /** Seconds since this VM was started (power-on). */
  elapsed(): number {
    return (performance.now() - this.startedAt) / 1000;
  }

  get console(): string {
    return this.consoleText;
  }

  tail(lines = 30): string[] {
    return this.consoleText.trimEnd().split("\n").slice(-lines);
  }

  /** Wait for a console line matching `pattern` (searching from `from`, a console offset). */
  async waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<{ match: RegExpExecArray; seconds: number; end: number }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const text = this.consoleText.slice(from);
      const m = pattern.exec(text);
      if (m) return { match: m, seconds: this.elapsed(), end: from + m.index + m[0].length };
      if (this.exited) throw new VmError(`${this.options.name} stopped (${this.exitInfo}) before printing ${pattern}`, this.tail());
      const left = deadline - performance.now();
      if (left <= 0) throw new VmError(`${this.options.name} did not print ${pattern} within ${timeoutMs / 1000}s`, this.tail());
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.lineListeners.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Hard reset, as the reset button. */
  async reset() {
    await this.qmp.command("system_reset");
  }

  /** Pull the plug: qemu quits at once, no clean shutdown. */
  async kill() {
    if (this.exited) return;
    try {
      await this.qmp.command("quit");
    } catch {}
    await this.child.catch(() => {});
  }

  get running() {
    return !this.exited;
  }

  /** qemu's process id (benchmarks read its CPU time). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  async wait() {
    await this.child.catch(() => {});
  }
}

/** A virtio disk; with a serial number, as a drive and a device (qemu takes serial= only on the device). */
function diskArgs(d: { file: string; format: string; serial?: string }, id: string, options: string): string[] {
  const drive = `file=${d.file},format=${d.format},cache=unsafe${options}`;
  if (!d.serial) return ["-drive", `${drive},if=virtio`];
  return ["-drive", `${drive},if=none,id=${id}`, "-device", `virtio-blk-pci,drive=${id},serial=${d.serial}`];
}

export class VmError extends Error {
  constructor(
    message: string,
    readonly consoleTail: string[],
  ) {
    super(`${message}\nlast console lines:\n${consoleTail.map((l) => `    ${l}`).join("\n")}`);
  }
}

