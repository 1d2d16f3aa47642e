/**
 * `allium testnet`: a whole Allium network on loopback, in the foreground.
 *
 * A authorities (default 3) on 127.100.0.1 … 127.100.0.A, voting with each
 * other through an authorities file the testnet writes once they are all up,
 * N relays each on its own loopback /16
 * (127.1.0.1 … 127.N.0.1; the first E of them exits that may reach loopback),
 * and a client whose SOCKS5 port is on 127.0.0.1. Every node is a child
 * process (`node dist/cli/main.js <role> …`) with its own data directory and
 * log file under the testnet's data directory.
 *
 * With `netns`, every node runs in its own network namespace instead, on its
 * own 10.64.0.0/10 address (./netns.ts), next to a destination HTTP server in
 * a namespace of its own; the SOCKS port still reaches the host on
 * 127.0.0.1. With `linkShape`, every link gets a one-way delay and a rate
 * (src/link/shaped-transport.ts; with netns the rate is a tbf on each veth).
 *
 * stdout is for people: the `ready` line, and only that. The machine-readable
 * event lines (./testnet-events.ts: one `{"event":"node",…}` JSON line per
 * node, then the `ready` line, then `exit` and `node` lines as nodes exit and
 * are started again) go to <data dir>/events.jsonl, and with `json` to stdout
 * as well. Human progress goes to stderr. On SIGINT/SIGTERM, the end of stdin
 * (when it is a pipe), or a child dying before the network has formed, every
 * child is stopped by PID (SIGTERM, then SIGKILL after a grace period); the
 * process's own 'exit' SIGKILLs any child still alive. Once the network has
 * formed, a node that dies is reported and the rest keep running, and nodes
 * can be stopped, killed and started again by nickname (./node-supervisor.ts,
 * ./testnet-ctl.ts). One node's child process is ./node-process.ts.
 */
import { mkdirSync, mkdtempSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describeError, onStopRequest } from './lifecycle.js';
import { linkShapeArgs } from './link-options.js';
import { NetnsTestnet, netnsUnavailable, removeLeftovers } from './netns.js';
import { netnsNodes, netnsExitPolicyArgs, NETNS_CLIENT_SOCKS_PORT, NETNS_DESTINATION_PORT, NETNS_RANGE } from './netns-plan.js';
import { startForwarder, type Forwarder } from '../src/link/forwarder.js';
import type { LinkShape } from '../src/link/delay-line.js';
import { AlliumError } from '../src/errors.js';
import { startNetworkDashboard } from './dashboard/network-dashboard.js';
import { NodeSupervisor, type NodeSpec } from './node-supervisor.js';
import { readCtlStdin, startCtlServer, type CtlServer } from './testnet-ctl.js';
import { formatEventLine, formatReadyLine, metricsNote, type BootstrapEvent, type NodeInfo } from './testnet-events.js';
import { extraNodeFlags, NodeProcess, type Role, type UpEvent } from './node-process.js';

export { extraNodeFlags, logTail, NODE_ENV_VARS, NODE_FLAGS, NodeProcess } from './node-process.js';

export interface TestnetOptions {
  /** Directory authorities, 1..9. */
  authorities: number;
  relays: number;
  exits: number;
  socksPort: number;
  /** Default: a fresh directory under os.tmpdir(). */
  dataDir?: string;
  votingIntervalMs: number;
  /** Bound on the whole start-up, from the first spawn to `ready`. */
  startTimeoutMs: number;
  /** The client's HTTP CONNECT tunnel port (0 = any free port); none when absent. */
  httpTunnelPort?: number;
  /** The client's control port (0 = any free port; cookie authentication, the cookie in the client's directory); none when absent. */
  controlPort?: number;
  /** Each node in its own network namespace (./netns.ts); needs root. */
  netns?: boolean;
  /** The shape of every link a relay or the client dials (delay, jitter, rate). */
  linkShape?: LinkShape;
  /** `key=value` network parameters every authority votes for (e.g. cc_alg=0). */
  params?: readonly string[];
  /** Give every node a metrics port (any free port on its own address); default false. */
  metrics?: boolean;
  /** Event lines on stdout (for programs); default false: stdout has only the `ready` line. */
  json?: boolean;
  /** Serve one page for the whole network on 127.0.0.1:port (0 = any free port); implies `metrics`. */
  dashboardPort?: number;
  /** Every relay's bandwidth.rate (a size such as "1 MB"); default unlimited. */
  relayBandwidthRate?: string;
  /** Every relay's accounting.max (a size such as "20 MB"); default none. */
  relayAccountingMax?: string;
  /** Every relay also listens on [::1] (an IPv6 OR port) and the client prefers IPv6 (loopback testnets only). */
  ipv6?: boolean;
}

/** Authority i (1-based) listens on 127.100.0.i. */
export function authorityAddress(i: number): string {
  return `127.100.0.${i}`;
}
/** The first authority's address. */
export const AUTHORITY_ADDRESS = authorityAddress(1);
/** The file every authority reads the list of voting authorities from (in the testnet's data directory). */
export const AUTHORITIES_FILE = 'authorities';
export const SOCKS_ADDRESS = '127.0.0.1';
/** Relay i (1-based) listens on 127.i.0.1. */
export function relayAddress(i: number): string {
  return `127.${i}.0.1`;
}

/**
 * A node's metrics listen on its own address: the --address it is given, else
 * (the client) its namespace's address with --netns (`inNetns`), else SOCKS_ADDRESS.
 */
function metricsAddress(role: Role, args: readonly string[], inNetns?: string): string {
  if (role === 'client') return inNetns ?? SOCKS_ADDRESS;
  const i = args.indexOf('--address');
  return i >= 0 ? args[i + 1]! : SOCKS_ADDRESS;
}

/** SIGTERM → SIGKILL grace period per child. */
const KILL_GRACE_MS = 5_000;
/** After SIGKILL, how long to wait for 'exit' before giving up on a child. */
const KILL_WAIT_MS = 2_000;

function withDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  const ms = Math.max(0, deadline - Date.now());
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Where the event lines go: always <data dir>/events.jsonl; stdout too with `json`, else only the `ready` line there. */
function eventSink(dataDir: string, json: boolean): { event(line: string): void; ready(line: string): void } {
  const fd = openSync(join(dataDir, EVENTS_FILE), 'w', 0o600);
  const file = (line: string) => {
    try {
      writeSync(fd, `${line}\n`);
    } catch {
      // best effort, like the node logs
    }
  };
  return {
    event(line) {
      file(line);
      if (json) process.stdout.write(`${line}\n`);
    },
    ready(line) {
      file(line);
      process.stdout.write(`${line}\n`);
    },
  };
}

/** The event lines' file in the testnet's data directory. */
export const EVENTS_FILE = 'events.jsonl';

/** Runs the testnet until it is stopped; the returned promise never resolves (the process exits). */
export async function runTestnet(opts: TestnetOptions): Promise<void> {
  const started = Date.now();
  const progress = (message: string) => {
    const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
    process.stderr.write(`[allium testnet ${seconds}s] ${message}\n`);
  };
  if (opts.exits > opts.relays) throw new Error(`--exits (${opts.exits}) cannot exceed --relays (${opts.relays})`);
  // A bad ALLIUM_NODE_FLAGS fails here, before any node is started.
  extraNodeFlags('');
  const noNetns = opts.netns === true ? netnsUnavailable() : null;
  if (noNetns !== null) throw new AlliumError('ERR_CONFIG', `allium testnet --netns: ${noNetns}`);

  const dataDir = opts.dataDir !== undefined ? resolve(opts.dataDir) : mkdtempSync(join(tmpdir(), 'allium-testnet-'));
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });

  const sink = eventSink(dataDir, opts.json === true);
  const emit = sink.event;

  const nodes: NodeProcess[] = [];
  let stopping = false;
  let ready = false;
  let netns: NetnsTestnet | null = null;
  /** With --netns: listeners on the host's 127.0.0.1 for the client's ports in its namespace. */
  const hostForwarders: Forwarder[] = [];

  // Last resort: whatever path ends this process, no child outlives it, and no namespace.
  process.on('exit', () => {
    for (const node of nodes) node.kill('SIGKILL');
    netns?.teardownSync();
  });

  const shutdown = async (code: number, reason: string, detail?: string): Promise<never> => {
    if (!stopping) {
      stopping = true;
      progress(reason);
      if (detail !== undefined) process.stderr.write(`${detail.replace(/^/gm, '    | ')}\n`);
      progress(`stopping ${nodes.filter((n) => n.alive).length} node(s)`);
      // Client first, then relays, then the authorities.
      const order = [...nodes].reverse();
      supervisor.close();
      stopStdin?.();
      await ctl?.close().catch(() => {});
      for (const node of order) {
        node.child.stdin?.end();
        node.kill('SIGTERM');
        node.kill('SIGCONT'); // a paused node handles its SIGTERM
      }
      const all = Promise.all(order.map((n) => n.exited));
      await withDeadline(all, Date.now() + KILL_GRACE_MS, 'children').catch(() => {
        for (const node of order) {
          if (node.alive) progress(`${node.nickname} did not stop within ${KILL_GRACE_MS} ms; SIGKILL`);
          node.kill('SIGKILL');
        }
        return withDeadline(all, Date.now() + KILL_WAIT_MS, 'children').catch(() => {});
      });
      for (const node of nodes) node.closeLog();
      for (const forwarder of hostForwarders) await forwarder.close().catch(() => {});
      if (netns !== null) {
        netns.teardownSync();
        progress(`removed the network namespaces ${netns.id}-*`);
      }
      progress(`stopped; logs and keys are in ${dataDir}`);
      process.exit(code);
    }
    return new Promise<never>(() => {});
  };

  const onChildExit = (node: NodeProcess) => {
    if (stopping) return;
    if (ready) {
      supervisor.exited(node);
      return;
    }
    void shutdown(1, `${node.nickname} exited unexpectedly (${node.exitDescription}); the end of ${node.logPath}:`, node.tail().trimEnd());
  };

  onStopRequest((why) => {
    void shutdown(ready ? 0 : 1, why);
  });

  /** A client's bootstrap lines become progress lines, each problem once. */
  let lastWarning: string | undefined;
  const onBootstrap = (node: NodeProcess, e: BootstrapEvent) => {
    if (e.warning !== undefined) {
      if (e.warning === lastWarning) return;
      lastWarning = e.warning;
      progress(`${node.nickname} stuck at ${e.progress}% (${e.tag}): ${e.warning}`);
    } else {
      lastWarning = undefined;
      progress(`${node.nickname} bootstrapped ${e.progress}% (${e.tag}): ${e.summary}`);
    }
  };

  /** Each node's latest `up` line, by nickname (the network dashboard reads metrics ports and exit flags from it). */
  const ups = new Map<string, NodeInfo>();
  let ctl: CtlServer | undefined;
  let stopStdin: (() => void) | null = null;
  // The authority, relays and client keep their keys or state in their own directory, next to their log (the client
  // also its control cookie); a destination or forwarder only its log. With --netns, a node runs in the namespace
  // `spec.inside` (default its own).
  const startNode = (spec: NodeSpec): NodeProcess => {
    const dir = join(dataDir, spec.nickname);
    const dataArgs = spec.role === 'destination' || spec.role === 'forward' ? [] : ['--data-dir', dir];
    const inside = spec.inside ?? spec.nickname;
    const wrap = netns === null ? undefined : (argv: string[]) => netns!.command(inside, argv);
    const node = new NodeProcess(spec.nickname, spec.role, dir, join(dir, `${spec.nickname}.log`), [...spec.args, ...dataArgs], onChildExit, onBootstrap, wrap);
    nodes.push(node);
    return node;
  };
  const supervisor = new NodeSupervisor({
    spawn: startNode,
    onUp: (up) => announce(up),
    onExit: (exit) => emit(formatEventLine({ event: 'exit', ...exit })),
    progress,
    startTimeoutMs: opts.startTimeoutMs,
    stopGraceMs: KILL_GRACE_MS,
  });
  /** A node is up: remember its line and print its `node` line. */
  const announce = (up: NodeInfo & { nickname: string }) => {
    ups.set(up.nickname, up);
    emit(formatEventLine({ ...up, event: 'node' }));
  };
  const withMetrics = opts.metrics === true || opts.dashboardPort !== undefined;
  /** `portFlag`: the option naming its listening port (pinned on restart); `inside`: its network namespace with --netns (default its own). */
  const spawnNode = (nickname: string, role: Role, args: string[], where: { portFlag?: string; inside?: string } = {}): NodeProcess => {
    // The metrics port is pinned like the listening port, so a node started again keeps it. A destination or forwarder has none.
    const hasMetrics = withMetrics && role !== 'destination' && role !== 'forward';
    const metricsArgs = hasMetrics ? ['--metrics-port', '0', '--metrics-address', metricsAddress(role, args, netns?.addressOf(nickname))] : [];
    const spec: NodeSpec = {
      nickname,
      role,
      args: [...args, ...metricsArgs],
      portFlag: where.portFlag ?? '--port',
      ...(where.inside !== undefined ? { inside: where.inside } : {}),
    };
    const node = startNode(spec);
    supervisor.add(spec, node);
    return node;
  };

  const deadline = started + opts.startTimeoutMs;
  const waitUp = async <R extends Role>(node: NodeProcess, role: R): Promise<UpEvent<R>> => {
    try {
      const up = await withDeadline(node.up, deadline, `${node.nickname} to come up`);
      // NodeProcess resolves `up` only with a line of its own role.
      if (up.role !== role) throw new Error(`${node.nickname}: up line of a ${up.role}`);
      return up as UpEvent<R>;
    } catch (error) {
      return shutdown(1, `${describeError(error)}; the end of ${node.logPath}:`, node.tail().trimEnd());
    }
  };

  progress(`data directory ${dataDir}`);

  // 0. With --netns: the namespaces, and a destination for exits to reach.
  if (opts.netns === true) {
    const removed = removeLeftovers();
    if (removed.length > 0) progress(`removed ${removed.length} namespace(s) a crashed testnet left: ${removed.join(' ')}`);
    netns = await NetnsTestnet.create({ nodes: [...netnsNodes(opts.relays, opts.authorities).values()], rateBps: opts.linkShape?.rateBps ?? null });
    progress(`network namespaces ${netns.id}-* on ${NETNS_RANGE}, joined by a bridge`);
  }
  const addressOf = (nickname: string, loopback: string) => (netns === null ? loopback : netns.addressOf(nickname));
  // With namespaces the rate is the veths' tbf; the delay stays in user space.
  const nodeShape = netns === null || opts.linkShape === undefined ? opts.linkShape : { ...opts.linkShape, rateBps: null };
  const shapeArgs = linkShapeArgs(nodeShape);
  if (netns !== null) {
    const dest = spawnNode('dest', 'destination', ['--nickname', 'dest', '--address', netns.addressOf('dest'), '--port', String(NETNS_DESTINATION_PORT)]);
    const destUp = await waitUp(dest, 'destination');
    progress(`destination up at ${destUp.url}`);
    announce(destUp);
  }

  // 1. The authorities, all at once (with --netns each in its own namespace); they vote once the
  //    file listing them all exists.
  const authoritiesFile = join(dataDir, AUTHORITIES_FILE);
  const authorities: NodeProcess[] = [];
  for (let i = 1; i <= opts.authorities; i++) {
    const nickname = `auth${i}`;
    authorities.push(
      spawnNode(nickname, 'authority', [
        '--nickname', nickname,
        '--address', addressOf(nickname, authorityAddress(i)),
        '--port', '0',
        '--voting-interval', String(opts.votingIntervalMs),
        '--authorities-file', authoritiesFile,
        '--exits-allow-loopback',
        '--testnet-flag-thresholds',
        '--measure-interval', '30000',
        ...(opts.params ?? []).flatMap((p) => ['--param', p]),
      ]),
    );
  }
  const authUps: UpEvent<'authority'>[] = [];
  for (const authority of authorities) {
    const up = await waitUp(authority, 'authority');
    authUps.push(up);
    progress(`authority ${authority.nickname} up at ${up.url}${metricsNote(up)}`);
  }
  const authorityRefs = authUps.map((up) => `${up.url}#${up.identity}`);
  writeFileSync(`${authoritiesFile}.tmp`, `${authorityRefs.join('\n')}\n`, { mode: 0o600 });
  renameSync(`${authoritiesFile}.tmp`, authoritiesFile);
  for (const up of authUps) announce(up);
  const authUp = authUps[0]!;
  const authorityArgs = authorityRefs.flatMap((ref) => ['--authority', ref]);

  // 2. The relays, all at once, and the client with them (it polls the authorities until the
  //    consensus lists enough relays; its up line means a 3-hop circuit is built).
  const relays: NodeProcess[] = [];
  for (let i = 1; i <= opts.relays; i++) {
    const isExit = i <= opts.exits;
    const nickname = `relay${i}`;
    // One process per relay: the testnet already runs many nodes on one machine.
    const args = ['--nickname', nickname, '--address', addressOf(nickname, relayAddress(i)), '--port', '0', ...authorityArgs, '--workers', '1', ...shapeArgs];
    if (isExit) args.push('--exit', ...(netns === null ? ['--allow-loopback-exit'] : netnsExitPolicyArgs()));
    if (opts.relayBandwidthRate !== undefined) args.push('--bandwidth-rate', opts.relayBandwidthRate);
    if (opts.relayAccountingMax !== undefined) args.push('--accounting-max', opts.relayAccountingMax);
    if (opts.ipv6 === true) args.push('--ipv6-address', '::1', '--ipv6-port', '0');
    relays.push(spawnNode(nickname, 'relay', args));
  }
  const clientArgs = [
    ...authorityArgs,
    '--socks-address', SOCKS_ADDRESS,
    '--socks-port', String(netns === null ? opts.socksPort : NETNS_CLIENT_SOCKS_PORT),
    '--ready-timeout', String(Math.max(1000, deadline - Date.now())),
    ...shapeArgs,
    ...(opts.ipv6 === true ? ['--prefer-ipv6'] : []),
  ];
  if (opts.httpTunnelPort !== undefined) clientArgs.push('--http-tunnel-port', String(netns === null ? opts.httpTunnelPort : 0));
  const cookieFile = join(dataDir, 'client', 'control_auth_cookie');
  if (opts.controlPort !== undefined) clientArgs.push('--control-port', String(netns === null ? opts.controlPort : 0), '--cookie-auth-file', cookieFile);
  const client = spawnNode('client', 'client', clientArgs, { portFlag: '--socks-port' });
  progress(`started ${opts.relays} relays (${opts.exits} exits) and the client; waiting for the relays to come up`);
  const relayUps: UpEvent<'relay'>[] = [];
  for (const relay of relays) {
    const up = await waitUp(relay, 'relay');
    relayUps.push(up);
    progress(`${relay.nickname} up at ${up.address}:${up.port}${up.exit ? ' (exit)' : ''}${metricsNote(up)}`);
  }
  for (const up of relayUps) announce(up);

  // 3. The client's up line: a consensus with enough relays, and a 3-hop circuit.
  progress('waiting for the consensus and a 3-hop circuit');
  const clientUp = await waitUp(client, 'client');
  announce({ ...clientUp, nickname: 'client' });
  if (clientUp.metrics !== undefined) progress(`client up${metricsNote(clientUp)}`);
  let socksHost = clientUp.address;
  let socksPort = clientUp.port;
  let httpTunnel = clientUp.httpTunnel;
  let control = clientUp.control;
  if (netns !== null) {
    // The client's ports leave its namespace through Unix sockets, each to 127.0.0.1 on the host.
    const bridgeOut = async (name: string, inner: string, hostPort: number): Promise<{ host: string; port: number }> => {
      const path = join(dataDir, 'client', `${name}.sock`);
      const bridge = spawnNode(name, 'forward', ['--nickname', name, '--listen', `unix:${path}`, '--connect', inner], { inside: 'client' });
      announce(await waitUp(bridge, 'forward'));
      const host = await startForwarder({ listen: { host: SOCKS_ADDRESS, port: hostPort }, target: { path }, shape: null }).catch((error: unknown) =>
        shutdown(1, `cannot listen on ${SOCKS_ADDRESS}:${hostPort}: ${describeError(error)}`),
      );
      hostForwarders.push(host);
      return host.address as { host: string; port: number };
    };
    ({ host: socksHost, port: socksPort } = await bridgeOut('socks', clientUp.socks, opts.socksPort));
    if (httpTunnel !== undefined) {
      const bound = await bridgeOut('tunnel', httpTunnel, opts.httpTunnelPort ?? 0);
      httpTunnel = `${bound.host}:${bound.port}`;
    }
    if (control !== undefined) {
      const bound = await bridgeOut('control', control, opts.controlPort ?? 0);
      control = `${bound.host}:${bound.port}`;
    }
  }
  const socks = `${socksHost}:${socksPort}`;

  if (opts.dashboardPort !== undefined) {
    const dashboard = await startNetworkDashboard(opts.dashboardPort, () => {
      // One row per nickname: the process started last (a node started again replaces its earlier process).
      // The netns testnet's destination and forwarders are no onion-routing nodes: no row.
      const latest = new Map<string, NodeProcess & { role: 'authority' | 'relay' | 'client' }>();
      for (const n of nodes) if (n.role === 'authority' || n.role === 'relay' || n.role === 'client') latest.set(n.nickname, n as NodeProcess & { role: 'authority' | 'relay' | 'client' });
      return [...latest.values()].map((n) => {
        const up = ups.get(n.nickname);
        return {
          nickname: n.nickname,
          role: n.role,
          alive: n.alive,
          ...(up !== undefined && 'metrics' in up && up.metrics !== undefined ? { metrics: up.metrics } : {}),
          ...(up?.role === 'relay' ? { exit: up.exit } : {}),
        };
      });
    }).catch((error: unknown) => shutdown(1, `the dashboard could not listen: ${describeError(error)}`));
    process.on('exit', () => void dashboard.close());
    progress(`dashboard on http://127.0.0.1:${dashboard.port}/`);
  }

  ready = true;
  progress(`network formed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const command = (verb: string, nickname: string | undefined) => supervisor.command(verb, nickname);
  ctl = await startCtlServer(dataDir, command).catch((error: unknown) => {
    progress(`no control socket: ${describeError(error)}`);
    return undefined;
  });
  stopStdin = readCtlStdin(command, (text) => process.stderr.write(text));
  sink.ready(formatReadyLine({ socksHost, socksPort, authorityUrl: authUp.url, relays: opts.relays, exits: opts.exits, dataDir }));
  const target = netns === null ? 'http://127.0.0.1:8000/' : `http://${netns.addressOf('dest')}/ip`;
  const tryLine =
    netns === null
      ? `python3 -m http.server -b 127.0.0.1 8000 &  curl --socks5-hostname ${socks} ${target}`
      : `curl --socks5-hostname ${socks} ${target}   (the exit's address; also /hello, /bytes/N)`;
  const extras =
    (httpTunnel !== undefined ? `      curl --proxytunnel --proxy http://${httpTunnel} ${target}   (HTTP CONNECT tunnel)\n` : '') +
    (control !== undefined ? `Control port ${control} (cookie ${cookieFile}); e.g. nyx -i ${control}\n` : '');
  process.stderr.write(
    `\nTry:  ${tryLine}\n` +
      extras +
      `Poke it:  allium testnet ctl kill relay3 --data-dir ${dataDir}   (stop, kill, start, pause, resume, status, help)${stopStdin !== null ? '; or type the same commands here' : ''}\n` +
      `Stop with Ctrl-C. Logs and keys: ${dataDir}\n\n`,
  );
  return new Promise<void>(() => {});
}
