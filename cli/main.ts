#!/usr/bin/env node
/**
 * The `allium` command: one subcommand per role (authority, relay, client)
 * plus `testnet`, which runs a whole loopback network in the foreground.
 * Bad options print a clear error on stderr and exit non-zero.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerAuthorityCommand } from './authority-command.js';
import { registerClientCommand } from './client-command.js';
import { registerRelayCommand } from './relay-command.js';
import { registerTestnetCommand } from './testnet-command.js';
import { registerForwardCommand } from './forward-command.js';
import { registerDestinationCommand } from './destination-command.js';
import { registerKeysCommand } from './keys-command.js';
import { describeError } from './lifecycle.js';
import { ConfigError } from './config/load.js';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function buildProgram(): Command {
  const program = new Command('allium')
    .description('Allium: an onion-routing network in the spirit of Tor')
    .version(packageVersion())
    .exitOverride()
    // Options after a subcommand belong to it (`allium authority keygen --data-dir …`).
    .enablePositionalOptions()
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ showGlobalOptions: false });
  registerAuthorityCommand(program);
  registerRelayCommand(program);
  registerClientCommand(program, packageVersion());
  registerTestnetCommand(program);
  registerForwardCommand(program);
  registerDestinationCommand(program);
  registerKeysCommand(program);
  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander already printed the message (or the help) itself.
      process.exitCode = error.exitCode;
      return;
    }
    if (error instanceof ConfigError) process.stderr.write(`allium: error: bad configuration:\n${error.message}\n`);
    else process.stderr.write(`allium: ${describeError(error)}\n`);
    process.exitCode = 1;
  }
}

await main();
