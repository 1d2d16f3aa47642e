/**
 * Readiness of a client: build a first circuit (to a port every exit allows
 * by default) as soon as a consensus allows, retrying every RETRY_MS until one
 * is built. `ready` resolves then; it never rejects.
 */
import { debuglog } from 'node:util';
import type { CircuitManager } from './circuit-manager.js';
import { RETRY_MS } from './consensus-refresh.js';

const log = debuglog('allium:client');

/** A port every exit allows by default, used to build the first circuit. */
export const PREBUILD_PORT = 80;

export class FirstCircuit {
  /** Resolves once the first circuit is built. */
  readonly ready: Promise<void>;
  readonly #manager: CircuitManager;
  readonly #onReady: () => void;
  #resolve!: () => void;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  readonly #onError: (error: Error) => void;

  /** `onReady` runs once, when the first circuit is built; `onError` after each failed try (bootstrap reporting). */
  constructor(manager: CircuitManager, onReady: () => void, onError: (error: Error) => void = () => {}) {
    this.#manager = manager;
    this.#onReady = onReady;
    this.#onError = onError;
    this.ready = new Promise<void>((resolve) => (this.#resolve = resolve));
  }

  /** Start trying (the first try runs now). */
  start(): void {
    void this.#attempt();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #attempt = async (): Promise<void> => {
    if (this.#closed) return;
    try {
      await this.#manager.circuitFor(PREBUILD_PORT, '');
      this.#onReady();
      this.#resolve();
    } catch (error) {
      log('first circuit not built yet: %s', (error as Error).message);
      this.#onError(error as Error);
      this.#timer = setTimeout(this.#attempt, RETRY_MS);
    }
  };
}
