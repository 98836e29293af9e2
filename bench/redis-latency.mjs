// Cross-instance publish→receive latency (p50/p99) of the Redis bus against the memory bus in the same
// run, and deliveries/s with two instances (publisher A, receiver B) on one Redis.
//
//   npm run build && node bench/redis-latency.mjs            # starts a throwaway redis-server
//   REDIS_URL=redis://127.0.0.1:6379 node bench/redis-latency.mjs
//   SSE_DIST=/tmp/sse-build node bench/redis-latency.mjs      # use another build directory
import { busReady, fromDist, startRedis } from './redis.mjs';

const { createRedisBus } = fromDist('bus/redis/index.js');
const { createMemoryBus } = fromDist('bus/memory-bus.js');

const ROUNDS = Number(process.env.ROUNDS ?? 2000);
const BURST = Number(process.env.BURST ?? 20000);
const WINDOW = 200;

const ready = (bus) => busReady(bus, { subscribed: true });

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** One publish at a time; the clock runs from the publish call to the listener on the other instance. */
async function latency(a, b) {
  const samples = [];
  let pending;
  b.listen(() => pending?.());
  for (let i = 0; i < ROUNDS; i++) {
    const arrived = new Promise((resolve) => {
      pending = resolve;
    });
    const start = process.hrtime.bigint();
    await a.publish('bench:lat', { i, pad: 'x'.repeat(100) });
    await arrived;
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  samples.sort((x, y) => x - y);
  return { p50: percentile(samples, 50).toFixed(3), p99: percentile(samples, 99).toFixed(3) };
}

/** Publish as fast as a window of WINDOW in-flight publishes allows; count deliveries on B. */
async function throughput(a, b) {
  let received = 0;
  let done;
  const finished = new Promise((resolve) => {
    done = resolve;
  });
  b.listen(() => {
    if (++received === BURST) done();
  });
  const start = process.hrtime.bigint();
  const inflight = new Set();
  for (let i = 0; i < BURST; i++) {
    const p = a.publish('bench:tp', { i }).finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= WINDOW) await Promise.race(inflight);
  }
  await finished;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return Math.round(BURST / seconds);
}

const redis = await startRedis();
const results = {};
{
  const bus = createMemoryBus();
  results.memory = { ...(await latency(bus, bus)) };
  const fresh = createMemoryBus();
  results.memory.deliveriesPerSecond = await throughput(fresh, fresh);
  await bus.close();
  await fresh.close();
}
{
  const prefix = `bench${Date.now()}`;
  const a = createRedisBus({ url: redis.url, prefix });
  const b = createRedisBus({ url: redis.url, prefix, history: { size: BURST } });
  b.watch('bench:*');
  await Promise.all([ready(a), ready(b)]);
  results.redis = { ...(await latency(a, b)) };
  const b2 = createRedisBus({ url: redis.url, prefix });
  b2.watch('bench:tp');
  await ready(b2);
  results.redis.deliveriesPerSecond = await throughput(a, b2);
  await Promise.all([a.close(), b.close(), b2.close()]);
}
await redis.stop();
console.log(`latency in ms over ${ROUNDS} sequential publishes; throughput over ${BURST} events, window ${WINDOW}`);
console.table(results);
