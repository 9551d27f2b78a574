#!/usr/bin/env bun
import yargs, { type CommandModule } from "yargs";
import { hideBin } from "yargs/helpers";
import { buildImageCommand, elementInfoCommand } from "../builder/cli.ts";
import { deployerCommands } from "../deployer/cli.ts";
import { isOooError } from "../lib/errors.ts";
import { promoteCommand, publishCommand, testImageCommand } from "../pipeline/cli.ts";
import { keyCommand } from "../pipeline/key-cli.ts";
import { storeCommand } from "../store/cli.ts";
import { log, terminalSink } from "../lib/log.ts";
import pkg from "../package.json" with { type: "json" };

/**
 * ooo's one command line. Each part of ooo (builder, pipeline, store,
 * deployer, agents) contributes its commands; this file only wires them up
 * and turns errors into messages and exit codes: an OooError is the user's
 * to fix and prints its message; anything else is a bug in ooo.
 */
async function main() {
  log.addSink(terminalSink());
  await yargs(hideBin(process.argv))
    .scriptName("ooo")
    .parserConfiguration({ "boolean-negation": false })
    .command(buildImageCommand)
    .command(elementInfoCommand)
    .command(testImageCommand)
    .command(storeCommand)
    .command(publishCommand)
    .command(promoteCommand)
    .command(keyCommand)
    .command(deployerCommands as unknown as CommandModule[])
    .demandCommand(1, "name a command; `ooo --help` lists them")
    .strict()
    .version(pkg.version)
    .help()
    .alias("h", "help")
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .fail((message, error) => {
      if (error) throw error;
      process.stderr.write(`error: ${message}\nRun with --help for usage.\n`);
      process.exit(2);
    })
    .parseAsync();
}

main().catch((error: unknown) => {
  if (isOooError(error)) {
    process.stderr.write(`error: ${error.message}\n`);
    if (error.hint) process.stderr.write(`hint: ${error.hint}\n`);
    process.exit(error.exitCode);
  }
  process.stderr.write(
    `internal error: this is a bug in ooo, please report it with the command and its log.\n${
      error instanceof Error ? (error.stack ?? error.message) : String(error)
    }\n`,
  );
  process.exit(70);
});
