import type { Argv, CommandModule } from "yargs";
import { UsageError } from "../lib/errors.ts";
import { withExamples } from "../lib/help.ts";
import { generateKeyFiles, PASSWORD_ENV } from "./signing.ts";

/** `ooo key generate NAME`: a signing key pair for `ooo publish --sign`, in minisign's format. */
type GenerateArgs = { name: string; unencrypted?: boolean };

const generateCommand: CommandModule<object, GenerateArgs> = {
  command: "generate <name>",
  describe: "write NAME.key (secret, 0600) and NAME.pub (for stacks' trust.keys), minisign's format",
  builder: (y) =>
    withExamples(
      y
        .positional("name", { type: "string", demandOption: true, describe: "path and name of the pair, without extension (its folder is made when missing)" })
        .option("unencrypted", { type: "boolean", describe: "no password on NAME.key (minisign -W): for CI, whose secret store guards the file" }),
      [["$0 key generate ci", `asks a password (or takes ${PASSWORD_ENV})`], ["$0 key generate ci --unencrypted"]],
    ) as unknown as Argv<GenerateArgs>,
  handler: async (argv) => {
    const r = await generateKeyFiles(argv.name, { unencrypted: argv.unencrypted });
    process.stderr.write(
      `wrote ${r.secret} (secret${argv.unencrypted ? ", unencrypted" : ""}, 0600) and ${r.public}: key ID ${r.id}\n` +
        `sign with: ooo publish --sign ${r.secret} OUTPUT; trust with: trust: {keys: [${r.public}]} in a stack; check with: minisign -Vm FILE -p ${r.public}\n`,
    );
  },
};

export const keyCommand: CommandModule = {
  command: "key <command>",
  describe: "signing keys for images (minisign's format)",
  builder: (y) => y.command(generateCommand as unknown as CommandModule).demandCommand(1, "name a key command"),
  handler: () => {
    throw new UsageError("name a key command: generate");
  },
};
