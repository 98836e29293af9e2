// Shared by the Redis bench scripts (redis-latency.mjs, redis-replay-gap.mjs): the built library and a
// throwaway redis-server. bench/run.mjs keeps its own, which it tracks for clean-up and checks with PING.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const dist = process.env.SSE_DIST ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');

/** A module of the built library, from SSE_DIST (default ./dist): `fromDist('bus/redis/index.js')`. */
export function fromDist(path) {
  return require(join(dist, path));
}

async function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** REDIS_URL when set, else a redis-server of its own on a free port, no persistence: `{ url, stop() }`. */
export async function startRedis() {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => {} };
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'],
    {
      stdio: 'ignore',
    },
  );
  await new Promise((resolve, reject) => {
    child.once('error', () =>
      reject(new Error('redis-server not found: apt-get install redis-server, or set REDIS_URL')),
    );
    child.once('spawn', resolve);
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => child.once('exit', resolve).kill('SIGTERM')),
  };
}

/** Resolves once the bus is connected and, with `subscribed`, has no subscription still in flight. */
export async function busReady(bus, { subscribed = false } = {}) {
  while (!bus.status().connected || (subscribed && bus.status().subscribing))
    await new Promise((resolve) => setTimeout(resolve, 5));
}
