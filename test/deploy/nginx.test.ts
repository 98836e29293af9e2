import { connect } from 'node:http2';
import { closeAll, eventually, onCleanup, recordingLogger, startGateway } from '../helpers/gateway';
import { type NginxServer, startNginx } from '../helpers/nginx';
import { openStream } from '../helpers/sse-client';

// The shipped examples/deploy/nginx.conf in front of a real gateway, with Debian's nginx.
afterEach(closeAll);

async function behindNginx(options: { heartbeatMs?: number; streamReadTimeout?: string } = {}) {
  const harness = await startGateway({
    channels: ['logs'],
    admin: { authorize: () => true },
    heartbeatMs: options.heartbeatMs,
    logger: recordingLogger(), // sub-second heartbeats are warned about, on purpose here
  });
  const nginx: NginxServer = await startNginx({
    upstreams: [Number(new URL(harness.url).port)],
    streamReadTimeout: options.streamReadTimeout,
  });
  onCleanup(() => nginx.stop());
  const open = async (query: string) => {
    const stream = await openStream(`${nginx.url}/events?${query}`);
    onCleanup(() => stream.close());
    return stream;
  };
  return { ...harness, nginx, open };
}

it('events arrive through nginx within 200 ms of publish, one by one (nothing buffered)', async () => {
  const { gateway, open, nginx } = await behindNginx();
  const stream = await open('channels=logs:a');
  expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8');
  const delays: number[] = [];
  for (let i = 0; i < 20; i++) {
    const started = performance.now();
    await gateway.publish('logs:a', { i });
    const event = await stream.waitFor((e) => e.event === 'logs');
    delays.push(performance.now() - started);
    expect(JSON.parse(event.data)).toEqual({ channel: 'logs:a', data: { i } });
  }
  expect(Math.max(...delays)).toBeLessThan(200);
  expect(nginx.errorLog()).not.toMatch(/\[(error|crit|alert|emerg)\]/);
});

it('the publish, subscription-change and health routes work through nginx', async () => {
  const { open, nginx } = await behindNginx();
  const stream = await open('channels=logs:a');
  const ready = JSON.parse(stream.events[0]?.data ?? '{}') as { connectionId: string; subscriptionToken: string };

  const change = await fetch(`${nginx.url}/events/subscriptions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...ready, requestId: 'r1', add: ['logs:b'] }),
  });
  expect(change.status).toBe(200);
  await stream.waitFor((e) => e.event === 'sse:subscribed');

  const published = await fetch(`${nginx.url}/events/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ channel: 'logs:b', data: 'via nginx' }),
  });
  expect(published.status).toBeLessThan(300);
  const event = await stream.waitFor((e) => e.event === 'logs');
  expect(JSON.parse(event.data)).toEqual({ channel: 'logs:b', data: 'via nginx' });

  const live = await fetch(`${nginx.url}/events/health/live`);
  const readiness = await fetch(`${nginx.url}/events/health/ready`);
  expect([live.status, readiness.status]).toEqual([200, 200]);
  expect(await readiness.json()).toEqual({ status: 'ready' });
});

it('the HTTP/2 server carries several streams on one TLS connection', async () => {
  const { gateway, nginx } = await behindNginx();
  const session = connect(nginx.h2Url, { rejectUnauthorized: false });
  onCleanup(() => session.destroy()); // close() would wait for nginx to end the streams
  // Ten streams on one connection: more than the six an HTTP/1.1 browser allows per host.
  const streams = Array.from({ length: 10 }, () => {
    const req = session.request({ ':path': '/events?channels=logs:a', accept: 'text/event-stream' });
    let text = '';
    const ready = new Promise<void>((resolve) =>
      req.on('data', (chunk) => {
        text += chunk;
        if (text.includes('sse:ready')) resolve();
      }),
    );
    return { req, ready, text: () => text };
  });
  await Promise.all(streams.map((stream) => stream.ready));
  await gateway.publish('logs:a', 'over h2');
  await eventually(
    () => streams.every((stream) => stream.text().includes('"over h2"')),
    2_000,
    'the event on every stream',
  );
  expect(gateway.stats().connections).toBe(10);
  for (const stream of streams) stream.req.close();
});

it('negative control: a read timeout below the heartbeat lets nginx cut the stream', async () => {
  const { open } = await behindNginx({ heartbeatMs: 25_000, streamReadTimeout: '1s' });
  const stream = await open('channels=logs:a');
  const started = Date.now();
  await stream.ended;
  expect(Date.now() - started).toBeLessThan(5_000);
});

it('a heartbeat below the read timeout keeps a silent stream open (scaled: 300 ms against 1 s over 3 s)', async () => {
  const { gateway, open } = await behindNginx({ heartbeatMs: 300, streamReadTimeout: '1s' });
  const stream = await open('channels=logs:a');
  await stream.until((s) => s.comments.length >= 10, 5_000);
  expect(stream.isEnded).toBe(false);
  await gateway.publish('logs:a', 'still here');
  await stream.waitFor((e) => e.event === 'logs');
});
