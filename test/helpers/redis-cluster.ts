import { execFile } from 'node:child_process';
import type { Cluster } from 'ioredis';
import { type RedisServer, startRedisServer } from './redis-server';
import { forSuite } from './suite';

/** A local Redis Cluster of cluster-enabled redis-server processes, and an ioredis Cluster client on it. */
export interface RedisCluster {
  readonly nodes: RedisServer[];
  readonly client: Cluster;
  /** The node listening on `host:port` as ioredis names it (`127.0.0.1:6380`). */
  node(key: string | undefined): RedisServer | undefined;
  /** Disconnect the client and stop every node. */
  stop(): Promise<void>;
}

/** Poll `check` every 100 ms until it holds. */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Start `masters × (1 + replicas)` nodes, join them with `redis-cli --cluster create`, and resolve once
 * every node reports `cluster_state:ok` and the ioredis client is ready.
 */
export async function startRedisCluster(masters: number, replicas = 0): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  for (let i = 0; i < masters * (1 + replicas); i++) {
    nodes.push(await startRedisServer(['--cluster-enabled', 'yes', '--cluster-node-timeout', '1000']));
  }
  await new Promise<void>((resolve, reject) => {
    execFile(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      (error, _stdout, stderr) =>
        error ? reject(new Error(`redis-cli --cluster create failed: ${stderr}`)) : resolve(),
    );
  });
  for (const node of nodes) {
    await eventually(
      async () => (await node.cli('CLUSTER', 'INFO')).includes('cluster_state:ok'),
      15_000,
      `node ${node.port} to reach cluster_state:ok`,
    );
  }
  // cluster_state:ok can come before every node knows the replicas; tests that fail over need them known.
  for (const node of nodes) {
    await eventually(
      async () =>
        (await node.cli('CLUSTER', 'NODES')).split('\n').filter((l) => /[ ,]slave /.test(l)).length ===
        masters * replicas,
      15_000,
      `node ${node.port} to know all ${masters * replicas} replicas`,
    );
  }
  const { Cluster: IoCluster } = await import('ioredis');
  const client = new IoCluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
  await new Promise<void>((resolve) => client.once('ready', () => resolve()));
  return {
    nodes,
    client,
    node: (key) => nodes.find((n) => key === `127.0.0.1:${n.port}`),
    async stop() {
      client.disconnect();
      await Promise.all(nodes.map((node) => node.stop()));
    },
  };
}

/**
 * One local Redis Cluster for the enclosing file or `describe`: started in `beforeAll` (allowed `timeoutMs`),
 * stopped in `afterAll`. The returned object stands for it once `beforeAll` has run.
 *
 * @example
 * const local = redisClusterForSuite(3);
 * test('…', () => redisBus({ redis: local.client, prefix: 'cl' }));
 */
export function redisClusterForSuite(masters: number, replicas = 0, timeoutMs = 40_000): RedisCluster {
  const current = forSuite(
    'Redis Cluster',
    () => startRedisCluster(masters, replicas),
    (cluster) => cluster.stop(),
    timeoutMs,
  );
  return {
    get nodes() {
      return current().nodes;
    },
    get client() {
      return current().client;
    },
    node: (key) => current().node(key),
    stop: () => current().stop(),
  };
}
