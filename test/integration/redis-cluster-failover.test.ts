/**
 * The sharded Redis bus through a failover: the master owning the bus's slot is killed, its replica is
 * promoted, and a connected subscriber carries on with every event once, in order.
 */
import { createRedisBus } from '../../src/bus/redis';
import type { Bus, SseEvent } from '../../src/types';
import { collect, settled, until } from '../helpers/bus';
import { eventually, type RedisCluster, startRedisCluster } from '../helpers/redis-cluster';
import type { RedisServer } from '../helpers/redis-server';

let local: RedisCluster;
const buses: Bus[] = [];
const quiet = { warn() {}, error() {} };

beforeAll(async () => {
  local = await startRedisCluster(3, 1);
}, 40_000);

afterAll(async () => {
  await Promise.all(buses.map((bus) => bus.close()));
  await local?.stop();
});

/** `master_repl_offset` from INFO replication. */
async function replOffset(node: RedisServer): Promise<number> {
  return Number(/master_repl_offset:(\d+)/.exec(await node.cli('INFO', 'replication'))?.[1] ?? -1);
}

/** Publish, retrying while the cluster has no master for the slot (the caller's job during a failover). */
async function publishRetrying(bus: Bus, channel: string, data: unknown): Promise<SseEvent> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await bus.publish(channel, data);
    } catch (error) {
      if (attempt >= 150) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

test('the slot master dies, its replica takes over: the subscriber follows it and misses nothing', async () => {
  const cluster = local.client;
  const a = createRedisBus({ redis: cluster, prefix: 'fo', logger: quiet, watchdogMs: 500 });
  const b = createRedisBus({ redis: cluster, prefix: 'fo', logger: quiet, watchdogMs: 500 });
  buses.push(a, b);
  b.watch('logs:*');
  await Promise.all([settled(a, 10_000), settled(b, 10_000)]);
  const onB = collect(b);
  const published: SseEvent[] = [];
  for (let i = 0; i < 10; i++) published.push(await a.publish(`logs:w${i % 2}`, i));
  await onB.count(10);

  const slot = Number(await (local.nodes[0] as RedisServer).cli('CLUSTER', 'KEYSLOT', '{fo}'));
  const master = local.node(cluster.slots[slot]?.[0]) as RedisServer;
  const masterId = (await master.cli('CLUSTER', 'MYID')).trim();
  const replicaLine = (await master.cli('CLUSTER', 'NODES'))
    .split('\n')
    .find((line) => line.includes(`slave ${masterId}`));
  const replica = local.node(replicaLine?.split(' ')[1]?.split('@')[0]) as RedisServer;
  expect(replica).toBeDefined();
  // Replication is asynchronous: let the replica catch up, as a cluster at rest has.
  await eventually(async () => (await replOffset(replica)) === (await replOffset(master)), 10_000, 'replication');

  await master.stop();
  for (let i = 10; i < 20; i++) published.push(await publishRetrying(a, `logs:w${i % 2}`, i));
  await onB.count(20, 20_000);
  expect(onB.events.map((e) => e.id)).toEqual(published.map((e) => e.id));
  expect(await replica.cli('ROLE')).toMatch(/^master/);
  await until(() => b.status().connected === true, 10_000, 'the subscriber to report connected');
}, 60_000);
