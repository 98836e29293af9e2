import express from 'express';
import request from 'supertest';
import { SseError } from '../../src/protocol/errors';
import { sseProxy } from '../../src/upstream/proxy';
import { startServer, type TestServer } from '../helpers/server';
import { openStream } from '../helpers/sse-client';
import { type FakeUpstream, startUpstream } from '../helpers/upstream';

describe('sseProxy: an SseError thrown by target(req) is answered like every other route', () => {
  it('goes through sendError: its status, Cache-Control: no-store and the JSON body', async () => {
    const app = express();
    app.get(
      '/p',
      sseProxy({
        target: () => {
          throw new SseError('ERR_SSE_BAD_REQUEST', 'workspace_id is required.', 400);
        },
      }),
    );
    const res = await request(app).get('/p').expect(400);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ error: { code: 'ERR_SSE_BAD_REQUEST', message: 'workspace_id is required.' } });
  });
});

describe('sseProxy: what the upstream says about reconnecting reaches the browser', () => {
  let upstream: FakeUpstream;
  let bff: TestServer;
  beforeAll(async () => {
    upstream = await startUpstream();
    const app = express();
    app.get('/stream', sseProxy({ target: `${upstream.url}/stream` }));
    app.get('/fixed', sseProxy({ target: `${upstream.url}/stream`, retryMs: 1234 }));
    bff = await startServer(app);
  });
  afterAll(async () => {
    await bff.close();
    await upstream.stop();
  });
  afterEach(() => {
    upstream.mode.status = 200;
  });

  it("passes an upstream 204 (the spec's stop reconnecting) through as 204", async () => {
    upstream.mode.status = 204;
    const stream = await openStream(`${bff.url}/stream`, { ready: false });
    expect(stream.status).toBe(204);
  });

  it('marks 401, 403 and 404 in sse:error with their status, so clients can stop', async () => {
    for (const status of [401, 403, 404]) {
      upstream.mode.status = status;
      const stream = await openStream(`${bff.url}/stream`, { ready: false });
      await stream.ended;
      expect(stream.events).toEqual([
        { event: 'sse:error', data: JSON.stringify({ reason: 'upstream-status', status }) },
      ]);
    }
  });

  it("forwards the upstream's retry: unless the app set retryMs", async () => {
    const free = await openStream(`${bff.url}/stream`, { ready: false });
    const fixed = await openStream(`${bff.url}/fixed`, { ready: false });
    await upstream.waitFor((u) => u.open === 2);
    upstream.writeRaw('retry: 7777\n\n');
    upstream.send({ id: '1', data: 'after' });
    await free.until((s) => s.events.length === 1);
    await fixed.until((s) => s.events.length === 1);
    expect(free.retry).toBe(7777);
    expect(fixed.retry).toBe(1234);
    free.close();
    fixed.close();
  });
});
