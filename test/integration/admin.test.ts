import express from 'express';
import request from 'supertest';
import { closeAll, startGateway } from '../helpers/gateway';
import { dataEvents } from '../helpers/sse-client';

afterEach(closeAll);

const admin = { authorize: (req: express.Request) => req.get('x-admin') === 'yes', maxBodyBytes: 1024 };

describe('admin routes below the stream path', () => {
  it('are absent unless `admin` is configured', async () => {
    const { url } = await startGateway({ channels: ['logs'] });
    await request(url).get('/events/stats').expect(404);
    await request(url).post('/events/publish').send({ channel: 'logs:a' }).expect(404);
  });

  it('POST {path}/publish publishes for authorised callers and answers 201 with the id', async () => {
    const { url, open } = await startGateway({ channels: ['logs'], admin });
    const stream = await open('channels=logs:a');
    const res = await request(url)
      .post('/events/publish')
      .set('x-admin', 'yes')
      .send({ channel: 'logs:a', data: { line: 'from http' } })
      .expect(201);
    const [event] = dataEvents(await stream.take(1));
    expect(event).toMatchObject({ id: res.body.id, channel: 'logs:a', data: { line: 'from http' } });
  });

  it('a retried POST with the same Idempotency-Key (header or body) is published once', async () => {
    const { url, open, gateway } = await startGateway({ channels: ['logs'], admin });
    const stream = await open('channels=logs:a');
    const post = () =>
      request(url)
        .post('/events/publish')
        .set('x-admin', 'yes')
        .set('Idempotency-Key', 'deploy-42')
        .send({ channel: 'logs:a', data: 'deployed' })
        .expect(201);
    const first = await post();
    const again = await post();
    const inBody = await request(url)
      .post('/events/publish')
      .set('x-admin', 'yes')
      .send({ channel: 'logs:a', data: 'deployed', idempotencyKey: 'deploy-42' })
      .expect(201);
    expect([again.body.id, inBody.body.id]).toEqual([first.body.id, first.body.id]);
    await gateway.publish('logs:a', 'next');
    expect(dataEvents(await stream.take(2)).map((e) => e.data)).toEqual(['deployed', 'next']);
    const bad = await request(url)
      .post('/events/publish')
      .set('x-admin', 'yes')
      .send({ channel: 'logs:a', data: 1, idempotencyKey: 7 })
      .expect(400);
    expect(bad.body.error.code).toBe('ERR_SSE_INVALID_DATA');
  });

  it('works behind express.json() too', async () => {
    const { url, open } = await startGateway(
      { channels: ['logs'], admin },
      { before: (app) => app.use(express.json()) },
    );
    const stream = await open('channels=logs:a');
    await request(url).post('/events/publish').set('x-admin', 'yes').send({ channel: 'logs:a', data: 1 }).expect(201);
    expect(dataEvents(await stream.take(1))[0]?.data).toBe(1);
  });

  it('answers 403, 413, 415 and 400 with JSON errors and publishes nothing', async () => {
    const { url, gateway } = await startGateway({ channels: ['logs'], admin });
    const before = gateway.stats().events;
    await request(url).post('/events/publish').send({ channel: 'logs:a' }).expect(403);
    const big = await request(url)
      .post('/events/publish')
      .set('x-admin', 'yes')
      .send({ channel: 'logs:a', data: 'x'.repeat(5000) })
      .expect(413);
    expect(big.body.error.code).toBe('ERR_SSE_PAYLOAD_TOO_LARGE');
    await request(url).post('/events/publish').set('x-admin', 'yes').type('text').send('hello').expect(415);
    await request(url).post('/events/publish').set('x-admin', 'yes').type('json').send('{"channel":').expect(400);
    const unknown = await request(url)
      .post('/events/publish')
      .set('x-admin', 'yes')
      .send({ channel: 'secrets:a' })
      .expect(400);
    expect(unknown.body.error.code).toBe('ERR_SSE_INVALID_CHANNEL');
    await request(url).post('/events/publish').set('x-admin', 'yes').send({ channel: 'logs:a\nx' }).expect(400);
    expect(gateway.stats().events).toBe(before);
  });

  it('GET {path}/stats reports the gateway figures', async () => {
    const { url, open } = await startGateway({ channels: ['logs'], admin });
    await open('channels=logs:a,logs:b');
    await request(url).get('/events/stats').expect(403);
    const res = await request(url).get('/events/stats').set('x-admin', 'yes').expect(200);
    expect(res.body).toMatchObject({
      connections: 1,
      subscriptions: 2,
      channels: 2,
      bus: { kind: 'memory', connected: true },
    });
  });
});
