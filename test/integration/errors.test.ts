import type { Request } from 'express';
import express from 'express';
import request from 'supertest';
import { sseMiddleware } from '../../src';
import { byHeader, closeAll, eventually, onCleanup, recordingLogger, startGateway } from '../helpers/gateway';
import { startServer } from '../helpers/server';
import { openStream, type SseStream } from '../helpers/sse-client';

afterEach(closeAll);

interface ErrorBody {
  error: { code: string; message: string; channels?: string[] };
}

function errorOf(stream: SseStream): ErrorBody['error'] {
  return (stream.body as ErrorBody).error;
}

describe('errors are JSON answers before any stream byte', () => {
  it.each([
    ['a malformed channel', 'channels=logs:ws1,logs::x', ['logs::x']],
    ['an unknown namespace', 'channels=logs:a,secrets:a', ['secrets:a']],
    ['a wildcard in the middle', 'channels=logs:*:a', ['logs:*:a']],
    ['a bare wildcard', 'channels=*', ['*']],
    ['a newline in the name', `channels=${encodeURIComponent('logs:a\nid: 1')}`, ['logs:a\nid: 1']],
    ['a segment over 128 characters', `channels=logs:${'x'.repeat(129)}`, [`logs:${'x'.repeat(129)}`]],
  ])('400 for %s, naming the offending channels', async (_what, query, offending) => {
    const { url } = await startGateway({ channels: ['logs'] });
    const res = await request(url).get(`/events?${query}`).expect(400).expect('Content-Type', /json/);
    expect(res.body.error.code).toBe('ERR_SSE_INVALID_CHANNEL');
    expect(res.body.error.channels).toEqual(offending);
    for (const name of offending) expect(res.body.error.message).toContain(name.slice(0, 60));
  });

  it('400 for an empty channel list', async () => {
    const { url } = await startGateway({ channels: ['logs'] });
    for (const query of ['', 'channels=', 'channels=,,']) {
      const res = await request(url).get(`/events?${query}`).expect(400);
      expect(res.body.error.code).toBe('ERR_SSE_NO_CHANNELS');
    }
  });

  it('400 for 1,000 channels, and for more than maxChannelsPerConnection', async () => {
    const { url } = await startGateway({ channels: ['logs'], limits: { maxChannelsPerConnection: 3 } });
    const many = Array.from({ length: 1000 }, (_, i) => `logs:c${i}`).join(',');
    const res = await request(url).get(`/events?channels=${many}`).expect(400);
    expect(res.body.error.code).toBe('ERR_SSE_TOO_MANY_CHANNELS');
    await request(url).get('/events?channels=logs:a,logs:b,logs:c,logs:d').expect(400);
    await openStream(`${url}/events?channels=logs:a,logs:b,logs:c`).then((s) => {
      expect(s.status).toBe(200);
      s.close();
    });
  });

  it('400 for a 10 KB channel string, without echoing all of it', async () => {
    const { url } = await startGateway({ channels: ['logs'] });
    const res = await request(url)
      .get(`/events?channels=logs:${'a'.repeat(10_000)}`)
      .expect(400);
    expect(res.body.error.code).toBe('ERR_SSE_INVALID_CHANNEL');
    expect(JSON.stringify(res.body).length).toBeLessThan(2000);
  });

  it('401 when authentication is true and req.user is absent', async () => {
    const { url } = await startGateway({ channels: ['logs'], authentication: true });
    const res = await request(url).get('/events?channels=logs:a').expect(401);
    expect(res.body.error.code).toBe('ERR_SSE_UNAUTHENTICATED');
  });

  it('401 when the authentication function returns null; 500 with a code when it throws', async () => {
    const logger = recordingLogger();
    const { url } = await startGateway({
      channels: ['logs'],
      logger,
      authentication: (req) => {
        if (req.get('x-boom')) throw new Error('db down');
        return byHeader(req);
      },
    });
    await request(url).get('/events?channels=logs:a').expect(401);
    const res = await request(url).get('/events?channels=logs:a').set('x-boom', '1').expect(500);
    expect(res.body.error.code).toBe('ERR_SSE_CALLBACK_FAILED');
    expect(logger.error).toHaveBeenCalled();
  });

  it('uses req.user set by the BFF auth middleware when authentication is true', async () => {
    const { open } = await startGateway(
      { channels: { alerts: { userScoped: true } }, authentication: true, userScoping: true },
      {
        before: (app) =>
          app.use((req, _res, next) => {
            (req as Request & { user?: unknown }).user = { id: 'u1', name: 'Ada' };
            next();
          }),
      },
    );
    const stream = await open('channels=alerts:u1');
    expect(stream.status).toBe(200);
  });

  it('403 lists the denied channels and subscribes nothing', async () => {
    const { url, gateway } = await startGateway({
      channels: ['logs'],
      authentication: byHeader,
      authorize: (_principal, channel) => channel !== 'logs:secret' && channel !== 'logs:*',
    });
    const res = await request(url).get('/events?channels=logs:ok,logs:secret,logs:*').set('x-user', 'u1').expect(403);
    expect(res.body.error.code).toBe('ERR_SSE_FORBIDDEN_CHANNEL');
    expect(res.body.error.channels).toEqual(['logs:secret', 'logs:*']);
    expect(gateway.stats()).toMatchObject({ connections: 0, subscriptions: 0, channels: 0 });
  });

  it('429 with Retry-After at maxConnections; the counter returns to zero when streams close', async () => {
    const { url, open, gateway } = await startGateway({
      channels: ['logs'],
      limits: { maxConnections: 2, retryAfterSeconds: 7 },
    });
    const a = await open('channels=logs:a');
    await open('channels=logs:a');
    const res = await request(url).get('/events?channels=logs:a').expect(429);
    expect(res.headers['retry-after']).toBe('7');
    expect(res.body.error.code).toBe('ERR_SSE_TOO_MANY_CONNECTIONS');
    a.close();
    await eventually(() => gateway.stats().connections === 1, 5000, 'a closed stream to be counted out');
    const again = await open('channels=logs:a');
    expect(again.status).toBe(200);
  });

  it('429 at maxConnectionsPerUser, per principal', async () => {
    const { url, gateway } = await startGateway({
      channels: ['logs'],
      authentication: byHeader,
      limits: { maxConnectionsPerUser: 1 },
    });
    const first = await openStream(`${url}/events?channels=logs:a`, { headers: { 'x-user': 'u1' } });
    onCleanup(() => first.close());
    const second = await openStream(`${url}/events?channels=logs:a`, { headers: { 'x-user': 'u1' } });
    expect(second.status).toBe(429);
    expect(second.headers['retry-after']).toBe('5');
    expect(errorOf(second).code).toBe('ERR_SSE_TOO_MANY_USER_CONNECTIONS');
    const other = await openStream(`${url}/events?channels=logs:a`, { headers: { 'x-user': 'u2' } });
    onCleanup(() => other.close());
    expect(other.status).toBe(200);
    expect(gateway.stats().users).toBe(2);
    first.close();
    await eventually(() => gateway.stats().users === 1, 5000, 'u1 to be counted out');
  });

  it('enforces maxConnections under concurrent slow authorization', async () => {
    const { url, gateway } = await startGateway({
      channels: ['logs'],
      authorizeCacheMs: 0,
      authorize: () => new Promise((resolve) => setTimeout(() => resolve(true), 20)),
      limits: { maxConnections: 3 },
    });
    const streams = await Promise.all(Array.from({ length: 8 }, () => openStream(`${url}/events?channels=logs:a`)));
    for (const s of streams) onCleanup(() => s.close());
    expect(streams.filter((s) => s.status === 200)).toHaveLength(3);
    expect(streams.filter((s) => s.status === 429)).toHaveLength(5);
    expect(gateway.stats().connections).toBe(3);
  });

  it('a client that leaves during authorization leaves nothing behind', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { url, gateway } = await startGateway({
      channels: ['logs'],
      authorize: async () => {
        await gate;
        return true;
      },
    });
    const req = request(url).get('/events?channels=logs:a');
    const aborted = new Promise((resolve) => {
      req.on('error', resolve);
    });
    req.timeout(50).end(() => {});
    await aborted;
    release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(gateway.stats()).toMatchObject({ connections: 0, subscriptions: 0, channels: 0 });
  });
});

describe('options are validated at creation', () => {
  it.each([
    [{ channels: ['logs'], heartbeat: 1000 }, /unknown option `heartbeat`; did you mean `heartbeatMs`\?/],
    [{ channels: ['logs'], authorise: () => true }, /did you mean `authorize`\?/],
    [{ channels: ['logs'], limits: { maxConnection: 1 } }, /did you mean `maxConnections`\?/],
    [{ channels: [] }, /at least one namespace/],
    [{}, /`channels` is required/],
    [{ channels: ['logs:x'] }, /namespace "logs:x" is invalid/],
    [{ channels: ['logs'], heartbeatMs: -1 }, /heartbeatMs/],
    [{ channels: ['logs'], retryMs: 1.5 }, /retryMs/],
    [{ channels: ['logs'], authentication: 'yes' }, /authentication/],
    [{ channels: ['logs'], path: 'events' }, /path/],
    [{ channels: ['logs'], bus: {} }, /`bus` must be a Bus/],
    [{ channels: { logs: { userscoped: true } } }, /did you mean `userScoped`\?/],
    [{ channels: ['logs'], replay: { size: 0 } }, /replay.size/],
    [{ channels: ['logs'], filter: 'all' }, /filter/],
    [{ channels: ['logs'], deadPeerTimeoutMs: 500 }, /`deadPeerTimeoutMs` must be an integer >= 1000 \(ms\) or false/],
    [{ channels: ['logs'], deadPeerTimeoutMs: true }, /`deadPeerTimeoutMs` must be .* \(received true\)/],
    [{ channels: ['logs'], deadPeerTimeout: 60_000 }, /did you mean `deadPeerTimeoutMs`\?/],
  ])('throws a TypeError that says how to fix %j', (options, message) => {
    expect(() => sseMiddleware(options as never)).toThrow(TypeError);
    expect(() => sseMiddleware(options as never)).toThrow(message);
  });

  it('warns through the injected logger about odd but valid options', () => {
    const logger = recordingLogger();
    sseMiddleware({ channels: { alerts: { userScoped: true } }, heartbeatMs: 120_000, logger, bus: undefined }).close();
    expect(logger.warn.mock.calls.map((c) => c[0]).join('\n')).toMatch(/heartbeatMs is 120000[\s\S]*userScoped/);
  });

  it('detects app.use(sseMiddleware) written without the call', async () => {
    const app = express();
    app.use(sseMiddleware as never);
    app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).json({ message: err.message });
    });
    const server = await startServer(app);
    onCleanup(() => server.close());
    const res = await request(server.url).get('/events?channels=logs:a').expect(500);
    expect(res.body.message).toMatch(/app\.use\(sseMiddleware\(\{ channels/);
  });
});
