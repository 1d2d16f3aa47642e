/**
 * For the end-to-end stream tests: a SOCKS5 client that reports the reply
 * code (our own codecs, half-open sockets, bytes after the reply kept), the
 * kernel's view of the sockets on some ports (/proc/net/tcp), and reading a
 * socket to its end or its error. No side effects at import.
 */
import assert from 'node:assert/strict';
import net, { type Socket } from 'node:net';
import { once } from 'node:events';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { decodeAuthReply, decodeMethodSelection, decodeReply, encodeAuthRequest, encodeGreeting, encodeRequest } from '../../client/socks/messages.js';
import { parseIp } from '../../src/net/address.js';

export interface SocksOutcome {
  /** RFC 1928 REP code. */
  reply: number;
  /** The connected socket (reply 0), ready for data; bytes that came with the reply are unshifted. */
  socket: Socket;
}

/**
 * CONNECT through the SOCKS5 port at 127.0.0.1:`socksPort`. `host` goes as
 * a domain unless it is an IP address. `user` selects username/password
 * (the isolation key). The socket is half-open (`allowHalfOpen`), as an
 * application that uses shutdown(SHUT_WR) has it. Rejects after `timeoutMs`.
 */
export async function socksConnect(socksPort: number, host: string, port: number, opts: { user?: string; timeoutMs?: number } = {}): Promise<SocksOutcome> {
  const socket = net.connect({ host: '127.0.0.1', port: socksPort, allowHalfOpen: true });
  socket.on('error', () => {});
  await once(socket, 'connect');
  const ip = parseIp(host);
  const addressType = ip === null ? 'domain' : ip.family === 4 ? 'ipv4' : 'ipv6';
  const parts = [encodeGreeting({ methods: [opts.user !== undefined ? 0x02 : 0x00] })];
  if (opts.user !== undefined) parts.push(encodeAuthRequest({ username: opts.user, password: 'x' }));
  parts.push(encodeRequest({ command: 1, addressType, host, port }));
  socket.write(Buffer.concat(parts));
  const reply = await new Promise<number>((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    let stage: 'method' | 'auth' | 'reply' = 'method';
    const timer = setTimeout(() => reject(new Error(`no SOCKS reply for ${host}:${port}`)), opts.timeoutMs ?? 30_000);
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (stage === 'method') {
          const d = decodeMethodSelection(buffer);
          if (d === null) return;
          buffer = buffer.subarray(d.length);
          stage = opts.user !== undefined ? 'auth' : 'reply';
        } else if (stage === 'auth') {
          const d = decodeAuthReply(buffer);
          if (d === null) return;
          buffer = buffer.subarray(d.length);
          stage = 'reply';
        } else {
          const d = decodeReply(buffer);
          if (d === null) return;
          clearTimeout(timer);
          socket.off('data', onData);
          socket.off('close', onClose);
          socket.pause();
          const rest = buffer.subarray(d.length);
          if (rest.length > 0) socket.unshift(rest);
          resolve(d.value.reply);
          return;
        }
      }
    };
    const onClose = () => {
      clearTimeout(timer);
      reject(new Error(`SOCKS connection closed before a reply (${host}:${port})`));
    };
    socket.on('data', onData);
    socket.once('close', onClose);
  });
  return { reply, socket };
}

/** What a socket delivered until its end (`error` null) or its failure. */
export interface Drained {
  data: Buffer;
  error: NodeJS.ErrnoException | null;
}

/**
 * Read `socket` to its end or error, bounded by `timeoutMs` (then it is
 * destroyed and the promise rejects). An EOF is checked with an empty write
 * before it counts as clean: a reset that lands while bytes wait unread in
 * the socket is reported by libuv as an EOF once they are read (it sees the
 * hang-up and does not read again; src/stream/splice.ts), though the system
 * holds ECONNRESET for the next read or write — which the write gets.
 */
export function drainSocket(socket: Socket, timeoutMs = 60_000): Promise<Drained> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`socket neither ended nor failed within ${timeoutMs} ms (${Buffer.concat(chunks).length} bytes read)`));
    }, timeoutMs);
    let error: NodeJS.ErrnoException | null = null;
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e: NodeJS.ErrnoException) => (error ??= e));
    const done = () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), error });
    };
    // On an error, 'error' records it and 'close' resolves.
    onCleanEnd(socket, () => {
      if (error === null) done();
    });
    socket.once('close', done);
    socket.resume();
  });
}

/**
 * Call `clean` once `socket`'s EOF is known to be a clean end, not a reset:
 * checked with an empty write (which fails on a reset connection) unless the
 * socket can no longer write. A reset that lands while bytes wait unread is
 * reported by libuv as an EOF once they are read (src/stream/splice.ts); the
 * write then fails with ECONNRESET, and the socket emits 'error' and 'close'.
 */
export function onCleanEnd(socket: Socket, clean: () => void): void {
  socket.once('end', () => {
    if (socket.writableEnded || socket.destroyed) {
      clean();
      return;
    }
    socket.write(Buffer.alloc(0), (e?: Error | null) => {
      if (e == null) clean();
    });
  });
}

/** Write `data` in chunks with backpressure; resolves when all of it is handed to the kernel. */
export async function writeAll(socket: Socket, data: Uint8Array, chunkBytes = 64 * 1024): Promise<void> {
  for (let offset = 0; offset < data.length; offset += chunkBytes) {
    if (socket.destroyed) throw new Error('socket destroyed while writing');
    if (!socket.write(data.subarray(offset, offset + chunkBytes))) {
      // One wait that removes both listeners (racing two once() promises left the loser's 'error' listener behind per chunk).
      await new Promise<void>((resolve) => {
        const done = (): void => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
  }
}

// ---------------------------------------------------------------------------
// the kernel's sockets

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
};

export interface KernelSocket {
  local: number;
  remote: number;
  state: string;
  /** The socket's inode (to find the process holding it, describeSockets); not compared by tests. */
  inode?: number;
}

/** An IPv4 TCP connection as /proc/net/tcp lists it. */
export interface KernelConnection {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: string;
}

/** Every IPv4 TCP socket of this system (network namespace), from /proc/net/tcp. */
export function ipv4Connections(): KernelConnection[] {
  const out: KernelConnection[] = [];
  const address = (hex: string) => [3, 2, 1, 0].map((i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16)).join('.');
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    const [la, lp] = f[1]!.split(':');
    const [ra, rp] = f[2]!.split(':');
    out.push({ localAddress: address(la!), localPort: parseInt(lp!, 16), remoteAddress: address(ra!), remotePort: parseInt(rp!, 16), state: TCP_STATES[f[3]!] ?? f[3]! });
  }
  return out;
}

/** Whether this system shows its TCP sockets in /proc/net/tcp (Linux). */
export function canListSockets(): boolean {
  return existsSync('/proc/net/tcp');
}

/**
 * TCP sockets (IPv4 and IPv6) with a local or remote port in `ports` that
 * are still open: every state but LISTEN and TIME_WAIT (the latter holds no
 * descriptor and no process's memory: it is the kernel's own wait).
 */
export function openSocketsOn(ports: Iterable<number>): KernelSocket[] {
  const wanted = new Set(ports);
  const found: KernelSocket[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      const local = parseInt(f[1]!.split(':')[1]!, 16);
      const remote = parseInt(f[2]!.split(':')[1]!, 16);
      const state = TCP_STATES[f[3]!] ?? f[3]!;
      if (state === 'LISTEN' || state === 'TIME_WAIT') continue;
      if (wanted.has(local) || wanted.has(remote)) found.push({ local, remote, state, inode: Number(f[9]) });
    }
  }
  return found;
}

/** Wait (bounded) until no socket is open on `ports`; returns what is left (empty on success). */
export async function socketsGone(ports: Iterable<number>, timeoutMs = 15_000): Promise<KernelSocket[]> {
  const list = [...ports];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = openSocketsOn(list);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * For a failure message: each socket as "label:local -> label:remote STATE,
 * held by PID (its command's role and nickname)", `labels` naming known ports
 * (SOCKS, payload, a destination). The holder is found by the socket's inode
 * among /proc/PID/fd; "held by no process" once every descriptor is closed.
 */
export function describeSockets(sockets: readonly KernelSocket[], labels: ReadonlyMap<number, string> = new Map()): string {
  const holders = new Map<number, string>();
  const inodes = new Set(sockets.map((s) => s.inode).filter((i): i is number => i !== undefined && i > 0));
  if (inodes.size > 0) {
    for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        let target: string;
        try {
          target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          continue;
        }
        const m = /^socket:\[(\d+)\]$/.exec(target);
        if (m === null || !inodes.has(Number(m[1]))) continue;
        let who = `PID ${pid}`;
        try {
          const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
          const nick = argv.indexOf('--nickname');
          const role = ['authority', 'relay', 'client', 'testnet'].find((r) => argv.includes(r));
          who += role === undefined ? (pid === String(process.pid) ? ' (this test)' : '') : ` (${role}${nick >= 0 ? ` ${argv[nick + 1]}` : ''})`;
        } catch {
          // gone meanwhile
        }
        holders.set(Number(m[1]), who);
      }
    }
  }
  const name = (port: number) => `${labels.get(port) ?? 'port'}:${port}`;
  return sockets.map((s) => `${name(s.local)} -> ${name(s.remote)} ${s.state}, held by ${(s.inode !== undefined && holders.get(s.inode)) || 'no process'}`).join('; ');
}

/** The two ports of a connected socket, taken while it is connected (they are gone once it is reset). */
export function portsOf(socket: Socket): { local: number; remote: number } {
  assert.ok(socket.localPort !== undefined && socket.remotePort !== undefined, 'the socket is connected');
  return { local: socket.localPort, remote: socket.remotePort };
}

/**
 * Assert that a connection (`ports`: portsOf() while it was connected),
 * drained with drainSocket, failed with a reset, never a clean end. Node
 * reports a reset as ECONNRESET, except that libuv turns a reset that
 * arrives while the last read was a partial one into a clean EOF (it takes
 * the hang-up for an end of input). The kernel knows which it was: after the
 * peer's FIN the connection waits in CLOSE_WAIT until we close it; after a
 * reset it is gone from /proc/net/tcp. So a clean 'end' passes only if the
 * kernel saw a reset. Call as soon as drainSocket resolves, before the
 * socket is closed.
 */
export function assertReset(ports: { local: number; remote: number }, got: Drained, what: string): void {
  if (got.error?.code === 'ECONNRESET') return;
  assert.equal(got.error, null, `${what}: ${got.error?.message}`);
  assert.ok(canListSockets(), `${what}: a clean end, and no /proc/net/tcp to tell a reset from a FIN`);
  const left = ipv4Connections().find((c) => c.localPort === ports.local && c.remotePort === ports.remote);
  assert.equal(left, undefined, `${what}: the connection ended with a FIN (${left?.state}), not a reset`);
}
