/**
 * The client against two gateway instances on one Redis, with a "load balancer" that sends every
 * subscription change to the instance that does not hold the stream: the change travels over the bus.
 */
import { createRedisBus } from '../../src/bus/redis';
import { settled } from '../helpers/bus';
import { attempts, nodeClient, record, recordRequests, type SeenRequest } from '../helpers/client';
import { closeAll, type GatewayHarness, onCleanup, startGateway } from '../helpers/gateway';
import { type RedisServer, startRedisServer } from '../helpers/redis-server';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(closeAll);

async function instance(): Promise<GatewayHarness & { seen: SeenRequest[] }> {
  const bus = createRedisBus({ url: redis.url, prefix: 'client', logger: { warn: jest.fn(), error: jest.fn() } });
  onCleanup(() => bus.close());
  let seen: SeenRequest[] = [];
  const harness = await startGateway(
    { channels: ['logs'], authentication: () => ({ id: 'u1' }), bus },
    {
      before: (app) => {
        seen = recordRequests(app);
      },
    },
  );
  await settled(bus);
  return { ...harness, seen };
}

const numbers = (events: readonly { data: unknown }[]) => events.map((e) => e.data as number);

it('changes sent to the other instance reach the stream over Redis; the staying channel loses nothing', async () => {
  const [a, b] = [await instance(), await instance()];
  // Streams go to instance a, subscription changes to instance b.
  const crossFetch: typeof fetch = (input, init) =>
    init?.method === 'POST' ? fetch(String(input).replace(a.url, b.url), init) : fetch(input, init);
  const client = nodeClient(`${a.url}/events`, { fetch: crossFetch });
  const stay = record(client, 'logs:stay');
  const gone = record(client, 'logs:gone');
  await Promise.all([stay.subscribed, gone.subscribed]);

  let n = 0;
  let publishing = true;
  const publisher = (async () => {
    while (publishing) {
      const value = n++;
      await b.gateway.publish('logs:stay', value);
      await b.gateway.publish('logs:gone', value);
      await b.gateway.publish('logs:new', value);
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
  })();
  await stay.until((r) => r.events.length >= 10, 10_000, '10 events');
  gone.unsubscribe();
  const goneCount = gone.events.length;
  const added = record(client, 'logs:new');
  await added.subscribed;
  const liveFrom = n;
  await added.until((r) => numbers(r.events).some((v) => v >= liveFrom + 10), 10_000, '10 more events');
  publishing = false;
  await publisher;

  await stay.until((r) => r.events.length === n, 10_000, 'every event');
  expect(numbers(stay.events)).toEqual(Array.from({ length: n }, (_, i) => i));
  expect(gone.events).toHaveLength(goneCount);
  const fresh = numbers(added.events).filter((v) => v >= liveFrom);
  expect(fresh).toEqual(Array.from({ length: n - liveFrom }, (_, i) => liveFrom + i));
  // One stream, on a; the change was answered by b (202) and applied by a.
  expect(attempts(a.seen)).toHaveLength(1);
  expect(attempts(b.seen)).toHaveLength(0);
  expect(b.seen.filter((r) => r.method === 'POST')).toHaveLength(1);
  expect(a.gateway.activeTopics().sort()).toEqual(['logs:new', 'logs:stay']);
});
