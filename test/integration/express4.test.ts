import compression from 'compression';
// The same gateway mounted on Express 4 (installed as the `express4` alias).
import express4 from 'express4';
import request from 'supertest';
import { closeAll, startGateway } from '../helpers/gateway';
import { dataEvents } from '../helpers/sse-client';

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
});
