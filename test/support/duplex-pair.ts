/**
 * Two connected in-memory Duplexes standing in for a TCP connection: what one
 * side writes, the other reads (on a later tick, as a socket would deliver it).
 * No side effects at import.
 */
import { Duplex } from 'node:stream';

export function duplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = [];
  const make = (peerIndex: number) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        setImmediate(() => {
          const peer = sides[peerIndex]!;
          if (!peer.destroyed) peer.push(chunk);
          callback();
        });
      },
      final(callback) {
        setImmediate(() => {
          sides[peerIndex]!.push(null);
          callback();
        });
      },
      destroy(error, callback) {
        const peer = sides[peerIndex]!;
        // A side that already sent its end (finished writing) and closes
        // leaves the peer to read what it received, as TCP's FIN does;
        // any other destroy tears the peer down, like a reset.
        const graceful = error === null && this.writableFinished;
        if (!graceful) {
          setImmediate(() => {
            if (!peer.destroyed) peer.destroy();
          });
        }
        callback(error);
      },
    });
  sides.push(make(1), make(0));
  return [sides[0]!, sides[1]!];
}
