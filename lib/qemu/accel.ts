import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { execa } from "execa";
import { log } from "../log.ts";

/**
 * TCG always works; KVM is faster but hangs on some hosts. "auto" uses KVM
 * only if a probe boot of a real kernel prints its banner in time. The
 * answer is cached for this boot of the host.
 */
export type Accel = "tcg" | "kvm";

const CACHE = "/run/ooo-kvm-probe";

function bootId() {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "unknown";
  }
}

export async function chooseAccel(wanted: "auto" | Accel, probeKernel?: string): Promise<Accel> {
  if (wanted !== "auto") return wanted;
  if (!existsSync("/dev/kvm") || !probeKernel) return "tcg";
  const id = bootId();
  try {
    const [cachedId, answer] = readFileSync(CACHE, "utf8").trim().split(" ");
    if (cachedId === id && (answer === "kvm" || answer === "tcg")) return answer;
  } catch {}
  const answer = await log.step("probe KVM", () => probeKvm(probeKernel));
  try {
    writeFileSync(CACHE, `${id} ${answer}\n`);
  } catch {}
  log.info(`qemu acceleration: ${answer}`);
  return answer;
}

async function probeKvm(kernel: string): Promise<Accel> {
  const child = execa(
    "qemu-system-x86_64",
    ["-accel", "kvm", "-cpu", "host", "-m", "256", "-display", "none", "-no-reboot", "-kernel", kernel, "-append", "console=ttyS0 panic=-1", "-serial", "stdio"],
    { reject: false, timeout: 15_000, killSignal: "SIGKILL", stdin: "ignore" },
  );
  // A whole kernel start, not just its banner: without a root it must reach
  // "VFS: Unable to mount root fs" (a hanging KVM stops long before).
  let seen = false;
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
    if (out.includes("VFS:")) {
      seen = true;
      child.kill("SIGKILL");
    }
  });
  await child;
  return seen ? "kvm" : "tcg";
}
