import express from 'express';
import type { Logger } from '../../src/types';
import { sseProxy } from '../../src/upstream/proxy';
import { startServer, type TestServer } from '../helpers/server';
import { openStream, type SseStream } from '../helpers/sse-client';
import { type FakeUpstream, startUpstream } from '../helpers/upstream';

const quiet: Logger = { warn() {}, error() {} };
let upstream: FakeUpstream;
let bff: TestServer;
let behindProxy: TestServer;
const streams: SseStream[] = [];

/** What a hostile or merely confused client sends that must not reach the upstream by default. */
const REFUSED = {
  'x-forwarded-for': '6.6.6.6',
  'x-forwarded-proto': 'gopher',
  'x-forwarded-host': 'evil.example',
  forwarded: 'for=6.6.6.6;host=evil.example',
  'x-real-ip': '6.6.6.6',
  'x-user-id': 'admin',
  'x-tenant-id': 'other-tenant',
  'x-api-key': 'stolen',
  origin: 'https://evil.example',
  cookie: 'session=secret',
  authorization: 'Bearer browser-token',
  'x-custom': 'custom',
};
/** What a tracing, localising upstream may see. */
const ALLOWED = {
  'accept-language': 'de-CH, en;q=0.5',
  'user-agent': 'test-browser/1.0',
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  tracestate: 'vendor=opaque',
  baggage: 'userId=alice',
  'x-request-id': 'req-1',
  'last-event-id': 'evt-9',
};

/** The headers the upstream saw for a client request to `path` carrying `headers`. */
async function seenUpstream(server: TestServer, path: string, headers: Record<string, string>) {
  const before = upstream.requests.length;
  streams.push(await openStream(`${server.url}${path}`, { ready: false, headers }));
  await upstream.waitFor((u) => u.requests.length === before + 1, 5000, 'the upstream request');
  return upstream.requests[before]?.headers ?? {};
}

beforeAll(async () => {
  upstream = await startUpstream();
  const app = express();
  const target = `${upstream.url}/s`;
  app.get('/default', sseProxy({ target, logger: quiet }));
  app.get('/widened', sseProxy({ target, forwardHeaders: ['X-Tenant-Id', 'x-custom'], logger: quiet }));
  app.get(
    '/configured',
    sseProxy({ target, headers: { 'x-forwarded-host': 'bff.internal', 'x-tenant-id': 't1' }, logger: quiet }),
  );
  bff = await startServer(app);
  const trusting = express();
  trusting.set('trust proxy', 'loopback');
  trusting.get('/default', sseProxy({ target, logger: quiet }));
  behindProxy = await startServer(trusting);
});

afterEach(() => {
  for (const stream of streams.splice(0)) stream.close();
});

afterAll(async () => {
  await bff.close();
  await behindProxy.close();
  await upstream.stop();
});

describe('sseProxy forwards an allow-list of client headers', () => {
  it('by default: language, user agent, tracing, request id and Last-Event-ID; nothing else of the client', async () => {
    const seen = await seenUpstream(bff, '/default', { ...REFUSED, ...ALLOWED });
    for (const [name, value] of Object.entries(ALLOWED)) expect([name, seen[name]]).toEqual([name, value]);
    for (const name of ['forwarded', 'x-real-ip', 'x-user-id', 'x-tenant-id', 'x-api-key', 'origin', 'x-custom']) {
      expect([name, seen[name]]).toEqual([name, undefined]);
    }
    expect(seen.cookie).toBeUndefined();
    expect(seen.authorization).toBeUndefined();
  });

  it("sets X-Forwarded-For, -Proto and -Host from the BFF's own view, not the client's values", async () => {
    const seen = await seenUpstream(bff, '/default', REFUSED);
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-host']).toBe('127.0.0.1');
  });

  it('behind a trusted proxy (trust proxy), X-Forwarded-* carry what Express trusts: req.ip, req.protocol, req.hostname', async () => {
    const seen = await seenUpstream(behindProxy, '/default', {
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'app.example',
    });
    expect(seen['x-forwarded-for']).toBe('203.0.113.7');
    expect(seen['x-forwarded-proto']).toBe('https');
    expect(seen['x-forwarded-host']).toBe('app.example');
  });

  it('forwardHeaders widens the list (any case); the rest stays out', async () => {
    const seen = await seenUpstream(bff, '/widened', { ...REFUSED, ...ALLOWED });
    expect(seen['x-tenant-id']).toBe('other-tenant');
    expect(seen['x-custom']).toBe('custom');
    expect(seen['user-agent']).toBe(ALLOWED['user-agent']);
    for (const name of ['x-user-id', 'x-api-key', 'origin', 'cookie', 'authorization', 'forwarded', 'x-real-ip']) {
      expect([name, seen[name]]).toEqual([name, undefined]);
    }
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('a widened header the client names in Connection is still hop-by-hop', async () => {
    const seen = await seenUpstream(bff, '/widened', { connection: 'keep-alive, x-custom', 'x-custom': 'hop' });
    expect(seen['x-custom']).toBeUndefined();
  });

  it('the configured headers win over the forwarded ones', async () => {
    const seen = await seenUpstream(bff, '/configured', REFUSED);
    expect(seen['x-forwarded-host']).toBe('bff.internal');
    expect(seen['x-tenant-id']).toBe('t1');
  });
});

describe('sseProxy: forwardHeaders is checked up front', () => {
  it.each([
    [['x-forwarded-for'], /sets `x-forwarded-for` itself/],
    [['Forwarded'], /sets `forwarded` itself|not forwarded/],
    [['cookie'], /forwardCookies/],
    [['connection'], /hop-by-hop/],
    [['host'], /hop-by-hop|itself/],
    [['bad name'], /not a header name/],
    ['x-tenant-id', /array of header names/],
  ])('%j is refused', (value, message) => {
    expect(() => sseProxy({ target: 'http://x', forwardHeaders: value as never })).toThrow(message);
  });
});
