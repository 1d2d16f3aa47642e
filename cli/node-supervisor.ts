/**
 * The running testnet's nodes, by nickname (docs/testnet.md "Poking a
 * running testnet"): once the network has formed, a node that exits is
 * reported (stderr, and an `exit` event line: <data dir>/events.jsonl, and
 * stdout with `--json`) and the rest keep running;
 * a node can be stopped (SIGTERM), killed (SIGKILL), paused (SIGSTOP),
 * resumed (SIGCONT) and started again. A node started again gets the same
 * arguments, so the same data directory (same keys, same state) and the
 * same ports it had the first time.
 *
 * The supervisor does not spawn processes itself: the testnet's spawner
 * does (so a started node is one of the testnet's children, taken down with
 * it), and the supervisor only calls it.
 */
import { metricsNote, type NodeInfo } from './testnet-events.js';

type Role = NodeInfo['role'];

/** What the supervisor needs of a node process (cli/node-process.ts NodeProcess). */
export interface SupervisedProcess {
  readonly nickname: string;
  readonly role: Role;
  readonly alive: boolean;
  readonly exitDescription: string;
  readonly child: { readonly pid?: number | undefined; readonly exitCode: number | null; readonly signalCode: NodeJS.Signals | null };
  /** The node's `up` line. */
  readonly up: Promise<NodeInfo>;
  readonly exited: Promise<void>;
  kill(signal: NodeJS.Signals): void;
  tail(): string;
}

/** How a node was started: enough to start it again. */
export interface NodeSpec {
  nickname: string;
  role: Role;
  args: string[];
  /** The option whose value is the node's listening port (`--port`, `--socks-port`): pinned to the port it first got. */
  portFlag: string;
  /** With `allium testnet --netns`: the network namespace it runs in (cli/netns.ts); default its own. */
  inside?: string;
}

export interface NodeSupervisorOptions {
  /** Start a node process (the testnet's spawner). */
  spawn: (spec: NodeSpec) => SupervisedProcess;
  /** A node (re)started and up: print its `node` line. */
  onUp: (node: NodeInfo & { nickname: string }) => void;
  /** A node exited: print its `exit` line. */
  onExit: (event: { nickname: string; role: Role; code: number | null; signal: string | null; expected: boolean }) => void;
  /** Human progress (stderr). */
  progress: (message: string) => void;
  /** Bound on a start (spawn to `up` line), ms. */
  startTimeoutMs: number;
  /** SIGTERM → SIGKILL grace on stop, ms. */
  stopGraceMs: number;
}

export type NodeState = 'running' | 'paused' | 'exited' | 'starting';

interface Entry {
  spec: NodeSpec;
  proc: SupervisedProcess;
  state: NodeState;
  /** The exit was asked for (stop, kill): reported as such. */
  expectExit: boolean;
  /** Commands on this node run one at a time. */
  queue: Promise<unknown>;
}

/** A ctl command's answer: lines for the caller, and whether it succeeded. */
export interface CommandResult {
  ok: boolean;
  lines: string[];
}

export const SUPERVISOR_VERBS = ['status', 'stop', 'kill', 'start', 'restart', 'pause', 'resume', 'help'] as const;
export type SupervisorVerb = (typeof SUPERVISOR_VERBS)[number];

const HELP = [
  'status                 every node: state and pid',
  'stop <nickname>        SIGTERM, then SIGKILL after the grace period',
  'kill <nickname>        SIGKILL',
  'start <nickname>       start a stopped node again (same keys, same port)',
  'restart <nickname>     stop, then start',
  'pause <nickname>       SIGSTOP (the node stops answering without closing anything)',
  'resume <nickname>      SIGCONT',
];

const KILL_WAIT_MS = 2_000;

export class NodeSupervisor {
  readonly #o: NodeSupervisorOptions;
  readonly #nodes = new Map<string, Entry>();
  #closed = false;

  constructor(opts: NodeSupervisorOptions) {
    this.#o = opts;
  }

  /** Track a node the testnet started (it is running); its port is pinned once its `up` line arrives. */
  add(spec: NodeSpec, proc: SupervisedProcess): void {
    const entry: Entry = { spec: { ...spec, args: [...spec.args] }, proc, state: 'running', expectExit: false, queue: Promise.resolve() };
    this.#nodes.set(spec.nickname, entry);
    this.#pinPort(entry, proc);
  }

  /** The testnet is shutting down: no more reports or commands. */
  close(): void {
    this.#closed = true;
  }

  /**
   * A node process exited (the testnet calls this once the network is up).
   * Reports it; the other nodes keep running.
   */
  exited(proc: SupervisedProcess): void {
    const entry = this.#nodes.get(proc.nickname);
    if (entry === undefined || entry.proc !== proc || this.#closed) return;
    entry.state = 'exited';
    const expected = entry.expectExit;
    entry.expectExit = false;
    const code = proc.child.exitCode;
    const signal = proc.child.signalCode;
    if (expected) this.#o.progress(`${proc.nickname} exited (${proc.exitDescription}) as asked`);
    else this.#o.progress(`${proc.nickname} exited unexpectedly (${proc.exitDescription}); the rest keep running. The end of its log:\n${indent(proc.tail().trimEnd())}`);
    this.#o.onExit({ nickname: proc.nickname, role: proc.role, code, signal, expected });
  }

  /** Every node: `nickname role state pid`. */
  status(): string[] {
    return [...this.#nodes.values()].map((e) => `${e.spec.nickname} ${e.spec.role} ${e.state}${e.proc.alive ? ` pid=${e.proc.child.pid}` : ` (${e.proc.exitDescription})`}`);
  }

  /** Run one ctl command. Never rejects. */
  async command(verb: string, nickname: string | undefined): Promise<CommandResult> {
    if (this.#closed) return fail('the testnet is stopping');
    if (verb === 'help') return { ok: true, lines: HELP };
    if (verb === 'status') {
      const lines = this.status();
      const running = [...this.#nodes.values()].filter((e) => e.proc.alive).length;
      return { ok: true, lines: [...lines, `${running} of ${lines.length} nodes running`] };
    }
    if (!(SUPERVISOR_VERBS as readonly string[]).includes(verb)) return fail(`unknown command ${JSON.stringify(verb.slice(0, 20))}; try help`);
    if (nickname === undefined) return fail(`${verb} needs a node nickname (${[...this.#nodes.keys()].join(', ')})`);
    const entry = this.#nodes.get(nickname);
    if (entry === undefined) return fail(`no node ${JSON.stringify(nickname.slice(0, 20))} (${[...this.#nodes.keys()].join(', ')})`);
    const run = entry.queue.then(() => this.#run(verb as SupervisorVerb, entry));
    entry.queue = run.catch(() => {});
    try {
      return await run;
    } catch (error) {
      return fail((error as Error).message);
    }
  }

  async #run(verb: SupervisorVerb, e: Entry): Promise<CommandResult> {
    const name = e.spec.nickname;
    switch (verb) {
      case 'stop':
        if (!e.proc.alive) return fail(`${name} is not running`);
        await this.#stop(e);
        return ok(`${name} stopped (${e.proc.exitDescription})`);
      case 'kill':
        if (!e.proc.alive) return fail(`${name} is not running`);
        e.expectExit = true;
        e.proc.kill('SIGKILL');
        if (!(await within(e.proc.exited, KILL_WAIT_MS))) return fail(`${name} did not exit after SIGKILL`);
        return ok(`${name} killed (${e.proc.exitDescription})`);
      case 'pause':
        if (!e.proc.alive || e.state !== 'running') return fail(`${name} is not running`);
        e.proc.kill('SIGSTOP');
        e.state = 'paused';
        return ok(`${name} paused`);
      case 'resume':
        if (!e.proc.alive || e.state !== 'paused') return fail(`${name} is not paused`);
        e.proc.kill('SIGCONT');
        e.state = 'running';
        return ok(`${name} resumed`);
      case 'start':
        if (e.proc.alive) return fail(`${name} is already running`);
        return this.#start(e);
      case 'restart':
        if (e.proc.alive) await this.#stop(e);
        return this.#start(e);
      default:
        return fail(`unknown command ${verb}`);
    }
  }

  async #stop(e: Entry): Promise<void> {
    e.expectExit = true;
    if (e.state === 'paused') e.proc.kill('SIGCONT');
    e.proc.kill('SIGTERM');
    if (!(await within(e.proc.exited, this.#o.stopGraceMs))) {
      this.#o.progress(`${e.spec.nickname} did not stop within ${this.#o.stopGraceMs} ms; SIGKILL`);
      e.proc.kill('SIGKILL');
      await within(e.proc.exited, KILL_WAIT_MS);
    }
  }

  async #start(e: Entry): Promise<CommandResult> {
    const name = e.spec.nickname;
    e.state = 'starting';
    const proc = this.#o.spawn(e.spec);
    e.proc = proc;
    this.#o.progress(`starting ${name} again`);
    let up: NodeInfo;
    try {
      up = await withTimeout(proc.up, this.#o.startTimeoutMs, `${name} to come up`);
    } catch (error) {
      e.expectExit = true;
      proc.kill('SIGKILL');
      e.state = 'exited';
      return fail(`${name} did not come up: ${(error as Error).message}`);
    }
    e.state = 'running';
    this.#pinPort(e, proc);
    this.#o.onUp({ ...up, nickname: name });
    const at = up.role === 'forward' ? up.listen : `${up.address}:${up.port}`;
    this.#o.progress(`${name} up again at ${at} (pid ${proc.child.pid})${'metrics' in up ? metricsNote(up) : ''}`);
    return ok(`${name} started pid=${proc.child.pid} at ${at}`);
  }

  /** Once `proc` is up, start it with the ports it got from now on (a client's tunnel and control ports too). */
  #pinPort(e: Entry, proc: SupervisedProcess): void {
    proc.up.then(
      (up) => {
        const pin = (flag: string, port: string | undefined) => {
          const at = e.spec.args.indexOf(flag);
          if (port !== undefined && at >= 0 && at + 1 < e.spec.args.length) e.spec.args[at + 1] = port;
        };
        if (up.role !== 'forward') {
          pin(e.spec.portFlag, String(up.port));
          // The metrics port too, so dashboards and scrapers keep finding it.
          if ('metrics' in up) pin('--metrics-port', up.metrics?.slice(up.metrics.lastIndexOf(':') + 1));
        }
        // A client's other listeners keep their ports too, so controllers and tunnel users can reconnect.
        if (up.role === 'client') {
          pin('--http-tunnel-port', up.httpTunnel?.slice(up.httpTunnel.lastIndexOf(':') + 1));
          pin('--control-port', up.control?.slice(up.control.lastIndexOf(':') + 1));
        }
      },
      () => {},
    );
  }
}

function ok(line: string): CommandResult {
  return { ok: true, lines: [line] };
}

function fail(line: string): CommandResult {
  return { ok: false, lines: [line] };
}

function indent(text: string): string {
  return text.replace(/^/gm, '    | ');
}

async function within(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
