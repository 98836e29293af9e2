/**
 * Hardening of the Redis bus (issue 12): pattern watches without PSUBSCRIBE (item 9) and publishes that
 * survive a short outage (item 11), against a real redis-server.
 */
import { Redis } from 'ioredis';
import { createRedisBus } from '../../src/bus/redis';
import { publishCall, runScript } from '../../src/bus/redis/scripts';
import { encodeHeaderTail, redisNames } from '../../src/bus/redis/wire';
import type { Bus, SseEvent } from '../../src/types';
import { collect, settled, until, watchAndCollect } from '../helpers/bus';
import { closeAll, onCleanup, recordingLogger } from '../helpers/gateway';
import { redisBus } from '../helpers/redis-bus';
import { type RedisServer, redisServerForSuite, startRedisServer } from '../helpers/redis-server';
import { startTcpProxy } from '../helpers/tcp-proxy';

const server = redisServerForSuite();
let prefixes = 0;
afterEach(closeAll);

function bus(prefix: string, options: { legacyPatterns?: boolean } = {}): Bus {
  return redisBus({ url: server.url, prefix, sharded: false, ...options });
}

function client(): Redis {
  const made = new Redis(server.url, { lazyConnect: false });
  onCleanup(() =>
    made.quit().then(
      () => undefined,
      () => undefined,
    ),
  );
  return made;
}

describe('pattern watches without PSUBSCRIBE (classic pub/sub)', () => {
  test('many patterns add no PSUBSCRIBE, and pattern subscribers still receive their events once, in order', async () => {
    const prefix = `h${++prefixes}`;
    const [a, b] = [bus(prefix), bus(prefix)];
    for (let i = 0; i < 100; i++) b.watch(`logs:ws${i}:*`);
    b.watch('logs:*');
    await Promise.all([settled(a), settled(b)]);
    expect(Number(await server.cli('PUBSUB', 'NUMPAT'))).toBe(0);
    const channels = (await server.cli('PUBSUB', 'CHANNELS', `{${prefix}}:pt:*`)).split('\n').filter(Boolean);
    expect(channels).toHaveLength(101);
    const onB = collect(b);
    const published = [
      await a.publish('logs:ws1:etl', 1),
      await a.publish('other:x', 'unwatched'),
      await a.publish('logs:ws7', 2),
      await a.publish('logs:ws1:etl:deep', 3),
    ];
    const wanted = [published[0], published[2], published[3]].map((e) => e?.id);
    expect((await onB.count(3)).map((e) => e.id)).toEqual(wanted);
    const end = await a.publish('logs:end', 'end');
    await onB.find((e) => e.id === end.id);
    expect(onB.events.map((e) => e.id)).toEqual([...wanted, end.id]);
  });

  test('rolling deploy: an old instance (PSUBSCRIBE, exact channel only) and a new one reach each other', async () => {
    const prefix = `h${++prefixes}`;
    const names = redisNames(prefix, 'old-instance');
    // The old instance's subscriber: PSUBSCRIBE on the exact channels' namespace, as earlier releases do.
    const oldSubscriber = client();
    const oldReceived: string[] = [];
    oldSubscriber.on('pmessage', (_pattern, _channel, message: string) => oldReceived.push(message));
    await oldSubscriber.psubscribe(`${names.channelPrefix}jobs:*`);
    const fresh = bus(prefix, { legacyPatterns: true });
    const onNew = await watchAndCollect(fresh, 'jobs:*');
    // New → old: the exact channel still carries every event, once.
    const mine = await fresh.publish('jobs:j1', 'from new');
    // Old → new: the old publish script sent to the exact channel only (no pattern channels).
    const commands = client();
    const time = Date.now();
    await runScript(
      commands,
      publishCall(names, {
        freshEpoch: 'unused',
        historySize: 100,
        historyTtlMs: 60_000,
        channel: 'jobs:j2',
        headerTail: encodeHeaderTail('jobs:j2', time, 'old-instance'),
        dataJson: '"from old"',
        time,
        command: 'PUBLISH',
        alsoTo: [],
      }),
    );
    const last = await fresh.publish('jobs:j3', 'end');
    const received = await onNew.count(3);
    expect(received.map((e) => e.data)).toEqual(['from new', 'from old', 'end']);
    expect(received[0]?.id).toBe(mine.id);
    expect(received[2]?.id).toBe(last.id);
    // Each once, although the new instance hears them on its pattern channel and its legacy PSUBSCRIBE.
    const probe = await fresh.publish('jobs:probe', 'probe');
    await onNew.find((e) => e.id === probe.id);
    expect(onNew.events).toHaveLength(4);
    expect(oldReceived.filter((m) => m.includes('"from new"'))).toHaveLength(1);
  });
});

describe('publishes through a short outage', () => {
  let own: RedisServer;
  beforeEach(async () => {
    own = await startRedisServer();
  });
  afterEach(async () => {
    // Close the buses while their Redis still runs, then stop it.
    await closeAll();
    await own.stop();
  });

  const ownBus = (options: { publishTimeoutMs?: number; watchdogMs?: number; url?: string } = {}) =>
    redisBus({ url: own.url, prefix: 'out', watchdogMs: 200, ...options });

  test('a 300 ms Redis restart during a steady stream rejects no publish and delivers each once, in order', async () => {
    const [publisher, listener] = [ownBus(), ownBus()];
    const received = await watchAndCollect(listener, 'seq:*', [publisher]);
    const results: Promise<SseEvent>[] = [];
    let restart: Promise<void> | undefined;
    for (let i = 0; i < 300; i++) {
      if (i === 100) restart = own.restart(300);
      results.push(publisher.publish(`seq:${i % 3}`, { i }));
      // A steady stream: one publish every 5 ms, whether or not the previous ones are confirmed.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await restart;
    const settledResults = await Promise.allSettled(results);
    expect(settledResults.filter((r) => r.status === 'rejected')).toEqual([]);
    const published = settledResults.map((r) => (r as PromiseFulfilledResult<SseEvent>).value);
    expect(published.map((e) => (e.data as { i: number }).i)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    await received.find((e) => e.id === published.at(-1)?.id, 10_000);
    expect(received.events.map((e) => e.id)).toEqual(published.map((e) => e.id));
    expect(received.events.map((e) => (e.data as { i: number }).i)).toEqual(published.map((_, i) => i));
  }, 20_000);

  test('past the deadline a publish rejects with ERR_SSE_BUS_UNAVAILABLE and says whether it was sent', async () => {
    // The default watchdog: a 200 ms one would find the paused link dead and replace it, and Redis drops the
    // paused command with the connection (the publish is then not published, which the message allows).
    const bus = ownBus({ publishTimeoutMs: 300, watchdogMs: 5000 });
    const listener = ownBus({ watchdogMs: 5000 });
    const onListener = await watchAndCollect(listener, 'jobs:x', [bus]);
    // Sent, but Redis holds its writes past the deadline: it may have been published, and it is.
    await own.cli('CLIENT', 'PAUSE', '1500', 'WRITE');
    const started = Date.now();
    await expect(bus.publish('jobs:x', 'paused')).rejects.toMatchObject({
      code: 'ERR_SSE_BUS_UNAVAILABLE',
      status: 503,
      message: expect.stringMatching(/within 300 ms .*may or may not have been published/),
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    const [late] = await onListener.count(1, 5000);
    expect(late?.data).toBe('paused');
    const probe = await bus.publish('jobs:x', 'probe');
    await onListener.find((e) => e.id === probe.id);
    expect(onListener.events.map((e) => e.data)).toEqual(['paused', 'probe']);
    // Never sent: Redis is gone for longer than the deadline.
    await own.stop();
    await until(() => !bus.status().connected, 2000, 'the outage to be seen');
    // The subscriber link may see the outage first: a publish made while the command link still looks up is
    // written to a dead socket, and the bus cannot know whether it was applied. Once that one has settled,
    // the command link is known to be down and the next publish is only ever held.
    await bus.publish('jobs:x', 'first').catch(() => undefined);
    await expect(bus.publish('jobs:x', 'lost')).rejects.toMatchObject({
      code: 'ERR_SSE_BUS_UNAVAILABLE',
      message: expect.stringMatching(/within 300 ms \(connection .*\)\. The event was not published/),
    });
  }, 15_000);

  test('held publishes are bounded by bytes: past 32 MB a publish rejects at once, and the deadline is checked', async () => {
    expect(() => createRedisBus({ url: own.url, publishTimeoutMs: 0 })).toThrow(/publishTimeoutMs/);
    expect(() => createRedisBus({ url: own.url, publishTimeoutMs: 120_000 })).toThrow(/at most 60000/);
    const bus = ownBus({ publishTimeoutMs: 1000 });
    await settled(bus);
    await own.stop();
    await until(() => !bus.status().connected, 2000, 'the outage to be seen');
    // Once one publish is held, every later one is held behind it (and counted against the bound).
    const first = bus.publish('big:first', 1).catch((error: unknown) => error);
    await until(() => bus.status().held === 1, 2000, 'the first publish to be held');
    const megabyte = 'x'.repeat(1024 * 1024);
    const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => bus.publish(`big:${i}`, megabyte)));
    const reasons = results.map((r) => (r.status === 'rejected' ? String((r.reason as Error).message) : 'resolved'));
    const full = reasons.filter((m) => /already held while Redis is unreachable/.test(m));
    const expired = reasons.filter((m) => /within 1000 ms .*was not published/.test(m));
    expect(full.length + expired.length).toBe(40);
    expect(expired.length).toBe(31);
    expect(await first).toMatchObject({ code: 'ERR_SSE_BUS_UNAVAILABLE' });
    expect(bus.status().held).toBe(0);
  });

  test('a blackholed command link is detected, reported as not connected, replaced, and its publishes held', async () => {
    const proxy = await startTcpProxy(own.port);
    try {
      const logger = recordingLogger();
      const bus = redisBus({ url: proxy.url, prefix: 'out', logger, watchdogMs: 100 });
      const listener = ownBus();
      const onListener = await watchAndCollect(listener, 'jobs:*', [bus]);
      expect(proxy.blackhole('commands')).toBe(1);
      const started = Date.now();
      const held = bus.publish('jobs:held', 'through the blackhole');
      await until(() => !bus.status().connected, 1000, 'the dead command link to be seen');
      const detectedMs = Date.now() - started;
      expect(logger.warn).toHaveBeenCalledWith(expect.stringContaining('command connection did not answer a PING'));
      await until(() => bus.status().connected, 5000, 'the command link to be replaced');
      const event = await held;
      await onListener.find((e) => e.id === event.id);
      const probe = await bus.publish('jobs:probe', 'probe');
      await onListener.find((e) => e.id === probe.id);
      expect(onListener.events.map((e) => e.data)).toEqual(['through the blackhole', 'probe']);
      expect(detectedMs).toBeLessThan(500);
      // The subscriber was fine: its pings could not be published, which says nothing about it.
      expect(bus.status().reconnects).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  test('both links blackholed: connected turns false, both are replaced, nothing is lost or doubled', async () => {
    const proxy = await startTcpProxy(own.port);
    try {
      const bus = redisBus({ url: proxy.url, prefix: 'out', watchdogMs: 100 });
      const publisher = ownBus();
      const onBus = await watchAndCollect(bus, 'jobs:*', [publisher]);
      expect(proxy.blackhole('all')).toBe(2);
      const held = bus.publish('jobs:mine', 'held');
      const missed = await publisher.publish('jobs:theirs', 'missed live');
      await until(() => !bus.status().connected, 1000, 'the dead links to be seen');
      await until(() => bus.status().connected, 5000, 'both links to be replaced');
      const mine = await held;
      await onBus.find((e) => e.id === mine.id);
      await onBus.find((e) => e.id === missed.id);
      const probe = await publisher.publish('jobs:probe', 'probe');
      await onBus.find((e) => e.id === probe.id);
      expect(onBus.events.map((e) => e.data).sort()).toEqual(['held', 'missed live', 'probe']);
      expect(bus.status().reconnects).toBeGreaterThanOrEqual(1);
    } finally {
      await proxy.close();
    }
  });
});
