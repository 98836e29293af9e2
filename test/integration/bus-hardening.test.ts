/**
 * Hardening of the buses (issue 12, items 8, 9 and 11): what keyed large publishes did to the memory bus's
 * heap. The Redis items live in redis-hardening.test.ts.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createMemoryBus } from '../../src';

/** A real collection: exposed at run time, since jest does not start node with --expose-gc. */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

describe('the memory bus idempotency cache', () => {
  test('keyed 60 KB publishes do not keep their payloads once the history has dropped them', async () => {
    const gc = collector();
    const bus = createMemoryBus({ history: { size: 10 } });
    const payload = 'x'.repeat(60_000);
    const first = await bus.publish('jobs:j0', { payload }, { idempotencyKey: 'job-0' });
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 1; i < 2000; i++) await bus.publish(`jobs:j${i}`, { payload }, { idempotencyKey: `job-${i}` });
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    // 2,000 encoded payloads are 120 MB; 2,000 records of id, channel and time are a few hundred KB.
    expect(grown).toBeLessThan(20 * 1024 * 1024);
    const idempotency = bus.status().idempotency as { keys: number; bytes: number };
    expect(idempotency.keys).toBe(2000);
    expect(idempotency.bytes).toBeLessThan(1024 * 1024);
    // The first key's event left the history long ago, and a retry still resolves to its id and time.
    const retried = await bus.publish('jobs:j0', { payload }, { idempotencyKey: 'job-0' });
    expect(retried).toMatchObject({ id: first.id, channel: 'jobs:j0', time: first.time, data: { payload } });
    expect(bus.status().head).not.toBe(first.id);
    await bus.close();
  });

  test('the records are bounded by bytes as well as by count', async () => {
    const bus = createMemoryBus({ history: false });
    const long = 'k'.repeat(200);
    for (let i = 0; i < 10_000; i++) await bus.publish('jobs:j', i, { idempotencyKey: `${long}${i}`.slice(-200) });
    const { keys, bytes } = bus.status().idempotency as { keys: number; bytes: number };
    expect(bytes).toBeLessThanOrEqual(4 * 1024 * 1024);
    expect(keys).toBeLessThan(10_000);
    // The newest keys survive the bound; the oldest made room.
    const last = await bus.publish('jobs:j', 'again', { idempotencyKey: `${long}9999`.slice(-200) });
    expect(last.id).toMatch(/-10000$/);
    await bus.close();
  });
});
