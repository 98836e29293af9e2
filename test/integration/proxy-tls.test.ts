/**
 * sseProxy and bridgeUpstream toward an `https:` upstream: a private CA through the `tls` option, and mutual
 * TLS (the upstream requires a client certificate). The certificate is made by openssl for this run.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { createMemoryBus } from '../../src/bus/memory-bus';
import type { SseEvent } from '../../src/types';
import { bridgeUpstream } from '../../src/upstream/bridge';
import { sseProxy } from '../../src/upstream/proxy';
import { startServer, type TestServer } from '../helpers/server';
import { openStream } from '../helpers/sse-client';

let dir: string;
let cert: Buffer;
let key: Buffer;
let upstream: Server;
let upstreamUrl: string;
let bff: TestServer;
const quiet = { warn() {}, error() {} };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sse-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  cert = readFileSync(join(dir, 'cert.pem'));
  key = readFileSync(join(dir, 'key.pem'));
  // The upstream trusts the same self-signed certificate as a client certificate: mutual TLS.
  upstream = createServer({ key, cert, requestCert: true, rejectUnauthorized: true, ca: cert }, (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    const last = Number(req.headers['last-event-id'] ?? 0);
    for (let i = last + 1; i <= last + 3; i++) res.write(`id: ${i}\nevent: log\ndata: line ${i}\n\n`);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamUrl = `https://127.0.0.1:${(upstream.address() as AddressInfo).port}/logs/stream`;

  const app = express();
  app.get('/trusted', sseProxy({ target: upstreamUrl, tls: { ca: cert, cert, key }, logger: quiet }));
  app.get('/no-client-cert', sseProxy({ target: upstreamUrl, tls: { ca: cert }, logger: quiet }));
  app.get('/untrusted', sseProxy({ target: upstreamUrl, logger: quiet }));
  bff = await startServer(app);
});

afterAll(async () => {
  await bff?.close();
  upstream?.closeAllConnections();
  await new Promise((resolve) => upstream?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

test('sseProxy: a private CA and a client certificate through `tls`', async () => {
  const stream = await openStream(`${bff.url}/trusted`, { ready: false, headers: { 'last-event-id': '10' } });
  expect(await stream.take(3)).toEqual([
    { id: '11', event: 'log', data: 'line 11' },
    { id: '12', event: 'log', data: 'line 12' },
    { id: '13', event: 'log', data: 'line 13' },
  ]);
  stream.close();
});

test.each([
  ['the upstream certificate is not trusted', '/untrusted'],
  ['the upstream requires a client certificate', '/no-client-cert'],
])('sseProxy: %s → 200, retry and sse:error, then the end', async (_why, path) => {
  const stream = await openStream(`${bff.url}${path}`, { ready: false });
  expect(stream.status).toBe(200);
  await stream.ended;
  expect(stream.retry).toBeDefined();
  expect(stream.events.map((e) => [e.event, JSON.parse(e.data).reason])).toEqual([
    ['sse:error', 'upstream-unreachable'],
  ]);
});

test('bridgeUpstream over mutual TLS', async () => {
  const bus = createMemoryBus();
  const received: SseEvent[] = [];
  bus.listen((event) => received.push(event));
  const bridge = bridgeUpstream({
    target: upstreamUrl,
    bus,
    channel: 'logs:tls',
    tls: { ca: cert, cert, key },
    logger: quiet,
  });
  bridge.start();
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bridge published ${received.length}`)), 5000);
      bus.listen(() => {
        if (received.length >= 3) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    expect(received.slice(0, 3).map((e) => e.data)).toEqual(['line 1', 'line 2', 'line 3']);
  } finally {
    await bridge.stop();
    await bus.close();
  }
});

test('the tls option is checked up front', () => {
  expect(() => sseProxy({ target: upstreamUrl, tls: { cafile: 'x' } as never })).toThrow(/does not take `cafile`/);
  expect(() =>
    bridgeUpstream({ target: upstreamUrl, bus: createMemoryBus(), channel: 'a:b', tls: 'x' as never }),
  ).toThrow(/tls/);
});
