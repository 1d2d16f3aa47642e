/**
 * The namespace testnet (`allium testnet --netns`, docs/testnet.md): every
 * node in its own Linux network namespace with its own address, all joined
 * through one bridge that lives in a namespace of its own, so the testnet
 * behaves like hosts on a LAN while touching nothing of the host's network.
 *
 *   namespace `alm<pid>-br`         bridge br0; one veth end `v<k>` per node
 *   namespace `alm<pid>-<nickname>`  lo, and eth0 = 10.(64+k).0.1/10 (the other veth end)
 *
 * The testnet reserves 10.64.0.0/10: nothing routes it anywhere, and the host
 * has no address in it (the SOCKS port reaches the host through a Unix socket,
 * see cli/testnet.ts). Each node gets its own /16 in it, because a client
 * never puts two relays of one /16 on a circuit. With a line rate, a `tbf`
 * queueing discipline limits each node's veth in both directions.
 *
 * Everything created is named after the supervisor's PID, so a later run can
 * tell what a crashed run left behind (its PID no longer lives) and remove it:
 * the namespaces (which takes their veths with them) and any process still in
 * them. Needs root.
 */
import { execFile, execFileSync } from 'node:child_process';
import { AlliumError } from '../src/errors.js';

/** The range the namespace testnet reserves, and its prefix length on every eth0. */
export const NETNS_RANGE = '10.64.0.0/10';
const PREFIX_LENGTH = 10;
/** Namespace names: `alm<supervisor pid>-<node>`. */
const NAME = /^alm(\d+)-[A-Za-z0-9]+$/;
const IP_TIMEOUT_MS = 10_000;

/** The address of node slot `k` (0..63): 10.(64+k).0.1. */
export function netnsAddress(k: number): string {
  if (!Number.isInteger(k) || k < 0 || k > 63) throw new RangeError(`netns slot ${k} is not in 0..63`);
  return `10.${64 + k}.0.1`;
}

/** Why --netns cannot run here (not root, no `ip`), or null if it can. */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) {
    return 'it must run as root: it creates network namespaces, veth pairs and a bridge (ip netns, ip link). Run it as root (sudo), or without --netns';
  }
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore', timeout: IP_TIMEOUT_MS });
  } catch (error) {
    return `"ip netns list" failed (${(error as Error).message}); install iproute2`;
  }
  return null;
}

function ip(args: string[], command = 'ip'): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: IP_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout);
      else reject(new AlliumError('ERR_CONFIG', `${command} ${args.join(' ')}: ${String(stderr).trim() || error.message}`));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Our namespaces that exist now: name → supervisor PID. */
function ourNamespaces(): Map<string, number> {
  const out = new Map<string, number>();
  let text = '';
  try {
    text = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: IP_TIMEOUT_MS });
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = NAME.exec(name);
    if (m !== null) out.set(name, Number(m[1]));
  }
  return out;
}

/** SIGKILL every process in namespace `ns`, then delete it. Best effort, synchronous. */
function removeNamespaceSync(ns: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: IP_TIMEOUT_MS });
    for (const pid of pids.split(/\s+/).filter((p) => /^\d+$/.test(p))) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
  } catch {
    // the namespace is gone already
  }
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: IP_TIMEOUT_MS });
  } catch {
    // gone already
  }
}

/**
 * Remove what crashed namespace testnets left behind: every `alm<pid>-*`
 * namespace whose supervisor PID no longer lives, with the processes in it.
 * Returns the names removed.
 */
export function removeLeftovers(): string[] {
  const removed: string[] = [];
  for (const [ns, pid] of ourNamespaces()) {
    if (pid !== process.pid && alive(pid)) continue;
    removeNamespaceSync(ns);
    removed.push(ns);
  }
  return removed;
}

export interface NetnsOptions {
  /** The nodes, each with its slot (address 10.(64+slot).0.1). */
  nodes: ReadonlyArray<{ nickname: string; slot: number }>;
  /** Line rate of every node's veth, bit/s each direction (tbf); null = none. */
  rateBps: number | null;
}

export class NetnsTestnet {
  /** `alm<pid>`: the prefix of every name this testnet creates. */
  readonly id = `alm${process.pid}`;
  readonly #bridge = `${this.id}-br`;
  readonly #nodes = new Map<string, { ns: string; address: string }>();
  /** Namespaces created so far, in order. */
  readonly #created: string[] = [];
  #torndown = false;

  private constructor() {}

  /**
   * Create the bridge and one namespace per node. On any failure, removes
   * what it created and rejects with AlliumError ERR_CONFIG. Call
   * netnsUnavailable() first.
   */
  static async create(opts: NetnsOptions): Promise<NetnsTestnet> {
    const net = new NetnsTestnet();
    try {
      await net.#addNamespace(net.#bridge);
      await ip(['-n', net.#bridge, 'link', 'add', 'br0', 'type', 'bridge']);
      await ip(['-n', net.#bridge, 'link', 'set', 'br0', 'up']);
      await Promise.all(opts.nodes.map((node) => net.#addNode(node.nickname, node.slot, opts.rateBps)));
    } catch (error) {
      net.teardownSync();
      throw error;
    }
    return net;
  }

  /** The namespace of `nickname`. Throws RangeError for a node it does not have. */
  namespaceOf(nickname: string): string {
    return this.#node(nickname).ns;
  }

  /** The address of `nickname` inside the testnet. */
  addressOf(nickname: string): string {
    return this.#node(nickname).address;
  }

  /** `argv` run inside `nickname`'s namespace: the command and its arguments (`ip netns exec` execs, so the PID is argv[0]'s). */
  command(nickname: string, argv: readonly string[]): [string, string[]] {
    return ['ip', ['netns', 'exec', this.namespaceOf(nickname), ...argv]];
  }

  /** Remove every namespace (and so every veth and the bridge), killing anything still inside. Idempotent. */
  teardownSync(): void {
    if (this.#torndown) return;
    this.#torndown = true;
    for (const ns of [...this.#created].reverse()) removeNamespaceSync(ns);
  }

  #node(nickname: string): { ns: string; address: string } {
    const node = this.#nodes.get(nickname);
    if (node === undefined) throw new RangeError(`no namespace for ${nickname}`);
    return node;
  }

  async #addNamespace(ns: string): Promise<void> {
    await ip(['netns', 'add', ns]);
    this.#created.push(ns);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  async #addNode(nickname: string, slot: number, rateBps: number | null): Promise<void> {
    const ns = `${this.id}-${nickname}`;
    const address = netnsAddress(slot);
    const veth = `v${slot}`;
    this.#nodes.set(nickname, { ns, address });
    await this.#addNamespace(ns);
    await ip(['-n', this.#bridge, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await ip(['-n', this.#bridge, 'link', 'set', veth, 'master', 'br0']);
    await ip(['-n', this.#bridge, 'link', 'set', veth, 'up']);
    await ip(['-n', ns, 'addr', 'add', `${address}/${PREFIX_LENGTH}`, 'dev', 'eth0']);
    await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    if (rateBps !== null) {
      // Out of the node (its eth0) and into it (the bridge's end of its veth).
      await ip(['-n', ns, 'qdisc', 'add', 'dev', 'eth0', 'root', ...tbf(rateBps)], 'tc');
      await ip(['-n', this.#bridge, 'qdisc', 'add', 'dev', veth, 'root', ...tbf(rateBps)], 'tc');
    }
  }
}

/**
 * tbf arguments for `rateBps`: a bucket of 10 ms of traffic (at least 16 KiB)
 * and up to 50 ms of queue, so TCP sees the rate and little extra delay.
 */
export function tbf(rateBps: number): string[] {
  const burst = Math.max(16 * 1024, Math.ceil(rateBps / 8 / 100));
  return ['tbf', 'rate', `${Math.round(rateBps)}bit`, 'burst', String(burst), 'latency', '50ms'];
}
