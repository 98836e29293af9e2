/**
 * Hardening of the Redis bus (issue 12): pattern watches without PSUBSCRIBE (item 9) and publishes that
 * survive a short outage (item 11), against a real redis-server.
 */
import { Redis } from 'ioredis';
import { createRedisBus } from '../../src/bus/redis';
import { publishCall, runScript } from '../../src/bus/redis/scripts';
import { encodeHeaderTail, redisNames } from '../../src/bus/redis/wire';
import type { Bus, Logger } from '../../src/types';
import { collect, settled } from '../helpers/bus';
import { type RedisServer, startRedisServer } from '../helpers/redis-server';

let server: RedisServer;
let buses: Bus[] = [];
let raw: Redis[] = [];
let prefixes = 0;
const quiet = (): Logger & { warn: jest.Mock; error: jest.Mock } => ({ warn: jest.fn(), error: jest.fn() });

beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});
afterEach(async () => {
  await Promise.all(buses.map((bus) => bus.close()));
  await Promise.all(raw.map((client) => client.quit().catch(() => undefined)));
  buses = [];
  raw = [];
});

function bus(prefix: string, options: { legacyPatterns?: boolean } = {}): Bus {
  const made = createRedisBus({ url: server.url, prefix, logger: quiet(), sharded: false, ...options });
  buses.push(made);
  return made;
}

function client(): Redis {
  const made = new Redis(server.url, { lazyConnect: false });
  raw.push(made);
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
    // The old instance's subscriber: PSUBSCRIBE on the exact channels' namespace, as before 0.2.
    const oldSubscriber = client();
    const oldReceived: string[] = [];
    oldSubscriber.on('pmessage', (_pattern, _channel, message: string) => oldReceived.push(message));
    await oldSubscriber.psubscribe(`${names.channelPrefix}jobs:*`);
    const fresh = bus(prefix, { legacyPatterns: true });
    fresh.watch('jobs:*');
    await settled(fresh);
    const onNew = collect(fresh);
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
