/**
 * Redis restarted (the process stopped and started again on the same port, without persistence) in
 * the middle of a sequenced stream of 1,000 events: a listener on another instance ends with every
 * event whose publish succeeded, exactly once, in publish order.
 */

import { parseEventId } from '../../src/protocol/event-id';
import type { SseEvent } from '../../src/types';
import { until, watchAndCollect } from '../helpers/bus';
import { closeAll, recordingLogger } from '../helpers/gateway';
import { redisBus } from '../helpers/redis-bus';
import { redisServerForSuite } from '../helpers/redis-server';

const server = redisServerForSuite();
afterEach(closeAll);

test('1,000 events across a Redis restart: every successful publish delivered once, in order', async () => {
  const logger = recordingLogger();
  // A deadline shorter than the restart, so that publishes during it reject and are retried by the app
  // (with the default, the bus holds them through the restart: redis-hardening.test.ts).
  const publisher = redisBus({ url: server.url, logger, watchdogMs: 200, publishTimeoutMs: 50 });
  const listener = redisBus({ url: server.url, logger, watchdogMs: 200 });
  const received = await watchAndCollect(listener, 'seq:*', [publisher]);

  const succeeded: SseEvent[] = [];
  let rejected = 0;
  let restart: Promise<void> | undefined;
  for (let i = 0; i < 1000; i++) {
    if (i === 400) restart = server.restart();
    // A publisher retries a rejected publish, as an application would.
    for (;;) {
      try {
        succeeded.push(await publisher.publish(`seq:${i % 5}`, { i }));
        break;
      } catch (error) {
        expect(error).toMatchObject({ code: 'ERR_SSE_BUS_UNAVAILABLE' });
        rejected++;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  }
  await restart;
  const last = succeeded[succeeded.length - 1] as SseEvent;
  await received.find((e) => e.id === last.id, 15_000);

  // No id twice, ids increasing within each epoch, and one epoch change (the restart).
  const ids = received.events.map((e) => e.id);
  expect(new Set(ids).size).toBe(ids.length);
  const epochs = [...new Set(ids.map((id) => parseEventId(id)?.epoch))];
  expect(epochs).toHaveLength(2);
  for (let k = 1; k < ids.length; k++) {
    const [prev, next] = [parseEventId(ids[k - 1] as string), parseEventId(ids[k] as string)];
    if (prev?.epoch === next?.epoch) expect(next?.seq).toBeGreaterThan(prev?.seq ?? Infinity);
  }
  // Every successful publish exactly once and in publish order (a publish that failed after Redis ran
  // it may also appear: the retry then makes its payload appear twice, under two ids).
  const wanted = new Set(succeeded.map((e) => e.id));
  expect(received.events.filter((e) => wanted.has(e.id)).map((e) => e.id)).toEqual(succeeded.map((e) => e.id));
  expect(succeeded.map((e) => (e.data as { i: number }).i)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  expect(rejected).toBeGreaterThan(0);
  await until(() => listener.status().connected, 5000, 'the listener to be connected');
  expect(listener.status().reconnects).toBeGreaterThanOrEqual(1);
  expect(logger.warn).toHaveBeenCalledWith(expect.stringContaining('Redis history restarted'));
}, 30_000);
