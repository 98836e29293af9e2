import { EventSource } from 'eventsource';
import { createRedisBus } from '../../src/bus/redis';
import { settled } from '../helpers/bus';
import { closeAll, eventually, onCleanup, startGateway } from '../helpers/gateway';
import { startNginx } from '../helpers/nginx';
import { startRedisServer } from '../helpers/redis-server';

// A rolling update behind the shipped nginx.conf: two gateways on one Redis in one nginx upstream. nginx OSS
// has no active health checks, so it keeps sending requests to the draining instance; that instance sends each
// EventSource away (200 + retry:), the browser comes back with its Last-Event-ID, and round robin gives the
// next request to the other instance, which replays the gap from Redis.
afterEach(closeAll);
jest.setTimeout(60_000);

it('drain through nginx moves every EventSource to the other instance with nothing lost or repeated', async () => {
  const redis = await startRedisServer();
  onCleanup(() => redis.stop());
  const instance = async () => {
    const bus = createRedisBus({ url: redis.url, prefix: 'deploy', logger: { warn: jest.fn(), error: jest.fn() } });
    onCleanup(() => bus.close());
    const harness = await startGateway({ channels: ['logs'], bus, retryMs: 200 });
    await settled(bus);
    return harness;
  };
  const a = await instance();
  const b = await instance();
  const nginx = await startNginx({ upstreams: [a, b].map((h) => Number(new URL(h.url).port)) });
  onCleanup(() => nginx.stop());

  const clients = Array.from({ length: 10 }, () => {
    const received: number[] = [];
    const source = new EventSource(`${nginx.url}/events?channels=logs:a`);
    source.addEventListener('logs', (e) => received.push((JSON.parse(e.data) as { data: number }).data));
    onCleanup(() => source.close());
    return { source, received };
  });
  await eventually(
    () => a.gateway.stats().connections + b.gateway.stats().connections === 10,
    5000,
    'ten streams through nginx',
  );
  // Round robin spreads them; the drained instance must have had some for the test to mean anything.
  expect(a.gateway.stats().connections).toBeGreaterThan(0);

  let n = 0;
  const publishing = (async () => {
    for (; n < 200; n++) {
      await b.gateway.publish('logs:a', n);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  await eventually(() => n > 20, 5000, 'publishing to start');
  const readyDuringDrain = fetch(`${a.url}/events/health/ready`);
  await a.gateway.drain({ timeoutMs: 500 });
  expect((await readyDuringDrain).status).toBe(503);
  await publishing;
  await eventually(() => b.gateway.stats().connections === 10, 10_000, 'ten streams on B');
  const expected = Array.from({ length: 200 }, (_, i) => i);
  await eventually(() => clients.every((c) => c.received.length >= 200), 10_000, 'every event at every client');
  for (const client of clients) expect(client.received).toEqual(expected);
  expect(a.gateway.stats().connections).toBe(0);
  expect(nginx.errorLog()).not.toMatch(/\[(crit|alert|emerg)\]/);
});
