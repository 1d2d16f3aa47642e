/**
 * `allium testnet ctl <command> [nickname]`: poke a running testnet through
 * its control socket (./testnet-ctl.ts): stop, kill, start, restart, pause
 * or resume a node by nickname, or list them (status). Prints the answer;
 * exits 0 when it ends in `ok`, 1 otherwise.
 */
import { resolve, join } from 'node:path';
import type { Command } from 'commander';
import { CTL_SOCKET, findRunningTestnet, parseCtlCommand, sendCtlCommand } from './testnet-ctl.js';
import { parsePath } from './options.js';

export function registerCtlCommand(testnet: Command): void {
  testnet
    .command('ctl')
    .description('poke a running testnet: status | stop|kill|start|restart|pause|resume <nickname> | help')
    .argument('<command>', 'status, stop, kill, start, restart, pause, resume or help')
    .argument('[nickname]', 'the node, e.g. relay3, auth1, client')
    .option('--data-dir <dir>', 'the running testnet\'s data directory (default: the one testnet running under the OS temp dir)', parsePath)
    .action(async (verb: string, nickname: string | undefined, opts: { dataDir?: string }, command: Command) => {
      const line = nickname === undefined ? verb : `${verb} ${nickname}`;
      const parsed = parseCtlCommand(line);
      if ('error' in parsed) command.error(`error: ${parsed.error}`);
      // `--data-dir` after `ctl` may be taken by the parent `testnet` command, which has the same option.
      const dataDir = opts.dataDir ?? (command.parent?.opts() as { dataDir?: string } | undefined)?.dataDir;
      let socket: string;
      let answer: { ok: boolean; lines: string[] };
      try {
        socket = dataDir !== undefined ? join(resolve(dataDir), CTL_SOCKET) : await findRunningTestnet();
        answer = await sendCtlCommand(socket, line);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        const why = code === 'ENOENT' || code === 'ECONNREFUSED' ? `no testnet is running there (${code})` : (error as Error).message;
        return command.error(`error: ${why}`);
      }
      for (const l of answer.lines) process.stdout.write(`${l}\n`);
      if (!answer.ok) process.exitCode = 1;
    });
}
