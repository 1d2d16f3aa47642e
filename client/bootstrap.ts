/**
 * Bootstrap progress in Tor's style (control-spec §5.5): a percentage, a
 * phase tag and a summary, moving forward only, plus the last problem that
 * keeps the client from going further. The client reports the phases it
 * passes (client.ts); the CLI logs them, the control port answers
 * `GETINFO status/bootstrap-phase` and sends STATUS_CLIENT events from them,
 * and the testnet shows them while it waits (docs/control-port.md).
 *
 * Allium's phases are a subset of Tor's, with Tor's numbers and tags: the
 * consensus comes straight from an authority over HTTP and carries every key
 * a circuit needs, so the directory-connection and descriptor phases do not
 * happen.
 */

/** One phase: Tor's percentage, tag and summary. */
export interface BootstrapPhase {
  /** 0..100. */
  readonly progress: number;
  readonly tag: string;
  readonly summary: string;
}

/** The phases Allium passes through, in order. */
export const BOOTSTRAP_PHASES = [
  { progress: 0, tag: 'starting', summary: 'Starting' },
  { progress: 25, tag: 'requesting_status', summary: 'Asking for networkstatus consensus' },
  { progress: 75, tag: 'enough_dirinfo', summary: 'Loaded enough directory info to build circuits' },
  { progress: 80, tag: 'ap_conn', summary: 'Connecting to a relay to build circuits' },
  { progress: 90, tag: 'ap_handshake_done', summary: 'Handshake finished with a relay to build circuits' },
  { progress: 95, tag: 'circuit_create', summary: 'Establishing a Tor circuit' },
  { progress: 100, tag: 'done', summary: 'Done' },
] as const satisfies readonly BootstrapPhase[];

export type BootstrapTag = (typeof BOOTSTRAP_PHASES)[number]['tag'];

/** Where bootstrapping stands. */
export interface BootstrapStatus extends BootstrapPhase {
  readonly tag: BootstrapTag;
  /** The last problem seen in this phase (a sentence saying why the client cannot go on), or null. */
  readonly warning: string | null;
  /** How many times a problem was reported in this phase. */
  readonly problems: number;
}

/** What a listener hears: a new phase, or a problem in the current one. */
export type BootstrapChange = { kind: 'progress'; status: BootstrapStatus } | { kind: 'problem'; status: BootstrapStatus };

export class BootstrapTracker {
  #index = 0;
  #warning: string | null = null;
  #problems = 0;
  readonly #listeners: Array<(change: BootstrapChange) => void> = [];

  get status(): BootstrapStatus {
    return { ...BOOTSTRAP_PHASES[this.#index]!, warning: this.#warning, problems: this.#problems };
  }

  get done(): boolean {
    return this.#index === BOOTSTRAP_PHASES.length - 1;
  }

  /** Call `listener` on every change; returns the function that removes it. */
  onChange(listener: (change: BootstrapChange) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /** The client reached phase `tag` (and so every phase before it). A phase at or behind the current one changes nothing. */
  reach(tag: BootstrapTag): void {
    const index = BOOTSTRAP_PHASES.findIndex((p) => p.tag === tag);
    if (index <= this.#index) return;
    this.#index = index;
    this.#warning = null;
    this.#problems = 0;
    this.#emit({ kind: 'progress', status: this.status });
  }

  /** Something keeps the client from leaving the current phase; `why` says what, for a person. Ignored once done. */
  problem(why: string): void {
    if (this.done) return;
    this.#warning = why;
    this.#problems++;
    this.#emit({ kind: 'problem', status: this.status });
  }

  #emit(change: BootstrapChange): void {
    for (const listener of [...this.#listeners]) listener(change);
  }
}

/** `Bootstrapped 25% (requesting_status): Asking for networkstatus consensus`, as Tor logs it. */
export function describeBootstrap(status: BootstrapPhase): string {
  return `Bootstrapped ${status.progress}% (${status.tag}): ${status.summary}`;
}

/** `Problem bootstrapping. Stuck at 25% (requesting_status): Asking for networkstatus consensus. (why; count N)`. */
export function describeBootstrapProblem(status: BootstrapStatus): string {
  return `Problem bootstrapping. Stuck at ${status.progress}% (${status.tag}): ${status.summary}. (${status.warning ?? 'unknown problem'}; count ${status.problems})`;
}
