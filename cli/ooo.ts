#!/usr/bin/env bun
import "../lib/zod-messages.ts";
import yargs, { type Argv, type CommandModule, type MiddlewareFunction } from "yargs";
import { hideBin } from "yargs/helpers";
import { buildImageCommand, elementInfoCommand } from "../builder/cli.ts";
import { deployerCommands } from "../deployer/cli.ts";
import { asUserError, EXIT } from "../lib/errors.ts";
import { promoteCommand, publishCommand, testImageCommand } from "../pipeline/cli.ts";
import { keyCommand } from "../pipeline/key-cli.ts";
import { storeCommand } from "../store/cli.ts";
import { log, terminalSink } from "../lib/log.ts";
import { helpWidth, onlyOnce, type UsageView, yargsFailure } from "./usage.ts";
import pkg from "../package.json" with { type: "json" };

/**
 * ooo's one command line. Each part of ooo (builder, pipeline, store,
 * deployer, agents) contributes its commands; this file only wires them up
 * and turns errors into messages and exit codes (lib/errors.ts EXIT): an
 * OooError, or a system error on a path, is the user's to fix and prints
 * its message; anything else is a bug in ooo.
 */
const COMMANDS = [buildImageCommand, elementInfoCommand, testImageCommand, storeCommand, publishCommand, promoteCommand, keyCommand, ...deployerCommands] as unknown as CommandModule[];

async function main() {
  log.addSink(terminalSink());
  // yargs 18's usageConfiguration (not in @types/yargs 17): no "[string]" columns, which wrap badly;
  // each description says what its value is.
  const parser = (yargs(hideBin(process.argv)) as Argv & { usageConfiguration(c: { "hide-types": boolean }): Argv }).usageConfiguration({ "hide-types": true });
  await parser
    .scriptName("ooo")
    .parserConfiguration({ "boolean-negation": false })
    .command(COMMANDS)
    .middleware(onlyOnce as unknown as MiddlewareFunction)
    .demandCommand(1, "name a command")
    .strict()
    .version(pkg.version)
    .help()
    .alias("h", "help")
    .wrap(helpWidth())
    // The third argument is yargs' usage instance, not the Argv its types say.
    .fail(((message: string, error: Error | undefined, usage: UsageView) => {
      if (error) throw error;
      process.stderr.write(`error: ${yargsFailure(message, usage)}\nRun with --help for usage.\n`);
      process.exit(EXIT.usage.code);
    }) as unknown as (message: string, error: Error) => never)
    .parseAsync();
}

main().catch((error: unknown) => {
  const user = asUserError(error);
  if (user) {
    process.stderr.write(`error: ${user.message}\n`);
    if (user.hint) process.stderr.write(`hint: ${user.hint}\n`);
    process.exit(user.exitCode);
  }
  process.stderr.write(
    `internal error: this is a bug in ooo, please report it with the command and its log.\n${
      error instanceof Error ? (error.stack ?? error.message) : String(error)
    }\n`,
  );
  process.exit(EXIT.internal.code);
});
