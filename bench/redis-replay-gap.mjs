// What a Last-Event-ID replay costs on the Redis bus when the gap after the id is long: one stream's 10 own
// events among GAP events of other channels (the replay window counts only the former, so the whole gap is
// read, in pages of 1,000). Cold: a fresh bus (no shared pages); warm: the same replay again; storm: 100 at
// once on a fresh bus, as after a deploy.
//
//   npm run build && node bench/redis-replay-gap.mjs                 # starts a throwaway redis-server
//   GAP=50000 PAYLOAD=1000 REDIS_URL=redis://127.0.0.1:6379 node bench/redis-replay-gap.mjs
import { busReady, fromDist, startRedis } from './redis.mjs';

const { createRedisBus } = fromDist('bus/redis/index.js');

const GAP = Number(process.env.GAP ?? 10_000);
const PAYLOAD = Number(process.env.PAYLOAD ?? 200);
const STORM = 100;

const redis = await startRedis();
const prefix = `gap${Date.now()}`;
const open = async () => {
  const bus = createRedisBus({ url: redis.url, prefix, history: { size: Math.max(50_000, GAP * 2) } });
  await busReady(bus);
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
