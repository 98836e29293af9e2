/**
 * Dead peers, for real: a client in a network namespace gets its stream, then its link is cut and it is
 * killed, so its FIN never arrives and the gateway's kernel retransmits into the void. With
 * `deadPeerTimeoutMs` the gateway destroys the stream and the user's next stream opens; without it the slot
 * stays held and the user gets 429. Needs root (CI is root) and iproute2; skipped with a warning otherwise.
 */
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { connect as connectHttp2, createServer as createHttp2Server } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { endianness } from 'node:os';
import { join } from 'node:path';
import express, { type Request } from 'express';
import { Registry } from 'prom-client';
import { createMemoryBus, sseMiddleware } from '../../src';
import { DiagnosticsChannel, type StreamDiagnostic, subscribeDiagnostics } from '../../src/ops/diagnostics';
import { registerMetrics } from '../../src/ops/metrics';
import { destroyTransport } from '../../src/server/dead-peer';
import { retransmittingSockets, socketKey } from '../../src/server/tcp-table';
import type { AuditEntry, SseGateway, SseOptions } from '../../src/types';
import { closeAll, eventually, onCleanup, recordingLogger } from '../helpers/gateway';
import { createNetns, type NetNamespace, netnsUnavailable } from '../helpers/netns';
import { openStream } from '../helpers/sse-client';

const unavailable = netnsUnavailable();
if (unavailable !== undefined) console.warn(`test/integration/dead-peer.test.ts is skipped: ${unavailable}.`);
const suite = unavailable === undefined ? describe : describe.skip;

const CLIENT = join(__dirname, '..', 'fixtures', 'netns-sse-client.js');
const TIMEOUT_MS = 2000;
/** min(timeout / 4, 15 s): how often the scanner reads the kernel's tables. */
const SCAN_MS = TIMEOUT_MS / 4;

afterEach(closeAll);

const byHeader = (req: Request) => {
  const id = req.get('x-user');
  return id ? { id } : null;
};

type Family = 'ipv4' | 'dual-stack' | 'ipv6';

interface Scene {
  readonly gateway: SseGateway;
  readonly ns: NetNamespace;
  readonly audit: AuditEntry[];
  /** The stream URL as this side reaches it. */
  readonly url: string;
  /** The gateway side of the namespace client's connection. */
  readonly peerSocket: Socket;
  /** Cut the link, then kill the client: its FIN is lost. */
  vanish(): Promise<void>;
}

/** A gateway listening where the namespace can reach it, and a client inside holding user u1's one stream. */
async function scene(family: Family, options: Partial<SseOptions>): Promise<Scene> {
  const ns = await createNetns();
  onCleanup(() => ns.remove());
  if (family === 'ipv6' && ns.hostAddress6 === undefined) throw new Error('IPv6 is off on this machine');
  const audit: AuditEntry[] = [];
  const gateway = sseMiddleware({
    channels: ['logs'],
    bus: createMemoryBus(),
    authentication: byHeader,
    heartbeatMs: 300,
    limits: { maxConnectionsPerUser: 1 },
    logger: recordingLogger(),
    audit: (entry) => audit.push(entry),
    ...options,
  });
  const app = express();
  app.use(gateway);
  const server = createHttpServer(app);
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const listenOn = family === 'ipv4' ? ns.hostAddress : family === 'dual-stack' ? '::' : (ns.hostAddress6 as string);
  await listen(server, listenOn);
  onCleanup(async () => {
    await gateway.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const { port } = server.address() as AddressInfo;
  const host = family === 'ipv6' ? `[${ns.hostAddress6}]` : ns.hostAddress;
  const url = `http://${host}:${port}/events?channels=logs:a`;

  const client = ns.spawnNode([CLIENT, url, 'u1']);
  const exited = new Promise<void>((resolve) => client.on('exit', () => resolve()));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the namespace client said: ${output || 'nothing'}`)), 10_000);
    client.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    client.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
  });
  expect(gateway.stats().connections).toBe(1);
  const peer = family === 'ipv6' ? (ns.peerAddress6 as string) : ns.peerAddress;
  const peerSocket = [...sockets].find((socket) => socket.remoteAddress?.endsWith(peer));
  if (peerSocket === undefined) throw new Error('no socket from the namespace');
  return {
    gateway,
    ns,
    audit,
    url,
    peerSocket,
    async vanish() {
      await ns.cutLink();
      client.kill('SIGKILL');
      await exited;
    },
  };
}

function listen(server: Server, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
}

/** Retransmission timeouts the kernel shows for `socket`, or `undefined` when its data is acknowledged. */
async function retransmits(socket: Socket): Promise<number | undefined> {
  const stuck = new Map<string, number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    retransmittingSockets(await readFile(file, 'latin1'), endianness(), stuck);
  }
  return stuck.get(socketKey(socket.localPort as number, socket.remoteAddress as string, socket.remotePort as number));
}

async function metric(registry: Registry, name: string): Promise<number | undefined> {
  const found = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  return found?.values[0]?.value;
}

suite('a peer gone without a FIN (network namespace, link cut, client killed)', () => {
  test.each<[Family]>([['ipv4'], ['dual-stack'], ['ipv6']])(
    '%s: the stream is destroyed after deadPeerTimeoutMs, counted, audited, and u1 may connect again',
    async (family) => {
      const { gateway, audit, url, vanish } = await scene(family, { deadPeerTimeoutMs: TIMEOUT_MS });
      const registry = new Registry();
      registerMetrics(gateway, { registry });
      const reported: StreamDiagnostic[] = [];
      onCleanup(subscribeDiagnostics<StreamDiagnostic>(DiagnosticsChannel.stream, gateway, (m) => reported.push(m)));

      const cut = Date.now();
      await vanish();
      await eventually(() => gateway.stats().connections === 0, TIMEOUT_MS + 20 * SCAN_MS, 'the dead stream to close');
      const elapsed = Date.now() - cut;
      // Not before the timeout (so it was the scanner, not a reset), and within a few scans of it.
      expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS);
      expect(elapsed).toBeLessThan(TIMEOUT_MS + 10 * SCAN_MS);
      expect(gateway.stats()).toMatchObject({ deadPeersClosed: 1, slowClosed: 0, users: 0 });
      const closed = audit.find((entry) => entry.type === 'disconnect');
      expect(closed).toMatchObject({ principalId: 'u1', reason: 'dead-peer' });
      expect(reported.map((m) => m.entry)).toContainEqual(closed);
      expect(await metric(registry, 'sse_dead_peers_closed_total')).toBe(1);

      const again = await openStream(url, { headers: { 'x-user': 'u1' } });
      onCleanup(() => again.close());
      expect(again.status).toBe(200);
      expect(again.events[0]?.event).toBe('sse:ready');
      expect(gateway.stats().connections).toBe(1);
    },
  );

  test('control: with deadPeerTimeoutMs false the slot stays held and u1 gets 429 after the same wait', async () => {
    const { gateway, url, vanish, peerSocket } = await scene('ipv4', { deadPeerTimeoutMs: false });
    await vanish();
    // The kernel does see the peer as gone: its data is being retransmitted, unacknowledged.
    const deadline = Date.now() + 10_000;
    while (((await retransmits(peerSocket)) ?? 0) === 0) {
      if (Date.now() > deadline) throw new Error('the socket never showed a retransmission');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Nothing to synchronise on when nothing happens: wait as long as the enabled case may take.
    await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS + 4 * SCAN_MS));
    expect(await retransmits(peerSocket)).toBeGreaterThan(0);
    const refused = await openStream(url, { headers: { 'x-user': 'u1' } });
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ error: { code: 'ERR_SSE_TOO_MANY_USER_CONNECTIONS' } });
    expect(gateway.stats()).toMatchObject({ connections: 1, deadPeersClosed: 0 });
  });

  test('a live client that reads is never taken for a dead peer', async () => {
    const { gateway } = await scene('ipv4', { deadPeerTimeoutMs: TIMEOUT_MS });
    await gateway.publish('logs:a', 'x'.repeat(50_000));
    await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS + 4 * SCAN_MS));
    expect(gateway.stats()).toMatchObject({ connections: 1, deadPeersClosed: 0 });
  });
});

describe('destroying the transport of a dead stream', () => {
  test("HTTP/2: req.socket gives the session's addresses, and the whole session ends, every stream closing, nothing thrown", async () => {
    const closed: string[] = [];
    const keys: string[] = [];
    let first: IncomingMessage | undefined;
    const server = createHttp2Server((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
      res.on('close', () => closed.push(req.url));
      const { localPort, remoteAddress, remotePort } = req.socket;
      keys.push(socketKey(localPort as number, remoteAddress as string, remotePort as number));
      const message = req as unknown as IncomingMessage;
      if (first === undefined) first = message;
      else destroyTransport(first);
    });
    const sessions = new Set<{ destroy(): void }>();
    server.on('session', (serverSession) => sessions.add(serverSession));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const session = connectHttp2(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    onCleanup(async () => {
      session.destroy();
      for (const open of sessions) open.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    session.on('error', () => undefined);
    const sessionClosed = new Promise<void>((resolve) => session.on('close', () => resolve()));
    const a = session.request({ ':path': '/a' });
    a.on('error', () => undefined);
    a.resume();
    await new Promise((resolve) => a.once('data', resolve));
    const b = session.request({ ':path': '/b' });
    b.on('error', () => undefined);
    b.resume();
    await eventually(() => closed.length === 2, 5000, 'both streams to close');
    await sessionClosed;
    expect(closed.sort()).toEqual(['/a', '/b']);
    expect(keys[0]).toBe(keys[1]);
    expect(keys[0]).toMatch(/^\d+ 127\.0\.0\.1 \d+$/);
  });

  test('HTTP/1.1: the socket is destroyed and the response closes', async () => {
    let closed = false;
    const server = createHttpServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
      res.on('close', () => {
        closed = true;
      });
      setImmediate(() => destroyTransport(req));
    });
    await listen(server, '127.0.0.1');
    onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const stream = await openStream(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { ready: false });
    await stream.ended;
    await eventually(() => closed, 5000, 'the response to close');
  });
});
