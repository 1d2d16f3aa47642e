/**
 * A minimal controller for tests: speaks Tor's control protocol over a real
 * socket, collects replies (each a list of lines, data blocks kept) and
 * asynchronous 650 events, with bounded waits. No side effects at import.
 */
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';

export interface ControlReply {
  /** The status code of the final line. */
  code: number;
  /** Every line's text after `NNN-`/`NNN+`/`NNN `, and data blocks as extra lines (unescaped). */
  lines: string[];
}

export class TestController {
  readonly socket: Socket;
  readonly events: string[] = [];
  #buffer = '';
  #lines: string[] = [];
  #dataFor: string | null = null;
  #replies: ControlReply[] = [];
  #waiters: Array<() => void> = [];
  #closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => this.#onData(text));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  static async connect(host: string, port: number): Promise<TestController> {
    const socket = connect({ host, port });
    await once(socket, 'connect');
    return new TestController(socket);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Send raw bytes or text (nothing appended). */
  sendRaw(data: string | Uint8Array): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Send one command line (CRLF appended) and wait for its reply. */
  async command(line: string, timeoutMs = 30_000): Promise<ControlReply> {
    this.sendRaw(`${line}\r\n`);
    return this.nextReply(timeoutMs);
  }

  /** The next reply; rejects if none arrives in time or the connection closes first. */
  async nextReply(timeoutMs = 30_000): Promise<ControlReply> {
    const deadline = Date.now() + timeoutMs;
    while (this.#replies.length === 0) {
      if (this.#closed) throw new Error('control connection closed before a reply');
      await this.#wait(deadline);
    }
    return this.#replies.shift()!;
  }

  /** Wait until an event line matches `pattern`; returns it. */
  async waitForEvent(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find((e) => pattern.test(e));
      if (hit !== undefined) return hit;
      if (this.#closed) throw new Error(`connection closed before an event matching ${pattern}`);
      await this.#wait(deadline);
    }
  }

  /** Wait for the far end to close; rejects after `timeoutMs`. */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) await this.#wait(deadline);
  }

  close(): void {
    this.socket.destroy();
  }

  #wait(deadline: number): Promise<void> {
    const left = deadline - Date.now();
    if (left <= 0) return Promise.reject(new Error('timed out waiting on the control port'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting on the control port')), left);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  #onData(text: string): void {
    this.#buffer += text;
    for (;;) {
      const nl = this.#buffer.indexOf('\r\n');
      if (nl < 0) break;
      const line = this.#buffer.slice(0, nl);
      this.#buffer = this.#buffer.slice(nl + 2);
      this.#onLine(line);
    }
    this.#wake();
  }

  #onLine(line: string): void {
    if (this.#dataFor !== null) {
      if (line === '.') {
        this.#dataFor = null;
        return;
      }
      this.#lines.push(line.startsWith('.') ? line.slice(1) : line);
      return;
    }
    const m = /^(\d{3})([ +-])(.*)$/.exec(line);
    if (m === null) {
      // Not a control reply (e.g. the HTTP answer to an HTTP request): keep it as one reply line.
      this.#replies.push({ code: 0, lines: [line] });
      return;
    }
    const [, code, kind, text] = m as unknown as [string, string, string, string];
    if (code === '650') {
      if (kind === ' ') this.events.push(text);
      return;
    }
    this.#lines.push(text);
    if (kind === '+') this.#dataFor = text;
    if (kind === ' ') {
      this.#replies.push({ code: Number(code), lines: this.#lines });
      this.#lines = [];
    }
  }
}
