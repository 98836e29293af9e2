import compression from 'compression';
// The same gateway mounted on Express 4 (installed as the `express4` alias).
import express4 from 'express4';
import request from 'supertest';
import { sseProxy } from '../../src/upstream/proxy';
import { closeAll, startGateway } from '../helpers/gateway';
import { startServer } from '../helpers/server';
import { dataEvents, openStream } from '../helpers/sse-client';
import { startUpstream } from '../helpers/upstream';

afterEach(closeAll);

describe('Express 4', () => {
  const on4 = { express: express4 as unknown as typeof import('express') };

  it('streams, multiplexes, replays and answers errors as on Express 5', async () => {
    const { open, gateway, url } = await startGateway(
      { channels: ['logs', 'dashboards'], path: '/api/stream' },
      {
        ...on4,
        before: (app) => app.use(compression()),
      },
    );
    const stream = await open('channels=logs:a,dashboards:*');
    expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    const first = await gateway.publish('logs:a', 1);
    await gateway.publish('dashboards:d1', 2);
    expect(dataEvents(await stream.take(2)).map((e) => e.data)).toEqual([1, 2]);
    const resumed = await open(`channels=logs:a,dashboards:*&lastEventId=${first.id}`);
    await gateway.publish('logs:a', 3);
    expect(dataEvents(await resumed.take(2)).map((e) => e.data)).toEqual([2, 3]);
    const res = await request(url).get('/api/stream?channel=nope:x').expect(400);
    expect(res.body.error.channels).toEqual(['nope:x']);
    const repeated = await open('channels=logs:a&channels=logs:b&channel=dashboards:d9');
    expect(JSON.parse(repeated.events[0]?.data ?? '{}').channels).toEqual(['logs:a', 'logs:b', 'dashboards:d9']);
  });

  it('sseProxy forwards a stream, Last-Event-ID and the service header, and closes upstream when the client goes', async () => {
    const upstream = await startUpstream({ replay: true });
    const app = express4();
    app.use(compression());
    app.get(
      '/proxy',
      sseProxy({ target: `${upstream.url}/logs/stream`, headers: { authorization: 'Bearer service-token' } }),
    );
    const bff = await startServer(app as unknown as Parameters<typeof startServer>[0]);
    try {
      upstream.send({ id: '1', data: 'one' });
      const stream = await openStream(`${bff.url}/proxy`, {
        ready: false,
        headers: { 'last-event-id': '0', cookie: 'session=secret' },
      });
      expect(stream.status).toBe(200);
      expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      await upstream.waitFor((u) => u.open === 1, 5000, 'the upstream stream');
      const seen = upstream.requests.at(-1);
      expect(seen?.headers['last-event-id']).toBe('0');
      expect(seen?.headers.authorization).toBe('Bearer service-token');
      expect(seen?.headers.cookie).toBeUndefined();
      upstream.send({ id: '2', event: 'log', data: 'two\nlines' });
      expect(await stream.take(1)).toEqual([{ id: '2', event: 'log', data: 'two\nlines' }]);
      stream.close();
      await upstream.waitFor((u) => u.open === 0, 1000, 'the upstream stream to close');
    } finally {
      await bff.close();
      await upstream.stop();
    }
  });
});
