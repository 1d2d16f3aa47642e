/**
 * A TCP echo server on 127.0.0.1, port 0, closed when the test ends: the
 * destination that in-memory circuits' exits connect to.
 */
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { TestContext } from 'node:test';

/** Start the server; resolves with its port. */
export async function echoServer(t: TestContext): Promise<number> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return (server.address() as AddressInfo).port;
}
