import type { Argv, CommandModule } from "yargs";
import { table } from "../lib/log.ts";
import { testImage } from "./test-image.ts";

type TestImageArgs = { image: string; boot: string; accel: string; timeout: number; json?: boolean };

export const testImageCommand: CommandModule<object, TestImageArgs> = {
  command: "test-image <image>",
  describe: "boot a built image in qemu and check it is a sound golden node",
  builder: (y) =>
    y
      .positional("image", { type: "string", demandOption: true, describe: "the build's -o path, manifest, or .raw/.qcow2" })
      .option("boot", { choices: ["direct", "disk", "both"], default: "both", describe: "kernel+initrd, the disk's own bootloader, or both" })
      .option("accel", { choices: ["auto", "tcg", "kvm"], default: "auto", describe: "qemu acceleration (auto: KVM only if a probe boot works)" })
      .option("timeout", { type: "number", default: 120, describe: "seconds to wait for the node's ready line" })
      .option("json", { type: "boolean", describe: "print the result as JSON on stdout" })
      .example("$0 test-image out/default", "boot both ways and check") as unknown as Argv<TestImageArgs>,
  handler: async (argv) => {
    const result = await testImage({
      image: argv.image,
      modes: argv.boot === "both" ? ["direct", "disk"] : [argv.boot as "direct" | "disk"],
      accel: argv.accel as "auto" | "tcg" | "kvm",
      timeoutSeconds: argv.timeout,
    });
    process.stderr.write(
      "\n" +
        table(
          ["boot", "power-on to ready (s)", "slot", "root ro", "state", "state paths", "console log"],
          result.boots.map((b) => [
            b.mode,
            b.seconds,
            b.report.slot,
            String(b.report.rootReadOnly),
            `${b.report.state.kind}${b.report.state.writable ? " rw" : " ro"}`,
            b.report.statePaths.length,
            b.consoleLog,
          ]),
        ) +
        `\n\n${result.digest}: all checks passed\n`,
    );
    if (argv.json) process.stdout.write(JSON.stringify(result, null, 2) + "\n");
  },
};
