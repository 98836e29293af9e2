/**
 * The Redis bus on a local Redis Cluster of three masters (cluster-enabled redis-server processes),
 * given an ioredis Cluster client: the hash-tagged scripts run in one slot, and classic pub/sub (which
 * the cluster bus broadcasts to every node) reaches the subscriber wherever ioredis connected it.
 */
import { execFile } from 'node:child_process';
import type { Cluster } from 'ioredis';
import { createRedisBus } from '../../src/redis-bus';
import type { Bus, SseEvent } from '../../src/types';
import { collect, settled } from '../helpers/bus';
import { type RedisServer, startRedisServer } from '../helpers/redis-server';

const nodes: RedisServer[] = [];
let cluster: Cluster;
const buses: Bus[] = [];

beforeAll(async () => {
  for (let i = 0; i < 3; i++) {
    nodes.push(await startRedisServer(['--cluster-enabled', 'yes', '--cluster-node-timeout', '2000']));
  }
  await new Promise<void>((resolve, reject) => {
    execFile(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      (error, _stdout, stderr) =>
        error ? reject(new Error(`redis-cli --cluster create failed: ${stderr}`)) : resolve(),
    );
  });
  for (const node of nodes) {
    const deadline = Date.now() + 15_000;
    while (!(await node.cli('CLUSTER', 'INFO')).includes('cluster_state:ok')) {
      if (Date.now() > deadline) throw new Error(`node ${node.port} never reached cluster_state:ok`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const { Cluster: IoCluster } = await import('ioredis');
  cluster = new IoCluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
  await new Promise<void>((resolve) => cluster.once('ready', () => resolve()));
}, 30_000);

afterAll(async () => {
  await Promise.all(buses.map((bus) => bus.close()));
  cluster?.disconnect();
  await Promise.all(nodes.map((node) => node.stop()));
});

test('two buses on one ioredis Cluster: shared sequence, cross-instance delivery, replay', async () => {
  const a = createRedisBus({ redis: cluster, prefix: 'cl' });
  const b = createRedisBus({ redis: cluster, prefix: 'cl' });
  buses.push(a, b);
  b.watch('logs:*');
  await Promise.all([settled(a, 10_000), settled(b, 10_000)]);
  const onB = collect(b);
  const published: SseEvent[] = [];
  for (let i = 0; i < 20; i++) published.push(await (i % 2 ? a : b).publish(`logs:w${i % 3}`, i));
  const received = await onB.count(20);
  expect(received.map((e) => e.id)).toEqual(published.map((e) => e.id));
  const replayed = await a.replay(published[9]?.id as string, { match: () => true, maxCount: 100, maxAgeMs: 60_000 });
  expect(replayed).toMatchObject({ ok: true, head: published[19]?.id });
  if (replayed.ok) expect(replayed.events.map((e) => e.data)).toEqual(published.slice(10).map((e) => e.data));
  await a.close();
  expect(cluster.status).toBe('ready');
}, 20_000);
