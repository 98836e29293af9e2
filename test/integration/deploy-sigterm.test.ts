/**
 * A rolling deploy with real processes: two BFF instances on one Redis behind a balancer that sends each
 * request to a ready instance; SIGTERM one while publishing. Every EventSource client resumes on the other
 * with nothing lost and nothing twice, and the reconnects are spread over the drain window.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { EventSource } from 'eventsource';
import { createRedisBus } from '../../src/bus/redis';
import { settled } from '../helpers/bus';
import { closeAll, eventually, onCleanup } from '../helpers/gateway';
import { startRedisServer } from '../helpers/redis-server';

afterEach(closeAll);
jest.setTimeout(60_000);

interface Instance {
  readonly url: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
}

async function startInstance(redisUrl: string): Promise<Instance> {
  const child = spawn(process.execPath, [join(__dirname, '../fixtures/gateway-process.js')], {
    env: { ...process.env, REDIS_URL: redisUrl, PREFIX: 'deploy', DRAIN_MS: '1500' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  onCleanup(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.once('data', (chunk: Buffer) => resolve((JSON.parse(chunk.toString()) as { port: number }).port));
    child.once('exit', () => reject(new Error('the instance exited before listening')));
  });
  return { url: `http://127.0.0.1:${port}`, child, exited };
}

test('SIGTERM one of two instances while publishing: every client moves over, no loss, no duplicate, spread out', async () => {
  const redis = await startRedisServer();
  onCleanup(() => redis.stop());
  const [a, b] = await Promise.all([startInstance(redis.url), startInstance(redis.url)]);
  const streamsTo = { a: [] as number[], b: [] as number[] };
  const balancer = createServer(async (req, res) => {
    let target = a;
    try {
      if ((await fetch(`${a.url}/events/health/ready`)).status !== 200) target = b;
    } catch {
      target = b;
    }
    if (req.url?.startsWith('/events?')) streamsTo[target === a ? 'a' : 'b'].push(Date.now());
    const upstream = httpRequest(new URL(req.url ?? '/', target.url), { headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
    res.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => balancer.listen(0, '127.0.0.1', resolve));
  onCleanup(() => {
    balancer.closeAllConnections();
    return new Promise<void>((resolve) => balancer.close(() => resolve()));
  });
  const front = `http://127.0.0.1:${(balancer.address() as AddressInfo).port}`;

  let ready = 0;
  const clients = Array.from({ length: 20 }, () => {
    const received: number[] = [];
    const source = new EventSource(`${front}/events?channels=logs:deploy`);
    source.addEventListener('logs', (e) => received.push((JSON.parse(e.data) as { data: number }).data));
    // sse:ready comes once the instance's Redis subscription is in effect: from then on nothing is missed.
    source.addEventListener('sse:ready', () => ready++);
    onCleanup(() => source.close());
    return received;
  });
  await eventually(() => streamsTo.a.length === 20 && ready === 20, 10_000, 'twenty streams ready on A');

  const publisher = createRedisBus({ url: redis.url, prefix: 'deploy', logger: { warn: jest.fn(), error: jest.fn() } });
  onCleanup(() => publisher.close());
  await settled(publisher);
  await publisher.publish('logs:deploy', -1);
  await eventually(() => clients.every((c) => c.length === 1), 10_000, 'the first event everywhere');
  let n = 0;
  const publishing = (async () => {
    for (; n < 300; n++) {
      await publisher.publish('logs:deploy', n);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  await eventually(() => n > 30, 5000, 'publishing to start');
  const terminated = Date.now();
  a.child.kill('SIGTERM');
  expect(await a.exited).toBe(0);
  await publishing;

  const expected = [-1, ...Array.from({ length: 300 }, (_, i) => i)];
  await eventually(() => clients.every((c) => c.length >= expected.length), 20_000, 'every event at every client');
  for (const received of clients) expect(received).toEqual(expected);
  // Spread: the moves to B start early in the window and end late in it, not all at once.
  const moves = streamsTo.b.map((time) => time - terminated).sort((x, y) => x - y);
  expect(moves.length).toBeGreaterThanOrEqual(20);
  expect((moves[moves.length - 1] as number) - (moves[0] as number)).toBeGreaterThan(600);
});
