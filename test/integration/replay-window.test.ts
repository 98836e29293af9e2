/**
 * A replay window that survives a deploy on a busy bus (issue 12, item 14): the gateway's `replay.size`
 * counts the missed events of the stream's own channels, the buses hold a long gap (bounded by bytes and
 * age in memory, by count in Redis), and `stats()` reports the window and the history's fill. Run over
 * the memory bus and the Redis bus (real redis-server).
 */
import { Registry } from 'prom-client';
import { createMemoryBus } from '../../src/bus/memory-bus';
import { createRedisBus } from '../../src/bus/redis';
import { registerMetrics } from '../../src/ops/metrics';
import type { ReadyPayload } from '../../src/protocol/wire';
import type { Bus, BusHistoryStatus, SseGateway, SseOptions } from '../../src/types';
import { settled } from '../helpers/bus';
import { closeAll, eventually, type GatewayHarness, onCleanup, startGateway } from '../helpers/gateway';
import { type RedisServer, startRedisServer } from '../helpers/redis-server';
import { dataEvents, type SseStream } from '../helpers/sse-client';

let server: RedisServer;
let prefixes = 0;

beforeAll(async () => {
  server = await startRedisServer();
});
afterEach(closeAll);
afterAll(async () => {
  await server?.stop();
});

/** A history option both buses take (`maxBytes` only the memory bus). */
type History = { size?: number; maxBytes?: number; ttlMs?: number };

interface BusSetup {
  readonly name: string;
  create(history?: History): Promise<Bus>;
}

const memory: BusSetup = {
  name: 'memory bus',
  async create(history) {
    const bus = createMemoryBus(history === undefined ? {} : { history });
    onCleanup(() => bus.close());
    return bus;
  },
};

const redis: BusSetup = {
  name: 'Redis bus',
  async create(history) {
    const bus = createRedisBus({
      url: server.url,
      prefix: `rw${++prefixes}`,
      logger: { warn: jest.fn(), error: jest.fn() },
      // The history's fill is read with each watchdog ping.
      watchdogMs: 100,
      ...(history === undefined ? {} : { history }),
    });
    onCleanup(() => bus.close());
    await settled(bus);
    return bus;
  },
};

async function gatewayOn(bus: Bus, options: Partial<SseOptions> = {}): Promise<GatewayHarness> {
  return startGateway({ channels: ['logs'], ...options, bus });
}

/** Publish `count` events on `channel`, 250 at a time (their order among themselves does not matter). */
async function flood(
  gateway: SseGateway,
  channel: string,
  count: number,
  data: (n: number) => unknown = (n) => ({ n }),
) {
  for (let from = 0; from < count; from += 250) {
    const batch = [];
    for (let n = from; n < Math.min(count, from + 250); n++) batch.push(gateway.publish(channel, data(n)));
    await Promise.all(batch);
  }
}

function resetReason(stream: SseStream): string | undefined {
  const reset = stream.events.find((e) => e.event === 'sse:reset');
  return reset ? (JSON.parse(reset.data) as { reason: string }).reason : undefined;
}

const values = (stream: SseStream) => dataEvents(stream.events).map((e) => (e.data as { n: unknown }).n);

/** Open `logs:a`, receive one event, drop: the id a reconnect resumes from. */
async function streamThatLeft(harness: GatewayHarness): Promise<string> {
  const first = await harness.open('channels=logs:a');
  const seen = await harness.gateway.publish('logs:a', { n: 0 });
  await first.take(1);
  first.close();
  return seen.id;
}

describe.each([memory, redis])('replay window on the $name', (setup) => {
  test('after 5,000 events on another channel a stream gets exactly its missed events once, in order, then live ones', async () => {
    const harness = await gatewayOn(await setup.create());
    const lastEventId = await streamThatLeft(harness);
    await flood(harness.gateway, 'logs:b', 2000);
    await harness.gateway.publish('logs:a', { n: 1 });
    await flood(harness.gateway, 'logs:b', 2000);
    await harness.gateway.publish('logs:a', { n: 2 });
    await flood(harness.gateway, 'logs:b', 1000);
    await harness.gateway.publish('logs:a', { n: 3 });

    const again = await harness.open('channels=logs:a', { headers: { 'Last-Event-ID': lastEventId } });
    await harness.gateway.publish('logs:a', { n: 'live' });
    await again.until((s) => values(s).includes('live'));
    await harness.gateway.publish('logs:a', { n: 'live 2' });
    await again.until((s) => values(s).includes('live 2'));
    expect(values(again)).toEqual([1, 2, 3, 'live', 'live 2']);
    expect(resetReason(again)).toBeUndefined();
    expect(harness.gateway.stats().replays).toEqual({ replayed: 1, reset: 0 });
  });

  test('exactly `size` missed events of its own channel among many others replay; one more is sse:reset expired, then live only', async () => {
    const bus = await setup.create();
    const harness = await gatewayOn(bus, { replay: { size: 20, ttlMs: 60_000 } });
    const lastEventId = await streamThatLeft(harness);
    for (let n = 1; n <= 20; n++) {
      await flood(harness.gateway, 'logs:b', 25);
      await harness.gateway.publish('logs:a', { n });
    }
    const full = await harness.open('channels=logs:a', { headers: { 'Last-Event-ID': lastEventId } });
    await full.until((s) => values(s).length === 20);
    expect(values(full)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    full.close();

    await harness.gateway.publish('logs:a', { n: 21 });
    const over = await harness.open('channels=logs:a', { headers: { 'Last-Event-ID': lastEventId } });
    await harness.gateway.publish('logs:a', { n: 'live' });
    await over.waitFor((e) => e.event === 'logs');
    expect(over.events.map((e) => e.event)).toEqual(['sse:ready', 'sse:reset', 'logs']);
    expect(resetReason(over)).toBe('expired');
    expect(values(over)).toEqual(['live']);
  });

  test('the window spans pages of the history: 1,200 own events among 3,000 others replay, 1,600 are expired', async () => {
    const harness = await gatewayOn(await setup.create(), { replay: { size: 1500, ttlMs: 60_000 } });
    const lastEventId = await streamThatLeft(harness);
    for (let round = 0; round < 4; round++) {
      await flood(harness.gateway, 'logs:b', 750);
      for (let n = round * 300 + 1; n <= (round + 1) * 300; n++) await harness.gateway.publish('logs:a', { n });
    }
    const within = await harness.open('channels=logs:a', { headers: { 'Last-Event-ID': lastEventId } });
    await within.until((s) => values(s).length === 1200);
    expect(values(within)).toEqual(Array.from({ length: 1200 }, (_, i) => i + 1));
    expect(resetReason(within)).toBeUndefined();
    within.close();

    for (let n = 1201; n <= 1600; n++) await harness.gateway.publish('logs:a', { n });
    const beyond = await harness.open('channels=logs:a', { headers: { 'Last-Event-ID': lastEventId } });
    await beyond.waitFor((e) => e.event === 'sse:reset');
    expect(resetReason(beyond)).toBe('expired');
    expect(values(beyond)).toEqual([]);
  });

  test('a channel added with `since` to an open stream follows the same rule', async () => {
    const harness = await gatewayOn(await setup.create());
    const stream = await harness.open('channels=logs:x');
    const { connectionId, subscriptionToken } = JSON.parse(
      stream.events.find((e) => e.event === 'sse:ready')?.data ?? '{}',
    ) as ReadyPayload;
    const since = await harness.gateway.publish('logs:a', { n: 0 });
    for (let n = 1; n <= 3; n++) {
      await flood(harness.gateway, 'logs:b', 1000);
      await harness.gateway.publish('logs:a', { n });
    }
    const res = await fetch(`${harness.url}/events/subscriptions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        connectionId,
        subscriptionToken,
        requestId: 'r1',
        add: [{ channel: 'logs:a', since: since.id }],
      }),
    });
    expect(res.status).toBe(200);
    await stream.waitFor((e) => e.event === 'sse:subscribed');
    await harness.gateway.publish('logs:a', { n: 'live' });
    await stream.until((s) => values(s).includes('live'));
    expect(values(stream)).toEqual([1, 2, 3, 'live']);
    expect(resetReason(stream)).toBeUndefined();
  });
});

describe('a gap the history no longer wholly holds is sse:reset expired, never a partial replay', () => {
  test('memory bus: trimmed by maxBytes, although every event of the stream’s own channel is held', async () => {
    const bus = await memory.create({ maxBytes: 64 * 1024 });
    const harness = await gatewayOn(bus);
    const lastEventId = await streamThatLeft(harness);
    // 1 KB events: 64 KiB of estimated memory holds about 17 of them.
    await flood(harness.gateway, 'logs:b', 200, (n) => ({ n, line: 'x'.repeat(1000) }));
    await harness.gateway.publish('logs:a', { n: 1 });
    const history = bus.status().history as BusHistoryStatus;
    expect(history.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(history.events).toBeLessThan(30);

    const again = await harness.open('channels=logs:a', { headers: { 'Last-Event-ID': lastEventId } });
    await harness.gateway.publish('logs:a', { n: 'live' });
    await again.waitFor((e) => e.event === 'logs');
    expect(resetReason(again)).toBe('expired');
    expect(values(again)).toEqual(['live']);
  });

  test('Redis bus: trimmed by size (MAXLEN), the gap longer than a page', async () => {
    const harness = await gatewayOn(await redis.create({ size: 500 }));
    const lastEventId = await streamThatLeft(harness);
    await flood(harness.gateway, 'logs:b', 2500);
    await harness.gateway.publish('logs:a', { n: 1 });
    const again = await harness.open('channels=logs:a', { headers: { 'Last-Event-ID': lastEventId } });
    await harness.gateway.publish('logs:a', { n: 'live' });
    await again.waitFor((e) => e.event === 'logs');
    expect(resetReason(again)).toBe('expired');
    expect(values(again)).toEqual(['live']);
  });
});

describe('stats() reports the replay window and the history', () => {
  test('memory bus: the defaults, the fill, and retain() raising the count', async () => {
    const harness = await gatewayOn(await memory.create());
    await flood(harness.gateway, 'logs:b', 3);
    const stats = harness.gateway.stats();
    expect(stats.replay).toEqual({ size: 1000, ttlMs: 600_000 });
    expect(stats.bus.history).toEqual({
      size: 100_000,
      maxBytes: 32 * 1024 * 1024,
      ttlMs: 600_000,
      events: 3,
      bytes: expect.any(Number),
      oldestAgeMs: expect.any(Number),
    });
    const history = stats.bus.history as BusHistoryStatus;
    expect(history.bytes).toBeGreaterThan(3 * 600);
    expect(history.oldestAgeMs).toBeLessThan(5000);

    const small = await gatewayOn(await memory.create({ size: 10, ttlMs: 1000 }), { replay: { size: 50, ttlMs: 500 } });
    expect(small.gateway.stats().bus.history).toMatchObject({ size: 50, ttlMs: 1000, events: 0 });
  });

  test('memory bus: replay: false and history: false', async () => {
    const harness = await gatewayOn(await memory.create(), { replay: false });
    expect(harness.gateway.stats().replay).toBe(false);
    const bus = createMemoryBus({ history: false });
    onCleanup(() => bus.close());
    expect(bus.status().history).toBe(false);
  });

  test('Redis bus: the defaults, and the fill as of the last ping', async () => {
    const harness = await gatewayOn(await redis.create());
    expect(harness.gateway.stats().bus.history).toMatchObject({ size: 50_000, ttlMs: 600_000 });
    await flood(harness.gateway, 'logs:b', 7);
    await eventually(() => (harness.gateway.stats().bus.history as BusHistoryStatus).events === 7, 5000, 'the fill');
    const history = harness.gateway.stats().bus.history as BusHistoryStatus;
    expect(history.oldestAgeMs).toBeGreaterThanOrEqual(0);
    expect(history.oldestAgeMs).toBeLessThan(10_000);
    expect(history).not.toHaveProperty('maxBytes');
  });

  test('Redis bus: a byte bound is refused with the reason', () => {
    expect(() => createRedisBus({ url: server.url, history: { maxBytes: 1 } as never })).toThrow(
      /createRedisBus: `history.maxBytes` is not supported: a Redis stream is trimmed by count/,
    );
  });

  test('/metrics: sse_replay_history_events and sse_replay_history_age_seconds', async () => {
    const harness = await gatewayOn(await memory.create());
    const registry = new Registry();
    registerMetrics(harness.gateway, { registry });
    await flood(harness.gateway, 'logs:b', 5);
    const metrics = await registry.getMetricsAsJSON();
    const value = (name: string) => metrics.find((m) => m.name === name)?.values[0]?.value;
    expect(value('sse_replay_history_events')).toBe(5);
    expect(value('sse_replay_history_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(value('sse_replay_history_age_seconds')).toBeLessThan(5);
  });
});
