// What a Last-Event-ID replay costs on the Redis bus when the gap after the id is long: one stream's 10 own
// events among GAP events of other channels (the replay window counts only the former, so the whole gap is
// read, in pages of 1,000). Cold: a fresh bus (no shared pages); warm: the same replay again; storm: 100 at
// once on a fresh bus, as after a deploy.
//
//   npm run build && node bench/redis-replay-gap.mjs                 # starts a throwaway redis-server
//   GAP=50000 PAYLOAD=1000 REDIS_URL=redis://127.0.0.1:6379 node bench/redis-replay-gap.mjs
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const dist = process.env.SSE_DIST ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const { createRedisBus } = require(join(dist, 'bus/redis/index.js'));

const GAP = Number(process.env.GAP ?? 10_000);
const PAYLOAD = Number(process.env.PAYLOAD ?? 200);
const STORM = 100;

async function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startRedis() {
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

const redis = await startRedis();
const prefix = `gap${Date.now()}`;
const open = async () => {
  const bus = createRedisBus({ url: redis.url, prefix, history: { size: Math.max(50_000, GAP * 2) } });
  while (!bus.status().connected) await new Promise((resolve) => setTimeout(resolve, 5));
  return bus;
};
const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];

const publisher = await open();
const from = await publisher.publish('logs:a', { n: 0 });
const pad = 'x'.repeat(PAYLOAD);
for (let i = 0; i < GAP; i += 500) {
  const batch = [];
  for (let j = i; j < Math.min(GAP, i + 500); j++)
    batch.push(publisher.publish(j % (GAP / 10) ? 'logs:b' : 'logs:a', { j, pad }));
  await Promise.all(batch);
}
const query = { match: (channel) => channel === 'logs:a', maxCount: 1000, maxAgeMs: 600_000 };
const cold = [];
const warm = [];
let replayed;
for (let round = 0; round < 5; round++) {
  const bus = await open();
  let start = performance.now();
  const result = await bus.replay(from.id, query);
  cold.push(performance.now() - start);
  replayed = result.ok ? result.events.length : result.reason;
  start = performance.now();
  await bus.replay(from.id, query);
  warm.push(performance.now() - start);
  await bus.close();
}
const bus = await open();
const start = performance.now();
await Promise.all(Array.from({ length: STORM }, () => bus.replay(from.id, query)));
const storm = performance.now() - start;
await Promise.all([bus.close(), publisher.close()]);
await redis.stop();
console.log(`one replay after a gap of ${GAP} events (${PAYLOAD} B payloads), medians of 5, ms`);
console.table({
  redis: {
    replayed,
    coldMs: Math.round(median(cold)),
    warmMs: Math.round(median(warm)),
    [`${STORM}ConcurrentMs`]: Math.round(storm),
  },
});
