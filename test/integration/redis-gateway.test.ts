/**
 * Two gateways, each on its own Redis bus, as two instances of a BFF behind a load balancer.
 */
import type { SseOptions } from '../../src/types';
import { settled } from '../helpers/bus';
import { byHeader, closeAll } from '../helpers/gateway';
import { type RedisInstance, startRedisInstance } from '../helpers/redis-bus';
import { redisServerForSuite } from '../helpers/redis-server';
import { dataEvents, type SseStream } from '../helpers/sse-client';

const server = redisServerForSuite();
let prefixes = 0;
afterEach(closeAll);

/** Two instances sharing one Redis history (same prefix), each with its own bus and gateway. */
async function twoInstances(options: Omit<SseOptions, 'bus'>): Promise<[RedisInstance, RedisInstance]> {
  const bus = { url: server.url, prefix: `gw${++prefixes}` };
  return [await startRedisInstance(bus, options), await startRedisInstance(bus, options)];
}

function resetReason(stream: SseStream): string | undefined {
  const reset = stream.events.find((e) => e.event === 'sse:reset');
  return reset ? (JSON.parse(reset.data) as { reason: string }).reason : undefined;
}

test('an event published on instance A reaches a stream on instance B, in order per channel', async () => {
  const [a, b] = await twoInstances({ channels: ['logs', 'metrics'] });
  // sse:ready waits for the instance's SUBSCRIBE, so what A publishes right after it reaches B.
  const stream = await b.open('channels=logs:ws1:*,metrics:cpu');
  const published = [];
  for (let i = 0; i < 30; i++)
    published.push(await a.gateway.publish(i % 3 ? `logs:ws1:wf${i % 2}` : 'metrics:cpu', { i }));
  await a.gateway.publish('logs:ws2:wf1', 'not subscribed');
  const last = await b.gateway.publish('metrics:cpu', 'from b');
  const events = dataEvents(await stream.take(31));
  expect(events.map((e) => e.id)).toEqual([...published, last].map((e) => e.id));
  expect(events[0]).toMatchObject({ event: 'metrics', channel: 'metrics:cpu', data: { i: 0 } });
  expect(b.gateway.stats().bus).toMatchObject({ kind: 'redis', connected: true, head: last.id });
});

test('the ACL runs on the receiving instance: filter and user scoping', async () => {
  const [a, b] = await twoInstances({
    channels: ['alerts'],
    authentication: byHeader,
    userScoping: true,
    filter: (principal, event) => !(event.data as { admin?: boolean }).admin || principal.id === 'root',
  });
  const u1 = await b.open('channels=alerts:*', { headers: { 'x-user': 'u1' } });
  const root = await b.open('channels=alerts:*', { headers: { 'x-user': 'root' } });
  await settled(b.bus);
  await a.gateway.publish('alerts:sys', { n: 1 });
  await a.gateway.publish('alerts:sys', { n: 2, admin: true });
  await a.gateway.publish('alerts:sys', { n: 3 }, { users: ['root'] });
  await a.gateway.publish('alerts:sys', { n: 4 }, { users: ['u1'] });
  expect(dataEvents(await root.take(3)).map((e) => (e.data as { n: number }).n)).toEqual([1, 2, 3]);
  expect(dataEvents(await u1.take(2)).map((e) => (e.data as { n: number }).n)).toEqual([1, 4]);
  const end = await a.gateway.publish('alerts:sys', { n: 5 });
  await u1.waitFor((e) => e.id === end.id);
  expect(dataEvents(u1.events).map((e) => (e.data as { n: number }).n)).toEqual([1, 4, 5]);
});

test('reconnecting to the other instance with Last-Event-ID: every missed event once, in order, then live', async () => {
  const [a, b] = await twoInstances({ channels: ['logs'] });
  const first = await a.open('channels=logs:job1');
  await settled(a.bus);
  const seen = await a.gateway.publish('logs:job1', 0);
  await first.waitFor((e) => e.id === seen.id);
  first.close();

  const missed = [];
  for (let i = 1; i <= 20; i++) missed.push(await a.gateway.publish(i % 4 ? 'logs:job1' : 'logs:job2', i));
  // Publishing keeps going while the client reconnects to B: each event must arrive exactly once.
  let publishing = true;
  const racing = (async () => {
    const out = [];
    for (let i = 21; publishing || i <= 40; i++) {
      out.push(await a.gateway.publish('logs:job1', i));
      if (i >= 200) break;
    }
    return out;
  })();
  const again = await b.open('channels=logs:job1', { headers: { 'Last-Event-ID': seen.id } });
  publishing = false;
  const raced = await racing;
  const expected = [...missed, ...raced].filter((e) => e.channel === 'logs:job1');
  const last = expected[expected.length - 1];
  await again.waitFor((e) => e.id === last?.id, 10_000);
  expect(resetReason(again)).toBeUndefined();
  expect(dataEvents(again.events).map((e) => e.id)).toEqual(expected.map((e) => e.id));
});

test('history trimmed past the client id: sse:reset first, then live events only', async () => {
  const [a, b] = await twoInstances({ channels: ['logs'] });
  const published = [];
  for (let i = 0; i < 6; i++) published.push(await a.gateway.publish('logs:t', i));
  await server.cli('XTRIM', `{gw${prefixes}}:history`, 'MAXLEN', '2');
  const stream = await b.open('channels=logs:t', { headers: { 'Last-Event-ID': published[1]?.id as string } });
  await stream.waitFor((e) => e.event === 'sse:reset');
  expect(resetReason(stream)).toBe('expired');
  await settled(b.bus);
  const live = await a.gateway.publish('logs:t', 'live');
  const next = await stream.waitFor((e) => e.event !== undefined && !e.event.startsWith('sse:'));
  expect(next.id).toBe(live.id);
});

test('an id from before a Redis data loss (another epoch) gets sse:reset unknown-id', async () => {
  const [a, b] = await twoInstances({ channels: ['logs'] });
  const old = await a.gateway.publish('logs:e', 1);
  await server.cli('DEL', `{gw${prefixes}}:seq`);
  const fresh = await a.gateway.publish('logs:e', 2);
  expect(fresh.id.split('-')[0]).not.toBe(old.id.split('-')[0]);
  const stream = await b.open('channels=logs:e', { headers: { 'Last-Event-ID': old.id } });
  await stream.waitFor((e) => e.event === 'sse:reset');
  expect(resetReason(stream)).toBe('unknown-id');
});

test('disconnectEverywhere on instance A ends the user’s streams on both instances, and only theirs', async () => {
  const [a, b] = await twoInstances({ channels: ['logs'], authentication: byHeader });
  const onA = await a.open('channels=logs:x', { headers: { 'x-user': 'u1' } });
  const onB = await b.open('channels=logs:x', { headers: { 'x-user': 'u1' } });
  const other = await b.open('channels=logs:x', { headers: { 'x-user': 'u2' } });
  await a.gateway.disconnectEverywhere('u1');
  await Promise.all([onA.ended, onB.ended]);
  expect([a.gateway.stats().connections, b.gateway.stats().connections]).toEqual([0, 1]);
  const event = await a.gateway.publish('logs:x', 'still here');
  expect(dataEvents(await other.take(1)).map((e) => e.id)).toEqual([event.id]);
});
