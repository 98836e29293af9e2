/**
 * The Redis bus across instances and through failures, against a real redis-server.
 */
import { createRedisBus } from '../../src/bus/redis';
import type { Bus, SseEvent } from '../../src/types';
import { collect, settled, until, watchAndCollect } from '../helpers/bus';
import { closeAll, recordingLogger } from '../helpers/gateway';
import { redisBus } from '../helpers/redis-bus';
import { redisServerForSuite, startRedisServer } from '../helpers/redis-server';
import { startTcpProxy } from '../helpers/tcp-proxy';

const server = redisServerForSuite();
let prefixes = 0;
afterEach(closeAll);

/** Classic or sharded pub/sub: every test below runs in both modes. */
let sharded = false;

/** Buses of one test share a prefix, as instances of one deployment do. */
function instances(
  count: number,
  options: { history?: { size: number }; watchdogMs?: number; publishTimeoutMs?: number } = {},
): Bus[] {
  const prefix = `it${++prefixes}`;
  return Array.from({ length: count }, () => redisBus({ url: server.url, prefix, sharded, ...options }));
}

function expectExactlyOnceInOrder(received: readonly SseEvent[], published: readonly SseEvent[]): void {
  expect(received.map((e) => e.id)).toEqual(published.map((e) => e.id));
}

describe.each([
  ['classic pub/sub', false],
  ['sharded pub/sub (SPUBLISH/SSUBSCRIBE)', true],
])('%s', (_mode, shardedMode) => {
  beforeAll(() => {
    sharded = shardedMode;
  });

  test('fans out through its own kind of pub/sub only, patterns included', async () => {
    const [a, b] = instances(2) as [Bus, Bus];
    b.watch('mode:x');
    b.watch('mode:p:*');
    await Promise.all([settled(a), settled(b)]);
    const tag = `{it${prefixes}}`;
    const shardChannels = (await server.cli('PUBSUB', 'SHARDCHANNELS', `${tag}:*`)).split('\n').filter(Boolean);
    const channels = (await server.cli('PUBSUB', 'CHANNELS', `${tag}:*`)).split('\n').filter(Boolean);
    const patterns = Number(await server.cli('PUBSUB', 'NUMPAT'));
    if (sharded) {
      expect(shardChannels).toEqual(expect.arrayContaining([`${tag}:ch:mode:x`, `${tag}:pt:mode:p`]));
      expect(channels).toEqual([]);
      expect(patterns).toBe(0);
    } else {
      // Patterns ride on per-prefix channels in classic mode too: no PSUBSCRIBE (issue 12 item 9).
      expect(channels).toEqual(expect.arrayContaining([`${tag}:ch:mode:x`, `${tag}:pt:mode:p`]));
      expect(shardChannels).toEqual([]);
      expect(patterns).toBe(0);
    }
    const onB = collect(b);
    const published = [await a.publish('mode:x', 1), await a.publish('mode:p:q', 2), await a.publish('mode:p:q:r', 3)];
    await a.publish('mode:other', 4);
    const last = await a.publish('mode:x', 5);
    expectExactlyOnceInOrder(await onB.count(4), [...published, last]);
  });

  test('cross-instance: published on A, received on B, in order per channel, with the same ids', async () => {
    const [a, b] = instances(2) as [Bus, Bus];
    const onB = await watchAndCollect(b, 'orders:*', [a]);
    const published: SseEvent[] = [];
    for (let i = 0; i < 50; i++)
      published.push(await a.publish(`orders:o${i % 4}`, { i }, i === 7 ? { users: ['u7'] } : undefined));
    const received = await onB.count(50);
    expectExactlyOnceInOrder(received, published);
    expect(received[7]).toEqual(published[7]);
    for (const channel of ['orders:o0', 'orders:o1', 'orders:o2', 'orders:o3']) {
      const seqs = received.filter((e) => e.channel === channel).map((e) => (e.data as { i: number }).i);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }
    expect(b.status()).toMatchObject({ kind: 'redis', connected: true, head: published[49]?.id, watched: 1 });
  });

  test('concurrent publishers on two instances share one sequence', async () => {
    const [a, b, c] = instances(3) as [Bus, Bus, Bus];
    const onC = await watchAndCollect(c, 'mix:*', [a, b]);
    const published = await Promise.all(
      Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).publish(`mix:${i % 2 ? 'a' : 'b'}`, i)),
    );
    const received = await onC.count(100);
    const seqs = received.map((e) => Number(e.id.split('-')[1]));
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(received.map((e) => e.id))).toEqual(new Set(published.map((e) => e.id)));
  });

  test('the subscriber link killed (CLIENT KILL TYPE pubsub): recovery from history with no loss', async () => {
    const [a, b] = instances(2) as [Bus, Bus];
    const onB = await watchAndCollect(b, 'k:*', [a]);
    const published: SseEvent[] = [];
    for (let i = 0; i < 20; i++) published.push(await a.publish('k:a', i));
    await onB.count(20);
    expect(Number(await server.cli('CLIENT', 'KILL', 'TYPE', 'pubsub'))).toBeGreaterThanOrEqual(1);
    // Published while B's subscriber is down or still reconnecting: only the history has these.
    for (let i = 20; i < 80; i++) published.push(await a.publish(i % 3 ? 'k:a' : 'k:b', i));
    const received = await onB.count(80, 10_000);
    expectExactlyOnceInOrder(received, published);
    await until(() => b.status().reconnects === 1 && b.status().connected, 5000, 'B to report its reconnect');
    // Live delivery continues after the recovery, without duplicates.
    const after = await a.publish('k:a', 'after');
    await onB.find((e) => e.id === after.id);
    expect(onB.events).toHaveLength(81);
  });

  test('a topic watched while the subscriber is down is subscribed on reconnect', async () => {
    const [a, b] = instances(2) as [Bus, Bus];
    await Promise.all([settled(a), settled(b)]);
    await server.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
    b.watch('late:x');
    await until(() => b.status().reconnects === 1, 5000, 'the reconnect');
    await settled(b);
    const onB = collect(b);
    const event = await a.publish('late:x', 'hello');
    await expect(onB.find((e) => e.id === event.id)).resolves.toMatchObject({ data: 'hello' });
  });

  test('history trimmed past an id: replay answers expired', async () => {
    const [a, b] = instances(2) as [Bus, Bus];
    await Promise.all([settled(a), settled(b)]);
    const published: SseEvent[] = [];
    for (let i = 0; i < 6; i++) published.push(await a.publish('h:a', i));
    const from = published[1]?.id as string;
    const match = { match: () => true, maxCount: 100, maxAgeMs: 60_000 };
    await expect(b.replay(from, match)).resolves.toMatchObject({
      ok: true,
      events: [{ data: 2 }, { data: 3 }, { data: 4 }, { data: 5 }],
    });
    const key = `{it${prefixes}}:history`;
    await server.cli('XTRIM', key, 'MAXLEN', '2');
    await expect(b.replay(from, match)).resolves.toEqual({ ok: false, reason: 'expired' });
    await expect(b.replay(published[3]?.id as string, match)).resolves.toMatchObject({
      ok: true,
      events: [{ data: 4 }, { data: 5 }],
    });
  });

  test('replay from any instance waits for its own live stream, so events up to head are never delivered after it', async () => {
    const [a, b] = instances(2) as [Bus, Bus];
    await Promise.all([settled(a), settled(b)]);
    const first = await a.publish('bar:x', 0);
    b.watch('bar:x');
    // Publishes that race the SUBSCRIBE may only be in the replay; once it is answered they go live too.
    await b.watched?.();
    const onB = collect(b);
    const later = await Promise.all([a.publish('bar:x', 1), a.publish('bar:x', 2)]);
    const result = await b.replay(first.id, { match: () => true, maxCount: 100, maxAgeMs: 60_000 });
    expect(result).toMatchObject({ ok: true, head: later[1]?.id });
    // Everything up to the head has already reached the listener when the replay resolves.
    expect(onB.events.map((e) => e.id)).toEqual(later.map((e) => e.id));
  });

  test('publishes racing a SUBSCRIBE are each in the replay or delivered live before it resolves', async () => {
    const [a, b] = instances(2) as [Bus, Bus];
    await Promise.all([settled(a), settled(b)]);
    const first = await a.publish('race:x', 0);
    b.watch('race:x');
    const onB = collect(b);
    const later = await Promise.all([1, 2, 3, 4].map((i) => a.publish('race:x', i)));
    const result = await b.replay(first.id, { match: () => true, maxCount: 100, maxAgeMs: 60_000 });
    if (!result.ok) throw new Error(`replay failed: ${result.reason}`);
    const seen = new Set([...result.events.map((e) => e.id), ...onB.events.map((e) => e.id)]);
    expect(later.filter((e) => !seen.has(e.id))).toEqual([]);
    expect(result.head).toBe(later.at(-1)?.id);
  });

  test('publish while Redis is down rejects with ERR_SSE_BUS_UNAVAILABLE within a couple of seconds', async () => {
    const own = await startRedisServer();
    try {
      const logger = recordingLogger();
      // Publishes are held up to publishTimeoutMs while Redis is unreachable (issue 12 item 11).
      const bus = redisBus({ url: own.url, logger, publishTimeoutMs: 50 });
      await settled(bus);
      await own.stop();
      const started = Date.now();
      await expect(bus.publish('down:a', 1)).rejects.toMatchObject({ code: 'ERR_SSE_BUS_UNAVAILABLE', status: 503 });
      expect(Date.now() - started).toBeLessThan(2500);
      expect(bus.status().connected).toBe(false);
      await expect(
        bus.replay(`${'a'.repeat(8)}-1`, { match: () => true, maxCount: 10, maxAgeMs: 1000 }),
      ).resolves.toEqual({
        ok: false,
        reason: 'unavailable',
      });
      await until(() => logger.error.mock.calls.length > 0, 5000, 'the outage to be logged');
      // One log line per connection and outage, not one per retry.
      expect(logger.error.mock.calls.length).toBeLessThanOrEqual(2);
    } finally {
      await own.stop();
    }
  });

  test('an existing client: the bus duplicates it for pub/sub and leaves it open on close', async () => {
    const { Redis } = await import('ioredis');
    const client = new Redis(server.url);
    try {
      const prefix = `own${++prefixes}`;
      const a = redisBus({ redis: client, prefix });
      const b = redisBus({ url: server.url, prefix });
      const onA = await watchAndCollect(a, 'ex:*', [b]);
      const event = await b.publish('ex:1', 'from b');
      await expect(onA.find((e) => e.id === event.id)).resolves.toMatchObject({ data: 'from b' });
      await a.close();
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });

  test('the watchdog round trip is reported as lag, and idle instances advance their head', async () => {
    const [a, b] = instances(2, { watchdogMs: 50 }) as [Bus, Bus];
    await Promise.all([settled(a), settled(b)]);
    const event = await a.publish('idle:x', 1); // nobody watches it
    await until(
      () => b.status().head === event.id && typeof b.status().lag === 'number',
      5000,
      'a watchdog round trip',
    );
  });

  test('the watchdog detects a silently dead subscriber link, reconnects it and fetches what was missed', async () => {
    // The proxy stops forwarding B's subscriber link but keeps its sockets open, as a NAT dropping state does.
    const proxy = await startTcpProxy(server.port);
    try {
      const prefix = `wd${++prefixes}`;
      const logger = recordingLogger();
      const a = redisBus({ url: server.url, prefix });
      const b = redisBus({ url: proxy.url, prefix, logger, watchdogMs: 100 });
      const onB = await watchAndCollect(b, 'wd:x', [a]);
      const before = await a.publish('wd:x', 'before');
      await onB.find((e) => e.id === before.id);
      expect(proxy.blackhole('subscriber')).toBe(1);
      const lost = [];
      for (let i = 0; i < 5; i++) lost.push(await a.publish('wd:x', i));
      const received = await onB.count(6, 5000);
      expect(received.map((e) => e.id)).toEqual([before, ...lost].map((e) => e.id));
      expect(logger.warn).toHaveBeenCalledWith(expect.stringContaining('watchdog'));
      await until(() => b.status().reconnects === 1 && b.status().connected, 5000, 'the reconnect');
    } finally {
      await proxy.close();
    }
  });

  test('close() quits every connection and timer it opened', async () => {
    const handles = () =>
      process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap' || kind === 'Timeout').length;
    const clients = async () => (await server.cli('CLIENT', 'LIST')).split('\n').length;
    const [peer] = instances(1);
    await settled(peer as Bus); // earlier tests' connections are gone from the server's view by now
    const before = { handles: handles(), clients: await clients() };
    const [bus] = instances(1, { watchdogMs: 100 }) as [Bus];
    bus.watch('x:y');
    await settled(bus);
    expect(await clients()).toBe(before.clients + 2);
    await bus.close();
    await until(
      () => handles() <= before.handles,
      2000,
      `handles to drop back to ${before.handles}: ${process.getActiveResourcesInfo().join(',')}`,
    );
    expect(await clients()).toBe(before.clients);
    await expect(bus.publish('x:y', 1)).rejects.toMatchObject({ code: 'ERR_SSE_BUS_CLOSED' });
  });

  test('options are checked up front', () => {
    expect(() => createRedisBus({})).toThrow(/url/);
    expect(() => createRedisBus({ url: server.url, prefix: 'a{b}' })).toThrow(TypeError);
    expect(() => createRedisBus({ url: server.url, history: { size: 0 } })).toThrow(/history.size/);
    expect(() => createRedisBus({ url: server.url, watchdogMs: -1 })).toThrow(/watchdogMs/);
  });
});

test('sharded mode on a Redis without sharded pub/sub: publish says what to change', async () => {
  const old = await startRedisServer(['--rename-command', 'SPUBLISH', '', '--rename-command', 'SSUBSCRIBE', '']);
  const logger = recordingLogger();
  const bus = createRedisBus({ url: old.url, prefix: 'nosharding', sharded: true, logger });
  try {
    await until(() => logger.error.mock.calls.some(([message]) => /sharded: false/.test(String(message))));
    await expect(bus.publish('logs:a', 1)).rejects.toMatchObject({
      code: 'ERR_SSE_BUS_UNAVAILABLE',
      message: expect.stringMatching(/Redis 7 or later; pass `sharded: false`/),
    });
  } finally {
    await bus.close();
    await old.stop();
  }
});

test('a publish that timed out although Redis ran it, retried with its idempotencyKey, is delivered once', async () => {
  sharded = false;
  // The deadline ends during the pause (otherwise the publish is held and confirmed once the pause ends).
  const [a, b] = instances(2, { publishTimeoutMs: 2000 }) as [Bus, Bus];
  const onB = await watchAndCollect(b, 'jobs:x', [a]);
  // Writes wait for 4 s: the publish gives up after 2 s, but Redis runs it when the pause ends.
  await server.cli('CLIENT', 'PAUSE', '4000', 'WRITE');
  await expect(a.publish('jobs:x', 'once', { idempotencyKey: 'job-7' })).rejects.toMatchObject({
    code: 'ERR_SSE_BUS_UNAVAILABLE',
  });
  const [delivered] = await onB.count(1, 8000);
  const retried = await a.publish('jobs:x', 'once', { idempotencyKey: 'job-7' });
  expect(retried.id).toBe(delivered?.id);
  const probe = await a.publish('jobs:x', 'probe');
  await onB.find((e) => e.id === probe.id);
  expect(onB.events.map((e) => e.data)).toEqual(['once', 'probe']);
}, 15_000);
