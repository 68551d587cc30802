/**
 * A TCP relay in front of PostgreSQL or Redis, which a test can cut to stage an outage of that store: `cut()`
 * drops every open connection and refuses new ones until `restore()`; `silence()` keeps the open connections
 * open but lets nothing more through either way (a partition, or a server whose address moved), while new ones
 * work. The server under test is pointed at the relay's port instead of the store's.
 */
import { type Socket, connect, createServer } from 'node:net';

export interface TcpProxy {
  /** The store's URL with its host and port replaced by the relay's. */
  readonly url: string;
  cut(): void;
  silence(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  const targetPort = Number(target.port || (target.protocol.startsWith('redis') ? 6379 : 5432));
  const open = new Set<Socket>();
  const pairs = new Set<[incoming: Socket, outgoing: Socket]>();
  let down = false;
  const server = createServer((incoming) => {
    if (down) {
      incoming.destroy();
      return;
    }
    const outgoing = connect(targetPort, target.hostname);
    for (const socket of [incoming, outgoing]) {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      // A reset on one side closes the other; the error itself is what the test stages.
      socket.on('error', () => undefined);
    }
    incoming.pipe(outgoing).pipe(incoming);
    const pair: [Socket, Socket] = [incoming, outgoing];
    pairs.add(pair);
    incoming.on('close', () => {
      pairs.delete(pair);
      outgoing.destroy();
    });
    outgoing.on('close', () => incoming.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('relay did not bind a TCP port');
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(address.port);
  return {
    url: url.toString(),
    cut() {
      down = true;
      for (const socket of open) socket.destroy();
    },
    silence() {
      for (const [incoming, outgoing] of pairs) {
        incoming.unpipe(outgoing);
        outgoing.unpipe(incoming);
        // Read and drop, so neither side sees its writes refused.
        for (const socket of [incoming, outgoing]) socket.on('data', () => undefined);
      }
      pairs.clear();
    },
    restore() {
      down = false;
    },
    async close() {
      down = true;
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
