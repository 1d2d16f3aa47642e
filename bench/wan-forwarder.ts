#!/usr/bin/env node
/**
 * Standalone WAN-emulating TCP forwarder: the same as `allium forward`, runnable
 * without the rest of the CLI, to put a delay and a line rate in front of any
 * TCP service (for instance a C tor relay's ORPort, for side-by-side runs):
 *
 *   node dist/bench/wan-forwarder.js --listen 127.0.0.1:9101 --connect 127.0.0.1:9001 \
 *       --link-delay 20 --link-rate 100
 *
 * Prints one JSON `up` line on stdout once listening (its `listen` field has
 * the bound port); stops on Ctrl-C.
 * Both directions get the delay and the rate; bytes are never reordered and
 * every queue is bounded (src/link/delay-line.ts).
 */
import { Command } from 'commander';
import { forwardCommand } from '../cli/forward-command.js';

await forwardCommand(new Command('wan-forwarder')).parseAsync(process.argv);
