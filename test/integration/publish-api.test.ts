/**
 * `POST {path}/publish` for services, on real Express apps with real SSE clients: tokens, rotation,
 * patterns, batches, idempotency, every answer code, and the body checks with body parsers mounted first.
 */
import express from 'express';
import express4 from 'express4';
import request from 'supertest';
import type { SseOptions } from '../../src/types';
import { closeAll, eventually, recordingLogger, startGateway } from '../helpers/gateway';
import { startRedisInstance } from '../helpers/redis-bus';
import { redisServerForSuite } from '../helpers/redis-server';
import { dataEvents } from '../helpers/sse-client';

afterEach(closeAll);

const ETL = 'etl-token-0123456789abcdef';
const ETL_NEXT = 'etl-token-rotated-9876543210';
const ALERTS = 'alerts-token-0123456789abcdef';

function options(extra: Partial<SseOptions> = {}): SseOptions {
  return {
    channels: ['logs', 'metrics', 'alerts'],
    publishers: {
      etl: { token: [ETL, ETL_NEXT], channels: ['logs:*', 'metrics:*'] },
      alerter: { token: ALERTS, channels: ['alerts:*'], maxBodyBytes: 1024 },
    },
    ...extra,
  };
}

const post = (url: string, token: string | undefined, body: unknown) => {
  const req = request(url).post('/events/publish');
  if (token !== undefined) req.set('Authorization', `Bearer ${token}`);
  return req.send(body as object);
};

describe('POST {path}/publish with publisher tokens', () => {
  it('publishes with either token of a rotation and answers 201 { id, channel, time }', async () => {
    const { url, open } = await startGateway(options());
    const stream = await open('channels=logs:*');
    const first = await post(url, ETL, { channel: 'logs:ws1:wf1', data: { line: 'a' } }).expect(201);
    const second = await post(url, ETL_NEXT, { channel: 'logs:ws1:wf1', data: { line: 'b' } }).expect(201);
    expect(first.body).toEqual({ id: expect.any(String), channel: 'logs:ws1:wf1', time: expect.any(Number) });
    expect(first.headers['cache-control']).toBe('no-store');
    const events = dataEvents(await stream.take(2));
    expect(events).toEqual([
      { id: first.body.id, event: 'logs', channel: 'logs:ws1:wf1', data: { line: 'a' } },
      { id: second.body.id, event: 'logs', channel: 'logs:ws1:wf1', data: { line: 'b' } },
    ]);
  });

  it('answers 401 with WWW-Authenticate for no token, an unknown token, a cookie or Basic auth', async () => {
    const { url, gateway } = await startGateway(options());
    const none = await post(url, undefined, { channel: 'logs:a' }).expect(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="sse-gateway"');
    expect(none.body.error.code).toBe('ERR_SSE_UNAUTHENTICATED');
    const wrong = await post(url, `${ETL}x`, { channel: 'logs:a' }).expect(401);
    expect(wrong.headers['www-authenticate']).toContain('error="invalid_token"');
    await request(url).post('/events/publish').set('Cookie', `token=${ETL}`).send({ channel: 'logs:a' }).expect(401);
    await request(url).post('/events/publish').auth('etl', ETL).send({ channel: 'logs:a' }).expect(401);
    await request(url).post('/events/publish').set('Authorization', ETL).send({ channel: 'logs:a' }).expect(401);
    expect(gateway.stats().events).toBe(0);
  });

  it('403 names the channels outside the publisher patterns, and a batch with one of them publishes nothing', async () => {
    const { url, gateway } = await startGateway(options());
    const single = await post(url, ETL, { channel: 'alerts:u1', data: 1 }).expect(403);
    expect(single.body.error).toMatchObject({ code: 'ERR_SSE_FORBIDDEN_CHANNEL', channels: ['alerts:u1'] });
    // `logs:*` matches below `logs`, not the bare namespace.
    await post(url, ETL, { channel: 'logs', data: 1 }).expect(403);
    const batch = await post(url, ETL, {
      events: [
        { channel: 'logs:a', data: 1 },
        { channel: 'metrics:a', data: 2 },
        { channel: 'alerts:u1', data: 3 },
      ],
    }).expect(403);
    expect(batch.body.error.channels).toEqual(['alerts:u1']);
    await post(url, ALERTS, { channel: 'logs:a', data: 1 }).expect(403);
    expect(gateway.stats().events).toBe(0);
    await post(url, ALERTS, { channel: 'alerts:u1', data: 1 }).expect(201);
    expect(gateway.stats().events).toBe(1);
  });

  it('a batch is published in order and answered in order; one invalid event rejects it whole', async () => {
    const { url, open, gateway } = await startGateway(options());
    const stream = await open('channels=logs:*,metrics:*');
    const events = Array.from({ length: 100 }, (_, i) => ({ channel: i % 2 ? 'metrics:m' : 'logs:l', data: i }));
    const res = await post(url, ETL, { events }).expect(201);
    expect(res.body.events.map((e: { channel: string }) => e.channel)).toEqual(events.map((e) => e.channel));
    const received = dataEvents(await stream.take(100));
    expect(received.map((e) => e.data)).toEqual(events.map((e) => e.data));
    expect(received.map((e) => e.id)).toEqual(res.body.events.map((e: { id: string }) => e.id));

    const before = gateway.stats().events;
    const invalid = [
      {
        events: [
          { channel: 'logs:a', data: 1 },
          { channel: 'logs:a\nb', data: 2 },
        ],
      },
      {
        events: [
          { channel: 'logs:a', data: 1 },
          { channel: 'logs:a', users: 'u1' },
        ],
      },
      {
        events: [
          { channel: 'logs:a', data: 1 },
          { channel: 'logs:a', idempotencyKey: '' },
        ],
      },
      {
        events: [
          { channel: 'logs:a', data: 1 },
          { channel: 'logs:a', dta: 2 },
        ],
      },
      {
        events: [
          { channel: 'logs:a', idempotencyKey: 'k' },
          { channel: 'logs:a', idempotencyKey: 'k' },
        ],
      },
      { events: [{ channel: 'logs:a', data: 1 }, { channel: 'secrets:a' }] },
      { events: [] },
      { events: Array.from({ length: 101 }, () => ({ channel: 'logs:a' })) },
      { events: [{ channel: 'logs:a' }], channel: 'logs:b' },
      [{ channel: 'logs:a' }],
    ];
    for (const body of invalid) {
      const answer = await post(url, ETL, body);
      expect([answer.status, JSON.stringify(body).slice(0, 60)]).toEqual([400, JSON.stringify(body).slice(0, 60)]);
      expect(answer.body.error.code).toMatch(/^ERR_SSE_(BAD_REQUEST|INVALID_CHANNEL|INVALID_DATA)$/);
    }
    expect(gateway.stats().events).toBe(before);
  });

  it('idempotency: the header, a body key, and a retried batch each publish once with the same ids', async () => {
    const { url, open, gateway } = await startGateway(options());
    const stream = await open('channels=logs:*');
    const withHeader = () =>
      request(url)
        .post('/events/publish')
        .set('Authorization', `Bearer ${ETL}`)
        .set('Idempotency-Key', 'job-7:step-1')
        .send({ channel: 'logs:a', data: 'once' })
        .expect(201);
    const a = await withHeader();
    const b = await withHeader();
    expect(b.body).toEqual(a.body);
    const inBody = { channel: 'logs:a', data: 'body-key', idempotencyKey: 'job-7:step-2' };
    const c = await post(url, ETL, inBody).expect(201);
    expect((await post(url, ETL, inBody).expect(201)).body).toEqual(c.body);
    const batch = () =>
      request(url)
        .post('/events/publish')
        .set('Authorization', `Bearer ${ETL}`)
        .set('Idempotency-Key', 'batch-9')
        .send({
          events: [
            { channel: 'logs:a', data: 'b0' },
            { channel: 'logs:a', data: 'b1' },
          ],
        })
        .expect(201);
    const d = await batch();
    expect((await batch()).body).toEqual(d.body);
    await gateway.publish('logs:a', 'end');
    expect(dataEvents(await stream.take(5)).map((e) => e.data)).toEqual(['once', 'body-key', 'b0', 'b1', 'end']);
  });

  it('415 for anything but JSON, 413 past the cap, 400 for malformed JSON', async () => {
    const { url, gateway } = await startGateway(options());
    const auth = { Authorization: `Bearer ${ALERTS}` };
    const form = await request(url).post('/events/publish').set(auth).type('form').send('channel=alerts:u1&data=x');
    expect([form.status, form.body.error.code]).toEqual([415, 'ERR_SSE_BAD_REQUEST']);
    await request(url).post('/events/publish').set(auth).type('text').send('{"channel":"alerts:u1"}').expect(415);
    await request(url)
      .post('/events/publish')
      .set(auth)
      .set('Content-Type', 'application/json; charset=latin1')
      .send('{"channel":"alerts:u1"}')
      .expect(415);
    await request(url)
      .post('/events/publish')
      .set(auth)
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      .send('{"channel":"alerts:u1"}')
      .expect(415);
    const big = await post(url, ALERTS, { channel: 'alerts:u1', data: 'x'.repeat(2000) }).expect(413);
    expect(big.body.error).toMatchObject({ code: 'ERR_SSE_PAYLOAD_TOO_LARGE', limit: 1024 });
    await request(url).post('/events/publish').set(auth).type('json').send('{"channel":').expect(400);
    expect(gateway.stats().events).toBe(0);
  });

  it('413 on a chunked body without Content-Length, counted on the stream itself', async () => {
    const { server, gateway } = await startGateway(options());
    const { request: httpRequest } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${server.url}/events/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ALERTS}`, 'content-type': 'application/json' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write(`{"channel":"alerts:u1","data":"${'y'.repeat(4000)}`);
      req.end('"}');
    });
    expect(status).toBe(413);
    expect(gateway.stats().events).toBe(0);
  });

  it('503 ERR_SSE_BUS_UNAVAILABLE when the bus rejects, logged without the token', async () => {
    const logger = recordingLogger();
    const { url, gateway } = await startGateway(options({ logger }));
    await gateway.bus.close();
    const res = await post(url, ETL, { channel: 'logs:a', data: 1 }).expect(503);
    expect(res.body.error).toMatchObject({ code: 'ERR_SSE_BUS_UNAVAILABLE', published: 0 });
    expect(res.headers['retry-after']).toBeDefined();
    expect(logger.error).toHaveBeenCalledWith(
      'sse-gateway: publish over HTTP by publisher etl failed',
      expect.anything(),
    );
  });

  it('publishes on this gateway, not on the most recently created one', async () => {
    const first = await startGateway(options());
    const second = await startGateway(options());
    const stream = await first.open('channels=logs:a');
    await post(first.url, ETL, { channel: 'logs:a', data: 'mine' }).expect(201);
    expect(dataEvents(await stream.take(1))[0]?.data).toBe('mine');
    expect(second.gateway.stats().events).toBe(0);
  });

  it('with `admin` too: a publisher token is scoped, otherwise admin.authorize decides, else 401', async () => {
    const admin = { authorize: (req: express.Request) => req.get('x-admin') === 'yes', maxBodyBytes: 4096 };
    const { url, gateway } = await startGateway(options({ admin }));
    await post(url, ETL, { channel: 'alerts:u1' }).expect(403);
    await request(url).post('/events/publish').set('x-admin', 'yes').send({ channel: 'alerts:u1' }).expect(201);
    await request(url).post('/events/publish').send({ channel: 'alerts:u1' }).expect(401);
    await request(url).get('/events/stats').set('x-admin', 'yes').expect(200);
    const form = await request(url)
      .post('/events/publish')
      .set('x-admin', 'yes')
      .type('form')
      .send('channel=alerts:u1');
    expect(form.status).toBe(415);
    expect(gateway.stats().events).toBe(1);
  });
});

describe('body parsers mounted before the gateway', () => {
  const parsers: [string, (app: express.Express) => void][] = [
    [
      'express.json() and express.urlencoded()',
      (app) => app.use(express.json({ limit: '10mb' }), express.urlencoded({ extended: false, limit: '10mb' })),
    ],
    ["express.json({ type: '*/*' })", (app) => app.use(express.json({ type: '*/*', limit: '10mb' }))],
    ['express.text()', (app) => app.use(express.text({ type: '*/*', limit: '10mb' }))],
  ];

  it.each(parsers)(
    '%s: a form POST cannot publish, an oversized body is refused, JSON still works',
    async (_, before) => {
      const admin = { authorize: (req: express.Request) => req.get('cookie') === 'session=admin', maxBodyBytes: 1024 };
      for (const config of [options(), { channels: ['logs', 'alerts'], admin }] as SseOptions[]) {
        const { url, open, gateway } = await startGateway(config, { before });
        const auth = config.admin ? { Cookie: 'session=admin' } : { Authorization: `Bearer ${ALERTS}` };
        const stream = await open('channels=alerts:*');
        // What a cross-site <form method=post> can send: urlencoded or text/plain, with the browser's cookies.
        // express.json({ type: '*/*' }) refuses the form itself (400); otherwise the gateway does (415).
        const form = await request(url).post('/events/publish').set(auth).type('form').send('channel=alerts:u1&data=x');
        expect([400, 415]).toContain(form.status);
        await request(url).post('/events/publish').set(auth).type('text').send('{"channel":"alerts:u1"}').expect(415);
        const big = { channel: 'alerts:u1', data: 'x'.repeat(3_000_000) };
        const refused = await request(url).post('/events/publish').set(auth).send(big).expect(413);
        expect(refused.body.error.code).toBe('ERR_SSE_PAYLOAD_TOO_LARGE');
        await request(url).post('/events/publish').set(auth).send({ channel: 'alerts:u1', data: 'ok' }).expect(201);
        expect(dataEvents(await stream.take(1)).map((e) => e.data)).toEqual(['ok']);
        expect(gateway.stats().events).toBe(1);
      }
    },
  );
});

describe('Express 4 with its body parsers mounted first', () => {
  it('refuses a form and an oversized body, and publishes JSON', async () => {
    const e4 = express4 as unknown as typeof express;
    const { url, gateway } = await startGateway(options(), {
      express: e4,
      before: (app) => app.use(e4.json({ limit: '10mb' }), e4.urlencoded({ extended: false, limit: '10mb' })),
    });
    const auth = { Authorization: `Bearer ${ALERTS}` };
    await request(url).post('/events/publish').set(auth).type('form').send('channel=alerts:u1&data=x').expect(415);
    await request(url)
      .post('/events/publish')
      .set(auth)
      .send({ channel: 'alerts:u1', data: 'x'.repeat(3_000_000) })
      .expect(413);
    await request(url).post('/events/publish').set(auth).send({ channel: 'alerts:u1', data: 'ok' }).expect(201);
    expect(gateway.stats().events).toBe(1);
  });
});

describe('logs never carry a token', () => {
  it('not on 401, 403, 400, 503, nor in option errors', async () => {
    const logger = recordingLogger();
    const { url, gateway } = await startGateway(options({ logger }));
    await post(url, `${ETL}-guess`, { channel: 'logs:a' }).expect(401);
    await post(url, ETL, { channel: 'alerts:a' }).expect(403);
    await post(url, ETL, { channel: 'logs:a', users: 1 }).expect(400);
    await gateway.bus.close();
    await post(url, ETL, { channel: 'logs:a' }).expect(503);
    expect(logger.error).toHaveBeenCalled();
    const logged = JSON.stringify([logger.warn.mock.calls, logger.error.mock.calls], (_, v) =>
      v instanceof Error ? `${v.message}\n${v.stack}` : v,
    );
    for (const token of [ETL, ETL_NEXT, ALERTS]) expect(logged).not.toContain(token);
  });
});

describe('on Redis', () => {
  const redis = redisServerForSuite();

  it('an idempotency key publishes once across two instances, and a stopped Redis answers 503', async () => {
    const [a, b] = await Promise.all(
      [1, 2].map(() => startRedisInstance({ url: redis.url }, options({ logger: recordingLogger() }))),
    );
    if (a === undefined || b === undefined) throw new Error('two gateways expected');
    const stream = await b.open('channels=logs:*');
    const body = { channel: 'logs:ws1', data: 'once', idempotencyKey: 'etl:run-1:line-1' };
    const first = await post(a.url, ETL, body).expect(201);
    const again = await post(b.url, ETL_NEXT, body).expect(201);
    expect(again.body.id).toBe(first.body.id);
    await b.gateway.publish('logs:ws1', 'next');
    expect(dataEvents(await stream.take(2)).map((e) => e.data)).toEqual(['once', 'next']);

    await redis.stop();
    await eventually(() => !a.bus.status().connected, 5000, 'bus a disconnected');
    const down = await post(a.url, ETL, { channel: 'logs:ws1', data: 'lost' }).expect(503);
    expect(down.body.error.code).toBe('ERR_SSE_BUS_UNAVAILABLE');
  });
});
