/**
 * The sharded Redis bus through a failover: the master owning the bus's slot is killed, its replica is
 * promoted, and a connected subscriber carries on with every event once, in order.
 */
import type { Bus, SseEvent } from '../../src/types';
import { until, watchAndCollect } from '../helpers/bus';
import { closeAll } from '../helpers/gateway';
import { redisBus } from '../helpers/redis-bus';
import { eventually, redisClusterForSuite } from '../helpers/redis-cluster';
import type { RedisServer } from '../helpers/redis-server';

const local = redisClusterForSuite(3, 1, 40_000);
afterEach(closeAll);

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
  const a = redisBus({ redis: cluster, prefix: 'fo', watchdogMs: 500 });
  const b = redisBus({ redis: cluster, prefix: 'fo', watchdogMs: 500 });
  const onB = await watchAndCollect(b, 'logs:*', [a], 10_000);
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
