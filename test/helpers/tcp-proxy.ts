import { connect, createServer, type Socket } from 'node:net';

/** One proxied connection: the client's socket, Redis's, and whether it sent a (S/P)SUBSCRIBE. */
interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  subscriber: boolean;
  paused: boolean;
}

/** A TCP proxy in front of a Redis port that can silently stop forwarding some connections. */
export interface TcpProxy {
  /** `redis://127.0.0.1:<port>` of the proxy. */
  readonly url: string;
  /**
   * Stop forwarding, in both directions, on the open connections of one kind (`commands`: those that never
   * subscribed; `subscriber`; `all`) while keeping their sockets open, as a NAT that dropped its state does.
   * What they send meanwhile is dropped; connections opened later are forwarded.
   */
  blackhole(which: 'commands' | 'subscriber' | 'all'): number;
  /** Destroy every connection at once (Redis looks gone, then reachable again). */
  drop(): void;
  close(): Promise<void>;
}

/**
 * Start a proxy forwarding to `127.0.0.1:port`.
 *
 * @example
 * const proxy = await startTcpProxy(server.port);
 * const bus = createRedisBus({ url: proxy.url });
 * proxy.blackhole('commands');
 */
export async function startTcpProxy(port: number): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    const pair: Pair = { client, upstream, subscriber: false, paused: false };
    pairs.add(pair);
    client.on('data', (chunk) => {
      if (/subscribe/i.test(chunk.toString())) pair.subscriber = true;
      if (!pair.paused) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!pair.paused) client.write(chunk);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('close', end);
      socket.on('error', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    url: `redis://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    blackhole(which) {
      let count = 0;
      for (const pair of pairs) {
        if (which === 'all' || (which === 'subscriber') === pair.subscriber) {
          pair.paused = true;
          count++;
        }
      }
      return count;
    },
    drop() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const pair of pairs) {
          pair.client.destroy();
          pair.upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
