/**
 * One behavioural contract for every Bus implementation: the memory bus and the Redis bus must be
 * interchangeable behind the gateway.
 */

import { createMemoryBus } from '../../src/bus/memory-bus';
import { createRedisBus } from '../../src/bus/redis';
import { parseEventId } from '../../src/protocol/event-id';
import type { Bus, ReplayQuery } from '../../src/types';
import { collect, settled, watchAndCollect } from '../helpers/bus';
import { redisServerForSuite } from '../helpers/redis-server';

interface BusSetup {
  /** A new bus; buses created in one test share their history (same memory bus or same Redis prefix). */
  create(history?: { size: number }): Promise<Bus>;
  /** True when a bus routes by interest, so an unwatched channel is not delivered. */
  readonly routesByInterest: boolean;
}

const query = (match: (channel: string) => boolean = () => true): ReplayQuery => ({
  match,
  maxCount: 1000,
  maxAgeMs: 600_000,
});

function busContract(name: string, setup: () => BusSetup): void {
  describe(`Bus contract: ${name}`, () => {
    let buses: Bus[] = [];
    let factory: BusSetup;
    const make = async (history?: { size: number }) => {
      const bus = await factory.create(history);
      buses.push(bus);
      return bus;
    };

    beforeEach(() => {
      factory = setup();
    });
    afterEach(async () => {
      await Promise.all(buses.map((bus) => bus.close()));
      buses = [];
    });

    test('a signal reaches every bus sharing the deployment, the sender included; a malformed one is refused', async () => {
      const sender = await make();
      const other = await make();
      if (sender.signal === undefined || sender.onSignal === undefined) throw new Error('signals are supported');
      const seen: [string, string][] = [];
      const arrived = (n: number) =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`only ${seen.length} signals arrived`)), 5000);
          const check = () => {
            if (seen.length < n) return;
            clearTimeout(timer);
            resolve();
          };
          for (const [name, bus] of [
            ['sender', sender],
            ['other', other],
          ] as const)
            bus.onSignal?.((signal) => {
              seen.push([name, signal.principalId]);
              check();
            });
        });
      const both = arrived(2);
      await sender.signal({ type: 'disconnect', principalId: 'u1' });
      await both;
      expect(seen.map(([, id]) => id)).toEqual(['u1', 'u1']);
      if (sender !== other) expect(seen.map(([name]) => name).sort()).toEqual(['other', 'sender']);
      await expect(sender.signal({ type: 'disconnect', principalId: '' })).rejects.toThrow(TypeError);
      await expect(sender.signal({ type: 'nope', principalId: 'u1' } as never)).rejects.toThrow(/disconnect/);
    });

    test('an idempotencyKey makes a retried publish (from any instance) a no-op: same id, delivered once', async () => {
      const bus = await make();
      const other = await make();
      const received = await watchAndCollect(bus, 'jobs:*');
      const first = await bus.publish('jobs:j1', { step: 1 }, { idempotencyKey: 'j1:step1' });
      const retried = await other.publish('jobs:j1', { step: 1 }, { idempotencyKey: 'j1:step1' });
      expect(retried).toMatchObject({ id: first.id, channel: 'jobs:j1', time: first.time, data: { step: 1 } });
      const next = await bus.publish('jobs:j1', { step: 2 }, { idempotencyKey: 'j1:step2' });
      const probe = await bus.publish('jobs:end', 'end');
      await received.find((e) => e.id === probe.id);
      expect(received.events.map((e) => e.id)).toEqual([first.id, next.id, probe.id]);
      await expect(bus.publish('jobs:j2', 1, { idempotencyKey: 'j1:step1' })).rejects.toMatchObject({
        code: 'ERR_SSE_INVALID_DATA',
        message: expect.stringMatching(/already used for an event on jobs:j1/),
      });
      await expect(bus.publish('jobs:j2', 1, { idempotencyKey: '' })).rejects.toMatchObject({
        code: 'ERR_SSE_INVALID_DATA',
      });
    });

    test('publish resolves an SseEvent with id, channel, data, users and time', async () => {
      const bus = await make();
      const before = Date.now();
      const event = await bus.publish('orders:o1', { total: 3, note: 'line\nbreak' }, { users: ['u1', 'u2'] });
      expect(event).toEqual({
        id: expect.stringMatching(/^[a-z0-9]+-1$/),
        channel: 'orders:o1',
        data: { total: 3, note: 'line\nbreak' },
        users: ['u1', 'u2'],
        time: expect.any(Number),
      });
      expect(event.time).toBeGreaterThanOrEqual(before);
      expect(event.time).toBeLessThanOrEqual(Date.now());
      const plain = await bus.publish('orders:o1', null);
      expect(plain.users).toBeUndefined();
      expect(plain.data).toBeNull();
    });

    test('listeners get every event once, in publish order, with strictly increasing ids in one epoch', async () => {
      const bus = await make();
      const received = await watchAndCollect(bus, 'feed:*');
      const published = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          bus.publish(`feed:${i % 3}`, { i }, i % 5 === 0 ? { users: ['u'] } : undefined),
        ),
      );
      const events = await received.count(30);
      expect(events.map((e) => e.id)).toEqual(published.map((e) => e.id));
      expect(events.map((e) => e.data)).toEqual(published.map((e) => e.data));
      expect(events[0]?.users).toEqual(['u']);
      const ids = published.map((e) => parseEventId(e.id));
      expect(new Set(ids.map((id) => id?.epoch)).size).toBe(1);
      for (let i = 1; i < ids.length; i++) expect(ids[i]?.seq).toBeGreaterThan(ids[i - 1]?.seq ?? Infinity);
      // Nothing arrives twice.
      const probe = await bus.publish('feed:end', 'end');
      await received.find((e) => e.id === probe.id);
      expect(received.events).toHaveLength(31);
    });

    test('a second bus on the same history sees the same sequence', async () => {
      const a = await make();
      const b = await make();
      const received = await watchAndCollect(b, 'shared:x');
      const first = await a.publish('shared:x', 1);
      const second = await b.publish('shared:x', 2);
      expect(parseEventId(second.id)?.seq).toBe((parseEventId(first.id)?.seq ?? 0) + 1);
      expect((await received.count(2)).map((e) => e.data)).toEqual([1, 2]);
    });

    test('watch and release: an unwatched channel is not delivered by an interest-routing bus', async () => {
      const bus = await make();
      const release = bus.watch('w:a');
      const pattern = bus.watch('w:p:*');
      await settled(bus);
      const received = collect(bus);
      await bus.publish('w:b', 'other');
      await bus.publish('w:p', 'prefix itself');
      await bus.publish('w:p:x:y', 'deep');
      const wanted = await bus.publish('w:a', 'wanted');
      await received.find((e) => e.id === wanted.id);
      const channels = received.events.map((e) => e.channel);
      if (factory.routesByInterest) expect(channels).toEqual(['w:p:x:y', 'w:a']);
      else expect(channels).toEqual(['w:b', 'w:p', 'w:p:x:y', 'w:a']);

      release();
      release(); // releasing twice must not drop someone else's interest
      pattern();
      const marker = bus.watch('w:marker');
      await settled(bus);
      received.events.length = 0;
      await bus.publish('w:a', 'after release');
      const done = await bus.publish('w:marker', 'marker');
      await received.find((e) => e.id === done.id);
      if (factory.routesByInterest) expect(received.events.map((e) => e.channel)).toEqual(['w:marker']);
      marker();
    });

    test('reference counting: a topic stays watched until its last holder releases it', async () => {
      const bus = await make();
      const one = bus.watch('rc:a');
      const two = bus.watch('rc:a');
      await settled(bus);
      one();
      await settled(bus);
      const received = collect(bus);
      const event = await bus.publish('rc:a', 'still');
      await expect(received.find((e) => e.id === event.id)).resolves.toMatchObject({ data: 'still' });
      two();
    });

    test('invalid channels and data are rejected', async () => {
      const bus = await make();
      await expect(bus.publish('bad channel', 1)).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_CHANNEL' });
      await expect(bus.publish('logs:*', 1)).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_CHANNEL' });
      await expect(bus.publish('logs:a\nb', 1)).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_CHANNEL' });
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      await expect(bus.publish('logs:a', circular)).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_DATA' });
      await expect(bus.publish('logs:a', 1n)).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_DATA' });
    });

    test('replay after an id returns exactly the later matching events and the head', async () => {
      const bus = await make();
      const published = [];
      for (let i = 0; i < 8; i++)
        published.push(await bus.publish(i % 2 ? 'r:odd' : 'r:even', { i }, i === 3 ? { users: ['u3'] } : undefined));
      const from = published[2]?.id as string;
      const result = await bus.replay(
        from,
        query((channel) => channel === 'r:odd'),
      );
      expect(result).toEqual({ ok: true, events: expect.any(Array), head: published[7]?.id });
      if (!result.ok) return;
      expect(result.events.map((e) => e.id)).toEqual([published[3]?.id, published[5]?.id, published[7]?.id]);
      expect(result.events.map((e) => e.data)).toEqual([{ i: 3 }, { i: 5 }, { i: 7 }]);
      expect(result.events[0]?.users).toEqual(['u3']);
      const atHead = await bus.replay(published[7]?.id as string, query());
      expect(atHead).toEqual({ ok: true, events: [], head: published[7]?.id });
    });

    test('an id of another epoch or beyond the head is unknown-id; a malformed id is malformed-id', async () => {
      const bus = await make();
      const event = await bus.publish('u:a', 1);
      const id = parseEventId(event.id);
      await expect(bus.replay('zzzz0000-1', query())).resolves.toEqual({ ok: false, reason: 'unknown-id' });
      await expect(bus.replay(`${id?.epoch}-${(id?.seq ?? 0) + 5}`, query())).resolves.toEqual({
        ok: false,
        reason: 'unknown-id',
      });
      for (const bad of ['nope', '', '1-', 'a-b-c', 'x\n-1', `${id?.epoch}-99999999999999999999`]) {
        await expect(bus.replay(bad, query())).resolves.toEqual({ ok: false, reason: 'malformed-id' });
      }
    });

    test('an id older than the history (count or age) is expired', async () => {
      const bus = await make({ size: 3 });
      const published = [];
      for (let i = 0; i < 10; i++) published.push(await bus.publish('t:a', i));
      await expect(bus.replay(published[0]?.id as string, query())).resolves.toEqual({ ok: false, reason: 'expired' });
      await expect(bus.replay(published[8]?.id as string, { ...query(), maxCount: 0 })).resolves.toEqual({
        ok: false,
        reason: 'expired',
      });
      await expect(bus.replay(published[8]?.id as string, query())).resolves.toMatchObject({
        ok: true,
        events: [{ data: 9 }],
      });
      const old = await bus.publish('t:a', 'aged');
      await bus.publish('t:a', 'newer');
      await new Promise((resolve) => setTimeout(resolve, 30));
      await expect(bus.replay(old.id, { ...query(), maxAgeMs: 10 })).resolves.toEqual({ ok: false, reason: 'expired' });
    });

    test('a closed bus rejects publish with ERR_SSE_BUS_CLOSED, and close() is idempotent', async () => {
      const bus = await make();
      await bus.close();
      await bus.close();
      await expect(bus.publish('c:a', 1)).rejects.toMatchObject({ code: 'ERR_SSE_BUS_CLOSED' });
      expect(bus.status().connected).toBe(false);
    });

    test('status() names the kind and reports the head', async () => {
      const bus = await make();
      const received = await watchAndCollect(bus, 's:a');
      const event = await bus.publish('s:a', 1);
      await received.find((e) => e.id === event.id);
      expect(bus.status()).toMatchObject({ kind: expect.any(String), connected: true, head: event.id });
    });
  });
}

busContract('memory', () => {
  let shared: Bus | undefined;
  return {
    routesByInterest: false,
    async create(history) {
      // Buses of one test share a history, like Redis instances do: hand out the same memory bus.
      shared ??= createMemoryBus(history === undefined ? {} : { history });
      return shared;
    },
  };
});

describe('with a real redis-server', () => {
  const server = redisServerForSuite();
  let test = 0;

  // Sharded: SPUBLISH/SSUBSCRIBE, the default on a Cluster, on a standalone Redis 7.
  for (const [name, sharded] of [
    ['redis', false],
    ['redis, sharded pub/sub', true],
  ] as const) {
    busContract(name, () => {
      const prefix = `contract${++test}`;
      return {
        routesByInterest: true,
        async create(history) {
          const bus = createRedisBus({ url: server.url, prefix, sharded, ...(history ? { history } : {}) });
          await settled(bus);
          return bus;
        },
      };
    });
  }
});
