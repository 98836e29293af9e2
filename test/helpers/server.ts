import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A real HTTP server on a free loopback port. */
export interface TestServer {
  readonly server: Server;
  readonly url: string;
  readonly port: number;
  /** Destroys every open socket, then closes the server. */
  close(): Promise<void>;
}

/** Start `app` on port 0 of 127.0.0.1. */
export async function startServer(app: RequestListener): Promise<TestServer> {
  const server = createServer(app);
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
