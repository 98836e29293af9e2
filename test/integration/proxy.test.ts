import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import compression from 'compression';
import express, { type Request } from 'express';
import { SseError } from '../../src/protocol/errors';
import type { Logger } from '../../src/types';
import { sseProxy } from '../../src/upstream/proxy';
import { startServer, type TestServer } from '../helpers/server';
import { openStream, type SseStream } from '../helpers/sse-client';
import { type FakeUpstream, startUpstream } from '../helpers/upstream';

const quiet: Logger & { warnings: string[]; errors: unknown[] } = {
  warnings: [],
  errors: [],
  warn(message: string) {
    quiet.warnings.push(message);
  },
  error(message: string, ...details: unknown[]) {
    quiet.errors.push([message, ...details]);
  },
};

let upstream: FakeUpstream;
let bff: TestServer;
let closedPort: number;
const streams: SseStream[] = [];

async function open(path: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const stream = await openStream(`${bff.url}${path}`, { ready: false, headers });
  streams.push(stream);
  return stream;
}

/** The request the upstream saw last, once it has seen `count` in all. */
async function nthRequest(count: number) {
  await upstream.waitFor((u) => u.requests.length >= count, 5000, `${count} upstream requests`);
  const request = upstream.requests[count - 1];
  if (request === undefined) throw new Error('no such request');
  return request;
}

beforeAll(async () => {
  upstream = await startUpstream();
  const spare = createServer();
  await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve));
  closedPort = (spare.address() as AddressInfo).port;
  await new Promise<void>((resolve) => spare.close(() => resolve()));

  const app = express();
  const common = { retryMs: 1000, logger: quiet };
  app.get(
    '/stream',
    sseProxy({
      ...common,
      target: `${upstream.url}/logs/stream`,
      headers: { Authorization: 'Bearer service-token' },
      // Client headers beyond the default allow-list, so the hop-by-hop test sees an end-to-end one pass.
      forwardHeaders: ['x-end-to-end', 'x-hop'],
    }),
  );
  app.get('/cookies', sseProxy({ ...common, target: `${upstream.url}/logs/stream`, forwardCookies: true }));
  app.get(
    '/api/dapadmin/l5-etl/sse/logs/stream',
    sseProxy({
      ...common,
      target: (req: Request) => {
        const { workspace_id: ws, workflow_id: wf } = req.query;
        if (typeof ws !== 'string' || typeof wf !== 'string') {
          throw new SseError('ERR_SSE_BAD_REQUEST', 'workspace_id and workflow_id are required.', 400);
        }
        const url = new URL('/logs/stream', upstream.url);
        url.searchParams.set('channels', `logs:etl:${ws}:${wf}`);
        return url;
      },
      headers: async (req: Request) => {
        await new Promise((resolve) => setImmediate(resolve));
        return { authorization: `Bearer token-for-${String(req.headers['x-user'] ?? 'nobody')}` };
      },
    }),
  );
  app.get('/down', sseProxy({ ...common, target: `http://127.0.0.1:${closedPort}/logs/stream` }));
  app.get('/slow', sseProxy({ ...common, target: `${upstream.url}/slow`, connectTimeoutMs: 300 }));
  app.get('/small', sseProxy({ ...common, target: `${upstream.url}/small`, maxEventSize: 1024 }));
  app.get('/beat', sseProxy({ ...common, target: `${upstream.url}/beat`, heartbeatMs: 50 }));
  app.get(
    '/headers-fail',
    sseProxy({
      ...common,
      target: `${upstream.url}/x`,
      headers: () => Promise.reject(new Error('token service down')),
    }),
  );
  const compressed = express.Router();
  compressed.use(compression());
  compressed.get('/compressed', sseProxy({ ...common, target: `${upstream.url}/c` }));
  app.use(compressed);
  bff = await startServer(app);
});

afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  upstream.resetMode();
  upstream.endStreams();
  await upstream.waitFor((u) => u.open === 0, 2000, 'no open upstream streams after the test');
});

afterAll(async () => {
  await bff.close();
  await upstream.stop();
});

describe('sseProxy: the stream toward the client', () => {
  test('answers 200 with the SSE headers and retry: at once, before upstream answers', async () => {
    upstream.mode.hang = true;
    const stream = await open('/stream');
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(stream.headers['cache-control']).toBe('no-cache, no-transform');
    expect(stream.headers['x-accel-buffering']).toBe('no');
    await stream.until((s) => s.retry === 1000);
    expect(stream.raw.startsWith('retry: 1000\n')).toBe(true);
  });

  test('relays ids, event names and multi-line data faithfully, in order', async () => {
    const stream = await open('/stream');
    await upstream.waitFor((u) => u.open === 1);
    upstream.send({ id: '1', event: 'log', data: 'first line\nsecond line\n\nfourth' });
    upstream.send({ data: 'no id, no name' });
    upstream.send({ id: 'abc-2', event: 'status', data: '{"state":"running"}' });
    upstream.send({ id: '', data: 'id reset' });
    expect(await stream.take(4)).toEqual([
      { id: '1', event: 'log', data: 'first line\nsecond line\n\nfourth' },
      { data: 'no id, no name' },
      { id: 'abc-2', event: 'status', data: '{"state":"running"}' },
      { id: '', data: 'id reset' },
    ]);
  });

  test('passes on an id given without data, so the browser resumes from it', async () => {
    const stream = await open('/stream');
    await upstream.waitFor((u) => u.open === 1);
    upstream.writeRaw('id: 41\n\n');
    upstream.send({ data: 'after' });
    await stream.take(1);
    expect(stream.raw).toContain('id: 41\n\n');
  });

  test('sends heartbeat comments while upstream is silent', async () => {
    const stream = await open('/beat');
    await stream.until((s) => s.comments.length >= 2);
    expect(stream.comments[0]).toBe('heartbeat');
  });

  test('survives compression middleware in front of it', async () => {
    const stream = await open('/compressed', { 'accept-encoding': 'gzip' });
    await upstream.waitFor((u) => u.open === 1);
    upstream.send({ id: '9', data: 'through compression' });
    expect(await stream.take(1)).toEqual([{ id: '9', data: 'through compression' }]);
    expect(stream.headers['content-encoding']).toBeUndefined();
  });
});

describe('sseProxy: the request toward upstream', () => {
  test('forwards Last-Event-ID from the header', async () => {
    const before = upstream.requests.length;
    await open('/stream', { 'last-event-id': 'evt-17' });
    expect((await nthRequest(before + 1)).headers['last-event-id']).toBe('evt-17');
  });

  test('forwards Last-Event-ID from the lastEventId query parameter', async () => {
    const before = upstream.requests.length;
    await open('/stream?lastEventId=evt-18');
    expect((await nthRequest(before + 1)).headers['last-event-id']).toBe('evt-18');
  });

  test('sends the configured auth header, never the browser Cookie or Authorization', async () => {
    const before = upstream.requests.length;
    await open('/stream', { cookie: 'session=secret', authorization: 'Bearer browser-token', 'x-request-id': 'r-1' });
    const { headers } = await nthRequest(before + 1);
    expect(headers.authorization).toBe('Bearer service-token');
    expect(headers.cookie).toBeUndefined();
    expect(headers['x-request-id']).toBe('r-1');
    expect(headers.accept).toBe('text/event-stream');
    expect(headers['accept-encoding']).toBe('identity');
  });

  test('forwards the Cookie when forwardCookies is set', async () => {
    const before = upstream.requests.length;
    await open('/cookies', { cookie: 'session=secret' });
    expect((await nthRequest(before + 1)).headers.cookie).toBe('session=secret');
  });

  test('strips hop-by-hop headers, including those named in Connection', async () => {
    const before = upstream.requests.length;
    await open('/stream', {
      connection: 'keep-alive, x-hop',
      'keep-alive': 'timeout=5',
      'x-hop': 'should not pass',
      te: 'trailers',
      'proxy-authorization': 'Basic abc',
      'x-end-to-end': 'passes',
    });
    const { headers } = await nthRequest(before + 1);
    for (const name of ['keep-alive', 'x-hop', 'te', 'proxy-authorization']) expect(headers[name]).toBeUndefined();
    expect(headers.connection).not.toContain('x-hop');
    expect(headers['x-end-to-end']).toBe('passes');
  });

  test('maps the page query to the upstream URL and computes headers per request (the Datashop route)', async () => {
    const before = upstream.requests.length;
    const stream = await open('/api/dapadmin/l5-etl/sse/logs/stream?workspace_id=ws1&workflow_id=wf2', {
      'x-user': 'u7',
    });
    const request = await nthRequest(before + 1);
    expect(request.url).toBe('/logs/stream?channels=logs%3Aetl%3Aws1%3Awf2');
    expect(request.headers.authorization).toBe('Bearer token-for-u7');
    await upstream.waitFor((u) => u.open === 1);
    upstream.send({ id: '1', data: 'etl started' });
    expect(await stream.take(1)).toEqual([{ id: '1', data: 'etl started' }]);
  });

  test('a target that throws an SseError answers with its status and JSON before the stream starts', async () => {
    const stream = await openStream(`${bff.url}/api/dapadmin/l5-etl/sse/logs/stream?workspace_id=ws1`, {
      ready: false,
    });
    expect(stream.status).toBe(400);
    expect(stream.body).toEqual({
      error: { code: 'ERR_SSE_BAD_REQUEST', message: 'workspace_id and workflow_id are required.' },
    });
  });
});

describe('sseProxy: connections are released', () => {
  test('200 clients connect and leave: open upstream connections return to 0 within 1 s', async () => {
    const clients = await Promise.all(
      Array.from({ length: 200 }, () => openStream(`${bff.url}/stream`, { ready: false })),
    );
    await upstream.waitFor((u) => u.open === 200, 10_000, '200 open upstream streams');
    upstream.send({ id: 'x', data: 'to everyone' });
    await Promise.all(clients.map((c) => c.take(1)));
    const left = Date.now();
    for (const client of clients) client.close();
    await upstream.waitFor((u) => u.open === 0, 1000, 'every upstream stream to close');
    expect(Date.now() - left).toBeLessThan(1000);
  });

  test('a client leaving before upstream answers aborts the upstream request', async () => {
    upstream.mode.hang = true;
    const before = upstream.requests.length;
    const stream = await open('/stream');
    await upstream.waitFor((u) => u.requests.length === before + 1 && u.open === 1);
    stream.close();
    await upstream.waitFor((u) => u.open === 0, 1000, 'the pending upstream request to be aborted');
  });
});

describe('sseProxy: upstream failures become sse:error on a 200 stream', () => {
  async function expectError(path: string, expected: { reason: string; status?: number }) {
    const stream = await open(path);
    expect(stream.status).toBe(200);
    await stream.ended;
    expect(stream.retry).toBe(1000);
    expect(stream.events).toEqual([{ event: 'sse:error', data: JSON.stringify(expected) }]);
  }

  test('upstream down', async () => {
    await expectError('/down', { reason: 'upstream-unreachable' });
  });

  test('upstream answers 500', async () => {
    upstream.mode.status = 500;
    await expectError('/stream', { reason: 'upstream-status', status: 500 });
  });

  test('upstream answers text/html', async () => {
    upstream.mode.contentType = 'text/html';
    await expectError('/stream', { reason: 'upstream-content-type', status: 200 });
  });

  test('upstream does not answer within connectTimeoutMs', async () => {
    upstream.mode.hang = true;
    await expectError('/slow', { reason: 'upstream-timeout' });
    await upstream.waitFor((u) => u.open === 0, 1000, 'the timed-out request to be aborted');
  });

  test('the headers option fails', async () => {
    await expectError('/headers-fail', { reason: 'upstream-headers' });
  });

  test('upstream closing mid-stream ends the client stream', async () => {
    const stream = await open('/stream');
    await upstream.waitFor((u) => u.open === 1);
    upstream.send({ id: '1', data: 'before the end' });
    await stream.take(1);
    upstream.endStreams();
    await stream.ended;
    expect(stream.events).toEqual([{ id: '1', data: 'before the end' }]);
  });

  test('upstream dying mid-stream (socket destroyed) ends the client stream', async () => {
    const other = await startUpstream();
    const app = express();
    app.get('/s', sseProxy({ target: `${other.url}/s`, logger: quiet }));
    const server = await startServer(app);
    try {
      const stream = await openStream(`${server.url}/s`, { ready: false });
      await other.waitFor((u) => u.open === 1);
      other.send({ data: 'hello' });
      await stream.take(1);
      await other.stop();
      await stream.ended;
    } finally {
      await server.close();
    }
  });
});

describe('sseProxy: untrusted upstream bytes', () => {
  test('a gzip-compressing upstream still yields a valid stream', async () => {
    upstream.mode.gzip = true;
    const stream = await open('/stream');
    await upstream.waitFor((u) => u.open === 1);
    upstream.send({ id: '1', event: 'log', data: 'compressed\nanyway' });
    upstream.send({ id: '2', data: 'second' });
    expect(await stream.take(2)).toEqual([
      { id: '1', event: 'log', data: 'compressed\nanyway' },
      { id: '2', data: 'second' },
    ]);
    upstream.endStreams();
    await stream.ended;
  });

  test('malformed bytes never break the client framing', async () => {
    const stream = await open('/small');
    await upstream.waitFor((u) => u.open === 1);
    upstream.writeRaw('id: 1\0evil\ndata: nul in id\n\n');
    upstream.writeRaw('id: 2\rdata: cr only\rdata: line ends\r\r');
    upstream.writeRaw('event: bad\0name\ndata: dropped\n\n');
    upstream.writeRaw(`data: ${'x'.repeat(5000)}\n\n`);
    upstream.writeRaw('data: injected\r\nid: 3\r\nevent: sse:ready\r\ndata: {}\r\n\r\n');
    upstream.writeRaw(Buffer.from([0x64, 0x61, 0x74, 0x61, 0x3a, 0x20, 0xff, 0xfe, 0x0a, 0x0a]));
    upstream.send({ id: '4', data: 'still fine' });
    const events = await stream.take(5);
    expect(events).toEqual([
      { data: 'nul in id' },
      { id: '2', data: 'cr only\nline ends' },
      { id: '3', event: 'sse:ready', data: 'injected\n{}' },
      { data: '\uFFFD\uFFFD' },
      { id: '4', data: 'still fine' },
    ]);
    // Our own framing only: LF line ends, and every data line is ours.
    expect(stream.raw).not.toMatch(/[\r\0]/);
    expect(quiet.warnings.some((w) => w.includes('maxEventSize'))).toBe(true);
  });
});

describe('sseProxy: options', () => {
  test('rejects wrong options with a fix-it TypeError', () => {
    expect(() => sseProxy({ target: 'http://x', heartbeat: 5 } as never)).toThrow(/did you mean `heartbeatMs`/);
    expect(() => sseProxy({} as never)).toThrow(/needs `\{ target \}`/);
    expect(() => (sseProxy as (o?: unknown) => unknown)()).toThrow(/needs `\{ target \}`/);
    expect(() => sseProxy({ target: 'ftp://x' })).toThrow(/http: or https:/);
    expect(() => sseProxy({ target: 'http://x', retryMs: -1 })).toThrow(TypeError);
    expect(() => sseProxy({ target: 'http://x', headers: { a: 1 } as never })).toThrow(/must be a string/);
  });

  test('detects sseProxy passed without being called', async () => {
    const app = express();
    app.get('/oops', sseProxy as never);
    app.use((error: Error, _req: unknown, res: express.Response, _next: unknown) => {
      res.status(500).json({ message: error.message });
    });
    const server = await startServer(app);
    try {
      const stream = await openStream(`${server.url}/oops`, { ready: false });
      expect(stream.status).toBe(500);
      expect(JSON.stringify(stream.body)).toContain('sseProxy is a factory');
    } finally {
      await server.close();
    }
  });
});
