import express from 'express';
import { createMemoryBus } from '../../src/bus/memory-bus';
import { sseMiddleware } from '../../src/index';
import type { Bus, Logger, SseEvent } from '../../src/types';
import { bridgeUpstream, type SubscriptionSource, type UpstreamBridge } from '../../src/upstream/bridge';
import { startServer } from '../helpers/server';
import { dataEvents, openStream } from '../helpers/sse-client';
import { type FakeUpstream, startUpstream } from '../helpers/upstream';

const logger: Logger & { lines: string[] } = {
  lines: [],
  warn(message: string) {
    logger.lines.push(message);
  },
  error(message: string) {
    logger.lines.push(message);
  },
};

let upstream: FakeUpstream;
let bridge: UpstreamBridge | undefined;
const buses: Bus[] = [];

function newBus(): Bus {
  const bus = createMemoryBus();
  buses.push(bus);
  return bus;
}

/** `count` listeners on `bus`, each recording what it receives. */
function listeners(bus: Bus, count: number): SseEvent[][] {
  return Array.from({ length: count }, () => {
    const seen: SseEvent[] = [];
    bus.listen((event) => seen.push(event));
    return seen;
  });
}

/**
 * Resolves when every listener has at least `n` events and the bridge has booked the last publish: the
 * memory bus delivers inside publish(), and the bridge counts after publish() resolves, within the same
 * round of microtasks, so resolving from setImmediate sees both.
 */
function received(bus: Bus, seen: SseEvent[][], n: number, timeoutMs = 5000): Promise<void> {
  return new Promise<void>((resolveNow, reject) => {
    const resolve = () => setImmediate(resolveNow);
    const done = () => seen.every((s) => s.length >= n);
    if (done()) return resolve();
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out waiting for ${n} events; have ${seen.map((s) => s.length).join(',')}`));
    }, timeoutMs);
    const stop = bus.listen(() => {
      // Listeners run in registration order: ours was added last, so the others have already recorded.
      if (!done()) return;
      clearTimeout(timer);
      stop();
      resolve();
    });
  });
}

beforeEach(async () => {
  upstream = await startUpstream();
  logger.lines.length = 0;
});

afterEach(async () => {
  await bridge?.stop();
  bridge = undefined;
  await upstream.stop();
  for (const bus of buses.splice(0)) await bus.close();
});

describe('bridgeUpstream', () => {
  test('50 listeners, one upstream connection; ids, names and JSON data mapped onto channel events', async () => {
    const bus = newBus();
    const seen = listeners(bus, 50);
    bridge = bridgeUpstream({ target: `${upstream.url}/logs/stream`, bus, channel: 'logs:etl:ws1:wf1', logger });
    bridge.start();
    await upstream.waitFor((u) => u.open === 1);
    upstream.send({ id: '1', event: 'log', data: '{"line":"started"}' });
    upstream.send({ id: '2', data: 'plain text\nover two lines' });
    upstream.send({ id: '3', data: '42' });
    await received(bus, seen, 3);
    for (const events of seen) {
      expect(events.map((e) => [e.channel, e.data])).toEqual([
        ['logs:etl:ws1:wf1', { line: 'started' }],
        ['logs:etl:ws1:wf1', 'plain text\nover two lines'],
        ['logs:etl:ws1:wf1', 42],
      ]);
    }
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.open).toBe(1);
    expect(bridge.status()).toMatchObject({
      running: true,
      connected: true,
      lastEventId: '3',
      events: 3,
      published: 3,
      reconnects: 0,
    });
  });

  test('upstream restarted: resumes with its Last-Event-ID and the clients lose nothing, in order, once', async () => {
    const bus = newBus();
    const seen = listeners(bus, 50);
    bridge = bridgeUpstream({
      target: `${upstream.url}/logs/stream`,
      bus,
      channel: 'logs:etl:ws1:wf1',
      headers: { authorization: 'Bearer svc' },
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
      logger,
    });
    bridge.start();
    await upstream.waitFor((u) => u.open === 1);
    for (let i = 1; i <= 5; i++) upstream.send({ id: String(i), data: `{"n":${i}}` });
    await received(bus, seen, 5);

    await upstream.stop();
    // Published upstream while the bridge is cut off: a resuming upstream replays them after Last-Event-ID 5.
    for (let i = 6; i <= 8; i++) upstream.send({ id: String(i), data: `{"n":${i}}` });
    await upstream.restart();
    await upstream.waitFor((u) => u.open === 1 && u.requests.length >= 2, 5000, 'the bridge to reconnect');
    const resumed = upstream.requests[upstream.requests.length - 1];
    expect(resumed?.headers['last-event-id']).toBe('5');
    expect(resumed?.headers.authorization).toBe('Bearer svc');
    for (let i = 9; i <= 10; i++) upstream.send({ id: String(i), data: `{"n":${i}}` });
    await received(bus, seen, 10);

    const expected = Array.from({ length: 10 }, (_, i) => ({ n: i + 1 }));
    for (const events of seen) expect(events.map((e) => e.data)).toEqual(expected);
    expect(upstream.open).toBe(1);
    expect(bridge.status()).toMatchObject({ connected: true, lastEventId: '10', reconnects: expect.any(Number) });
    expect(bridge.status().reconnects).toBeGreaterThanOrEqual(1);
  });

  test('a channel per event, skipping events mapped to null', async () => {
    const bus = newBus();
    const [seen] = listeners(bus, 1) as [SseEvent[]];
    bridge = bridgeUpstream({
      target: upstream.url,
      bus,
      channel: (event) => (event.event === 'log' ? `logs:etl:${(JSON.parse(event.data) as { wf: string }).wf}` : null),
      data: (event) => ({ id: event.id, line: (JSON.parse(event.data) as { line: string }).line }),
      logger,
    });
    bridge.start();
    await upstream.waitFor((u) => u.open === 1);
    upstream.send({ id: 'a', event: 'log', data: '{"wf":"wf1","line":"one"}' });
    upstream.send({ id: 'b', event: 'ping', data: '{}' });
    upstream.send({ id: 'c', event: 'log', data: '{"wf":"wf2","line":"two"}' });
    await received(bus, [seen], 2);
    expect(seen.map((e) => [e.channel, e.data])).toEqual([
      ['logs:etl:wf1', { id: 'a', line: 'one' }],
      ['logs:etl:wf2', { id: 'c', line: 'two' }],
    ]);
    expect(bridge.status()).toMatchObject({ events: 3, published: 2, skipped: 1, lastEventId: 'c' });
  });

  test('a bus that fails a publish: reconnects from the last published id, no loss, no duplicate', async () => {
    const bus = newBus();
    const [seen] = listeners(bus, 1) as [SseEvent[]];
    let calls = 0;
    const flaky: Bus = {
      ...bus,
      id: bus.id,
      publish(channel, data, options) {
        calls++;
        if (calls === 3) return Promise.reject(new Error('redis went away'));
        return bus.publish(channel, data, options);
      },
    };
    bridge = bridgeUpstream({
      target: upstream.url,
      bus: flaky,
      channel: 'logs:x',
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
      logger,
    });
    bridge.start();
    await upstream.waitFor((u) => u.open === 1);
    for (let i = 1; i <= 5; i++) upstream.send({ id: String(i), data: String(i) });
    await received(bus, [seen], 5);
    expect(seen.map((e) => e.data)).toEqual([1, 2, 3, 4, 5]);
    expect(upstream.requests[1]?.headers['last-event-id']).toBe('2');
    expect(logger.lines.some((l) => l.includes('could not publish'))).toBe(true);
  });

  test('upstream failing at first (500) is retried with backoff until it works', async () => {
    upstream.mode.status = 500;
    const bus = newBus();
    const [seen] = listeners(bus, 1) as [SseEvent[]];
    bridge = bridgeUpstream({
      target: upstream.url,
      bus,
      channel: 'logs:x',
      reconnect: { initialDelayMs: 20, maxDelayMs: 80 },
      logger,
    });
    bridge.start();
    await upstream.waitFor((u) => u.requests.length >= 3, 5000, 'three attempts');
    expect(bridge.status()).toMatchObject({ connected: false, lastError: 'upstream-status (500)' });
    upstream.mode.status = 200;
    await upstream.waitFor((u) => u.open === 1, 5000, 'a successful attempt');
    upstream.send({ id: '1', data: '"ok"' });
    await received(bus, [seen], 1);
    expect(bridge.status().reconnects).toBeGreaterThanOrEqual(3);
  });

  test('stop() closes the upstream connection and start() resumes from the last id', async () => {
    const bus = newBus();
    bridge = bridgeUpstream({ target: upstream.url, bus, channel: 'logs:x', logger });
    const [seen] = listeners(bus, 1) as [SseEvent[]];
    bridge.start();
    await upstream.waitFor((u) => u.open === 1);
    upstream.send({ id: '7', data: '1' });
    await received(bus, [seen], 1);
    await bridge.stop();
    await upstream.waitFor((u) => u.open === 0, 1000, 'the upstream stream to close');
    expect(bridge.status()).toMatchObject({ running: false, connected: false });
    bridge.start();
    await upstream.waitFor((u) => u.open === 1);
    expect(upstream.requests[1]?.headers['last-event-id']).toBe('7');
  });
});

describe('bridgeUpstream: lazy mode', () => {
  /** A stand-in for the gateway: what `sseMiddleware()` reports through `onSubscription`. */
  function fakeGateway() {
    const listeners = new Set<(topic: string, active: boolean) => void>();
    const source: SubscriptionSource & { emit(topic: string, active: boolean): void; listeners: number } = {
      onSubscription(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      emit(topic, active) {
        for (const listener of listeners) listener(topic, active);
      },
      get listeners() {
        return listeners.size;
      },
    };
    return source;
  }

  test('connects on the first matching subscriber and disconnects after the last', async () => {
    const gateway = fakeGateway();
    const bus = newBus();
    bridge = bridgeUpstream({
      target: upstream.url,
      bus,
      channel: (event) => `logs:etl:${event.event ?? 'none'}`,
      channels: ['logs:etl:*'],
      gateway,
      stopDelayMs: 0,
      logger,
    });
    bridge.start();
    expect(gateway.listeners).toBe(1);
    gateway.emit('metrics:cpu', true);
    gateway.emit('logs:other:x', true);
    expect(bridge.status().subscribers).toBe(0);
    expect(upstream.requests).toHaveLength(0);

    gateway.emit('logs:etl:ws1:wf1', true);
    gateway.emit('logs:*', true);
    await upstream.waitFor((u) => u.open === 1);
    expect(bridge.status().subscribers).toBe(2);

    gateway.emit('logs:etl:ws1:wf1', false);
    expect(upstream.open).toBe(1);
    gateway.emit('logs:*', false);
    await upstream.waitFor((u) => u.open === 0, 1000, 'the bridge to disconnect');
    expect(bridge.status()).toMatchObject({ running: true, connected: false, subscribers: 0 });

    gateway.emit('logs:etl:ws2:*', true);
    await upstream.waitFor((u) => u.open === 1 && u.requests.length === 2);
    await bridge.stop();
    expect(gateway.listeners).toBe(0);
    await upstream.waitFor((u) => u.open === 0, 1000, 'stop() to disconnect');
  });

  test('lingers for stopDelayMs, so a page reload does not reconnect upstream', async () => {
    const gateway = fakeGateway();
    bridge = bridgeUpstream({
      target: upstream.url,
      bus: newBus(),
      channel: 'alerts:x',
      gateway,
      stopDelayMs: 200,
      logger,
    });
    bridge.start();
    gateway.emit('alerts:x', true);
    await upstream.waitFor((u) => u.open === 1);
    gateway.emit('alerts:x', false);
    gateway.emit('alerts:x', true);
    gateway.emit('alerts:x', false);
    await upstream.waitFor((u) => u.open === 0, 2000, 'the linger to end');
    expect(upstream.requests).toHaveLength(1);
  });

  test('sees topics already active when the source can list them', async () => {
    const gateway = { ...fakeGateway(), activeTopics: () => ['alerts:x'] };
    bridge = bridgeUpstream({ target: upstream.url, bus: newBus(), channel: 'alerts:x', gateway, logger });
    bridge.start();
    await upstream.waitFor((u) => u.open === 1);
  });
});

describe('bridgeUpstream: options', () => {
  test('rejects wrong options with a fix-it TypeError', () => {
    const bus = createMemoryBus();
    expect(() => bridgeUpstream({ target: 'http://x', bus, channel: 'logs:*' })).toThrow(/must be a channel/);
    expect(() => bridgeUpstream({ url: 'http://x', bus, channel: 'logs' } as never)).toThrow(/did you mean `target`/);
    expect(() => bridgeUpstream({ target: 'http://x', channel: 'logs' } as never)).toThrow(/needs `bus`/);
    expect(() =>
      bridgeUpstream({ target: 'http://x', bus, channel: () => 'logs', gateway: { onSubscription: () => () => {} } }),
    ).toThrow(/needs `channels`/);
  });
});

describe('bridgeUpstream through a real gateway', () => {
  test('50 browser streams share one upstream connection that follows their subscriptions', async () => {
    const gateway = sseMiddleware({ channels: ['logs'], heartbeatMs: 60_000, logger });
    const app = express();
    app.use(gateway);
    const bff = await startServer(app);
    bridge = bridgeUpstream({
      target: `${upstream.url}/logs/stream?channels=logs:etl:*`,
      bus: gateway.bus,
      gateway,
      channel: (event) => (JSON.parse(event.data) as { channel: string }).channel,
      data: (event) => (JSON.parse(event.data) as { line: string }).line,
      channels: ['logs:etl:*'],
      stopDelayMs: 0,
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
      logger,
    });
    bridge.start();
    try {
      expect(upstream.requests).toHaveLength(0);
      const clients = await Promise.all(
        Array.from({ length: 50 }, () => openStream(`${bff.url}/events?channels=logs:etl:ws1:wf1`)),
      );
      await upstream.waitFor((u) => u.open === 1);
      const send = (i: number) =>
        upstream.send({ id: `u${i}`, data: JSON.stringify({ channel: 'logs:etl:ws1:wf1', line: `line ${i}` }) });
      for (let i = 1; i <= 3; i++) send(i);
      await Promise.all(clients.map((c) => c.until((s) => dataEvents(s.events).length >= 3)));

      await upstream.stop();
      for (let i = 4; i <= 5; i++) send(i);
      await upstream.restart();
      await upstream.waitFor((u) => u.open === 1 && u.requests.length === 2, 5000, 'the bridge to resume');
      expect(upstream.requests[1]?.headers['last-event-id']).toBe('u3');
      send(6);
      await Promise.all(clients.map((c) => c.until((s) => dataEvents(s.events).length >= 6)));
      for (const client of clients) {
        expect(dataEvents(client.events).map((e) => [e.channel, e.data])).toEqual(
          Array.from({ length: 6 }, (_, i) => ['logs:etl:ws1:wf1', `line ${i + 1}`]),
        );
      }
      expect(upstream.open).toBe(1);

      for (const client of clients) client.close();
      await upstream.waitFor((u) => u.open === 0, 2000, 'the bridge to let go after the last subscriber');
    } finally {
      await bridge.stop();
      await bff.close();
      await gateway.close();
    }
  });
});
