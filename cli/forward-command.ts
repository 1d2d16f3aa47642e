/**
 * `allium forward`: front any TCP service with an emulated wide-area link
 * (src/link/forwarder.ts). Also runs standalone as bench/wan-forwarder.ts, so
 * the same delay and rate can be put in front of other implementations (C tor)
 * for comparison.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { formatEndpoint, parseEndpoint, type Endpoint } from '../src/link/forwarder.js';
import { linkShapeOf, linkShapeOptions, type LinkShapeOptions } from './link-options.js';
import { printUp, runRole, say } from './lifecycle.js';
import { parseNickname } from './options.js';

interface ForwardOptions extends LinkShapeOptions {
  nickname: string;
  listen: Endpoint;
  connect: Endpoint;
}

function endpoint(value: string): Endpoint {
  const e = parseEndpoint(value);
  if (e === null) throw new InvalidArgumentError('Expected HOST:PORT, [IPv6]:PORT or unix:PATH.');
  return e;
}

/** Configures `command` as the forwarder: options and action. Returns it. */
export function forwardCommand(command: Command): Command {
  const [linkDelay, linkJitter, linkRate] = linkShapeOptions('the link to the target');
  return command
    .description('forward TCP connections to a target through an emulated WAN link (delay, jitter, rate in both directions)')
    .requiredOption('--listen <endpoint>', 'where to listen: HOST:PORT (port 0 = any free port) or unix:PATH', endpoint)
    .requiredOption('--connect <endpoint>', 'the target: HOST:PORT or unix:PATH', endpoint)
    .option('--nickname <name>', 'name in its up line', parseNickname, 'forward')
    .addOption(linkDelay)
    .addOption(linkJitter)
    .addOption(linkRate)
    .action(async (opts: ForwardOptions) => {
      await runRole(
        'forward',
        async () => {
          const { startForwarder } = await import('../src/link/forwarder.js');
          return startForwarder({ listen: opts.listen, target: opts.connect, shape: linkShapeOf(opts) ?? null });
        },
        (forwarder) => {
          const shape = linkShapeOf(opts);
          const rate = shape?.rateBps === undefined || shape.rateBps === null ? 'unlimited' : `${shape.rateBps / 1e6} Mbit/s`;
          const how = shape === undefined ? 'no shaping' : `delay ${shape.delayMs} ms, jitter ${shape.jitterMs ?? 0} ms, rate ${rate}`;
          say('forward', `${formatEndpoint(forwarder.address)} → ${formatEndpoint(opts.connect)} (${how})`);
          printUp({ role: 'forward', nickname: opts.nickname, listen: formatEndpoint(forwarder.address), connect: formatEndpoint(opts.connect) });
        },
      );
    });
}

export function registerForwardCommand(program: Command): void {
  forwardCommand(program.command('forward'));
}
