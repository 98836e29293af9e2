/**
 * The Redis bus on a local Redis Cluster of three masters (cluster-enabled redis-server processes),
 * given an ioredis Cluster client: the hash-tagged scripts run in one slot; sharded pub/sub (the default)
 * keeps messages on that slot's owner, classic pub/sub (which the cluster bus broadcasts to every node)
 * reaches the subscriber wherever ioredis connected it.
 */
import { keySlot } from '../../src/bus/redis/cluster';
import type { SseEvent } from '../../src/types';
import { collect, settled, until, watchAndCollect } from '../helpers/bus';
import { closeAll } from '../helpers/gateway';
import { redisBus } from '../helpers/redis-bus';
import { redisClusterForSuite } from '../helpers/redis-cluster';
import type { RedisServer } from '../helpers/redis-server';

const local = redisClusterForSuite(3, 0, 30_000);
afterEach(closeAll);

test.each([
  ['sharded pub/sub (the default on a Cluster)', undefined],
  ['classic pub/sub', false],
])(
  'two buses on one ioredis Cluster, %s: shared sequence, cross-instance delivery, replay, signals',
  async (_mode, sharded) => {
    const cluster = local.client;
    const prefix = sharded === false ? 'cl-classic' : 'cl';
    const a = redisBus({ redis: cluster, prefix, ...(sharded === false ? { sharded } : {}) });
    const b = redisBus({ redis: cluster, prefix, ...(sharded === false ? { sharded } : {}) });
    expect(b.status().sharded).toBe(sharded !== false);
    const onB = await watchAndCollect(b, 'logs:*', [a], 10_000);
    const published: SseEvent[] = [];
    for (let i = 0; i < 20; i++) published.push(await (i % 2 ? a : b).publish(`logs:w${i % 3}`, i));
    const received = await onB.count(20);
    expect(received.map((e) => e.id)).toEqual(published.map((e) => e.id));
    const replayed = await a.replay(published[9]?.id as string, { match: () => true, maxCount: 100, maxAgeMs: 60_000 });
    expect(replayed).toMatchObject({ ok: true, head: published[19]?.id });
    if (replayed.ok) expect(replayed.events.map((e) => e.data)).toEqual(published.slice(10).map((e) => e.data));
    const signalled = new Promise((resolve) => b.onSignal?.(resolve));
    await a.signal?.({ type: 'disconnect', principalId: 'u1' });
    await expect(signalled).resolves.toEqual({ type: 'disconnect', principalId: 'u1' });
    await a.close();
    expect(cluster.status).toBe('ready');
  },
  20_000,
);

test('sharded: messages stay on the slot owner, and a killed subscriber link recovers with no loss', async () => {
  const { nodes, client: cluster } = local;
  const a = redisBus({ redis: cluster, prefix: 'cl-kill' });
  const b = redisBus({ redis: cluster, prefix: 'cl-kill' });
  b.watch('metrics:m1');
  await Promise.all([settled(a, 10_000), settled(b, 10_000)]);
  const slot = Number(await (nodes[0] as RedisServer).cli('CLUSTER', 'KEYSLOT', '{cl-kill}'));
  expect(keySlot('{cl-kill}:seq')).toBe(slot);
  const owner = cluster.slots[slot]?.[0];
  const ownerNode = nodes.find((n) => owner === `127.0.0.1:${n.port}`) as RedisServer;
  expect(ownerNode).toBeDefined();
  for (const node of nodes) {
    const shardChannels = await node.cli('PUBSUB', 'SHARDCHANNELS', '{cl-kill}:*');
    expect(shardChannels.includes('{cl-kill}:ch:metrics:m1')).toBe(node === ownerNode);
    expect((await node.cli('PUBSUB', 'CHANNELS', '{cl-kill}:*')).trim()).toBe('');
  }
  const onB = collect(b);
  const published: SseEvent[] = [];
  for (let i = 0; i < 10; i++) published.push(await a.publish('metrics:m1', i));
  await onB.count(10);
  await ownerNode.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
  for (let i = 10; i < 30; i++) published.push(await a.publish('metrics:m1', i));
  await until(() => b.status().reconnects === 1, 10_000, 'the subscriber to reconnect');
  await onB.count(30, 10_000);
  expect(onB.events.map((e) => e.id)).toEqual(published.map((e) => e.id));
}, 30_000);

test('sharded: the subscriber follows its slot to another node (resharding) and misses nothing', async () => {
  const { nodes, client: cluster } = local;
  const a = redisBus({ redis: cluster, prefix: 'cl-move', watchdogMs: 300 });
  const b = redisBus({ redis: cluster, prefix: 'cl-move', watchdogMs: 300 });
  const onB = await watchAndCollect(b, 'alerts:*', [a], 10_000);
  const published: SseEvent[] = [];
  for (let i = 0; i < 5; i++) published.push(await a.publish('alerts:u1', i));
  await onB.count(5);

  // Move the slot, keys included, from its owner to another master, the way redis-cli --cluster reshard does.
  const slot = keySlot('{cl-move}');
  const byPort = (port: number) => nodes.find((n) => n.port === port) as RedisServer;
  const source = byPort(Number(cluster.slots[slot]?.[0]?.split(':')[1]));
  const target = nodes.find((n) => n !== source) as RedisServer;
  const id = async (node: RedisServer) => (await node.cli('CLUSTER', 'MYID')).trim();
  const [sourceId, targetId] = [await id(source), await id(target)];
  await target.cli('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', sourceId);
  await source.cli('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', targetId);
  const keys = (await source.cli('CLUSTER', 'GETKEYSINSLOT', String(slot), '100')).split('\n').filter(Boolean);
  await source.cli('MIGRATE', '127.0.0.1', String(target.port), '', '0', '5000', 'KEYS', ...keys);
  for (const node of nodes) await node.cli('CLUSTER', 'SETSLOT', String(slot), 'NODE', targetId);

  for (let i = 5; i < 15; i++) {
    for (let attempt = 0; ; attempt++) {
      try {
        published.push(await a.publish('alerts:u1', i));
        break;
      } catch (error) {
        // Until the Cluster client learns of the move (MOVED), a publish may fail; the caller retries.
        if (attempt > 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
  await onB.count(15, 15_000);
  expect(onB.events.map((e) => e.id)).toEqual(published.map((e) => e.id));
  expect((await target.cli('PUBSUB', 'SHARDCHANNELS', '{cl-move}:*')).includes('{cl-move}:pt:alerts')).toBe(true);
}, 40_000);
