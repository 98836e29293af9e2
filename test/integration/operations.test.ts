/**
 * Operations: the probes, drain, the audit trail, the admin views and the Prometheus figures.
 */
import diagnostics from 'node:diagnostics_channel';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventSource } from 'eventsource';
import type { Request } from 'express';
import { register as globalRegistry, Registry } from 'prom-client';
import { createRedisBus } from '../../src/bus/redis';
import { registerMetrics } from '../../src/ops/metrics';
import type { AuditEntry, SseOptions } from '../../src/types';
import { settled } from '../helpers/bus';
import { closeAll, eventually, onCleanup, startGateway } from '../helpers/gateway';
import { startRedisServer } from '../helpers/redis-server';
import { dataEvents, openStream } from '../helpers/sse-client';

afterEach(closeAll);

const byHeader = (req: Request) => {
  const id = req.get('x-user');
  return id ? { id } : null;
};

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: await res.json() };
}

describe('probes', () => {
  test('live and ready answer 200; ready turns 503 draining on drain(), closing after close()', async () => {
    const { url, gateway } = await startGateway({ channels: ['logs'] });
    expect(await getJson(`${url}/events/health/live`)).toEqual({ status: 200, body: { status: 'live' } });
    expect(await getJson(`${url}/events/health/ready`)).toEqual({ status: 200, body: { status: 'ready' } });
    await gateway.drain({ timeoutMs: 0 });
    expect(await getJson(`${url}/events/health/ready`)).toEqual({ status: 503, body: { status: 'draining' } });
    expect((await getJson(`${url}/events/health/live`)).status).toBe(200);
    await gateway.close();
    expect(await getJson(`${url}/events/health/ready`)).toEqual({ status: 503, body: { status: 'closing' } });
  });

  test('health: false turns both probes off', async () => {
    const { url } = await startGateway({ channels: ['logs'], health: false });
    expect((await fetch(`${url}/events/health/live`)).status).toBe(404);
    expect((await fetch(`${url}/events/health/ready`)).status).toBe(404);
  });

  test('ready follows the Redis link: 503 bus-unavailable while Redis is down, 200 when it is back; live stays 200', async () => {
    const redis = await startRedisServer();
    onCleanup(() => redis.stop());
    const bus = createRedisBus({ url: redis.url, watchdogMs: 200, logger: { warn: jest.fn(), error: jest.fn() } });
    onCleanup(() => bus.close());
    const { url } = await startGateway({ channels: ['logs'], bus });
    await settled(bus);
    const ready = async () => (await getJson(`${url}/events/health/ready`)) as { status: number; body: unknown };
    expect((await ready()).status).toBe(200);
    const port = redis.port;
    await redis.stop();
    await eventually(() => !bus.status().connected, 10_000, 'the bus to see Redis down');
    expect(await ready()).toEqual({ status: 503, body: { status: 'bus-unavailable' } });
    expect((await getJson(`${url}/events/health/live`)).status).toBe(200);
    const again = await startRedisServer([], port);
    onCleanup(() => again.stop());
    await eventually(() => bus.status().connected, 15_000, 'the bus to reconnect');
    expect((await ready()).status).toBe(200);
  });
});

describe('drain', () => {
  test('open streams end spread over the window, each after a jittered retry:, and drain() resolves when the last ended', async () => {
    const { gateway, open, url } = await startGateway({ channels: ['logs'], retryMs: 2000 });
    const streams = await Promise.all(Array.from({ length: 30 }, () => open('channels=logs:a')));
    const started = Date.now();
    const endedAt: number[] = [];
    for (const stream of streams) void stream.ended.then(() => endedAt.push(Date.now() - started));
    const drained = gateway.drain({ timeoutMs: 1000 });

    // A new EventSource request is sent away with 200 and a retry:, anything else with 503.
    const away = await openStream(`${url}/events?channels=logs:a`, { ready: false });
    await away.ended;
    expect(away.status).toBe(200);
    expect(away.retry).toBeGreaterThanOrEqual(1000);
    expect(away.retry).toBeLessThanOrEqual(2000);
    const plain = await fetch(`${url}/events?channels=logs:a`, { headers: { accept: 'application/json' } });
    expect(plain.status).toBe(503);
    expect(plain.headers.get('retry-after')).toBe('2');

    await drained;
    expect(gateway.stats().connections).toBe(0);
    await eventually(() => endedAt.length === 30, 2000, 'every client to see its end');
    // Spread: the first and the last wave are most of the window apart.
    expect(Math.max(...endedAt) - Math.min(...endedAt)).toBeGreaterThanOrEqual(600);
    for (const stream of streams) {
      const retries = [...stream.raw.matchAll(/^retry: (\d+)$/gm)].map((m) => Number(m[1]));
      expect(retries[0]).toBe(2000);
      expect(retries[1]).toBeGreaterThanOrEqual(1000);
      expect(retries[1]).toBeLessThanOrEqual(2000);
    }
  });

  test('EventSource clients behind a balancer move to the other instance with nothing lost or repeated', async () => {
    const redis = await startRedisServer();
    onCleanup(() => redis.stop());
    const instance = async () => {
      const bus = createRedisBus({ url: redis.url, prefix: 'drain', logger: { warn: jest.fn(), error: jest.fn() } });
      onCleanup(() => bus.close());
      const harness = await startGateway({ channels: ['logs'], bus, retryMs: 200 });
      await settled(bus);
      return harness;
    };
    const a = await instance();
    const b = await instance();
    // The balancer sends each request to the first instance whose readiness probe says ready.
    const balancer = createHttpServer(async (req, res) => {
      const ready = (await fetch(`${a.url}/events/health/ready`)).status === 200;
      const target = new URL(req.url ?? '/', ready ? a.url : b.url);
      const upstream = httpRequest(target, { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      req.pipe(upstream);
      res.on('close', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => balancer.listen(0, '127.0.0.1', resolve));
    onCleanup(() => new Promise<void>((resolve) => balancer.close(() => resolve())));
    balancer.closeAllConnections?.();
    const front = `http://127.0.0.1:${(balancer.address() as AddressInfo).port}`;

    const clients = Array.from({ length: 5 }, () => {
      const received: number[] = [];
      const source = new EventSource(`${front}/events?channels=logs:a`);
      source.addEventListener('logs', (e) => received.push((JSON.parse(e.data) as { data: number }).data));
      onCleanup(() => source.close());
      return { source, received };
    });
    await eventually(() => a.gateway.stats().connections === 5, 5000, 'five streams on A');
    let n = 0;
    const publishing = (async () => {
      for (; n < 150; n++) {
        await a.gateway.publish('logs:a', n);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    await eventually(() => n > 20, 5000, 'publishing to start');
    await a.gateway.drain({ timeoutMs: 300 });
    await publishing;
    await eventually(() => b.gateway.stats().connections === 5, 5000, 'five streams on B');
    const expected = Array.from({ length: 150 }, (_, i) => i);
    await eventually(() => clients.every((c) => c.received.length >= 150), 10_000, 'every event at every client');
    for (const client of clients) expect(client.received).toEqual(expected);
    expect(a.gateway.stats().connections).toBe(0);
  });
});

describe('audit and admin views', () => {
  const options: SseOptions = {
    channels: ['logs'],
    authentication: byHeader,
    authorize: (_user, channel) => channel !== 'logs:secret',
    limits: { maxConnectionsPerUser: 1 },
    admin: { authorize: (req) => req.get('x-admin') === 'yes' },
  };

  test('connect, disconnect with its duration, and 401/403/429 rejects; never a token or a cookie value', async () => {
    const entries: AuditEntry[] = [];
    const viaChannel: unknown[] = [];
    const onStream = (message: unknown) => viaChannel.push(message);
    diagnostics.subscribe('sse-gateway:stream', onStream);
    onCleanup(() => {
      diagnostics.unsubscribe('sse-gateway:stream', onStream);
    });
    const harness = await startGateway({ ...options, audit: (entry) => entries.push(entry) });
    const secrets = { cookie: 'session=COOKIE-SECRET', authorization: 'Bearer TOKEN-SECRET' };
    const stream = await harness.open('channels=logs:a', { headers: { 'x-user': 'u1', ...secrets } });
    await harness.open('channels=logs:a', { headers: secrets });
    await harness.open('channels=logs:secret', { headers: { 'x-user': 'u2', ...secrets } });
    await harness.open('channels=logs:b', { headers: { 'x-user': 'u1', ...secrets } });
    stream.close();
    await eventually(() => entries.some((e) => e.type === 'disconnect'), 5000, 'the disconnect entry');

    expect(entries.map((e) => [e.type, e.principalId, e.status, e.code])).toEqual([
      ['connect', 'u1', undefined, undefined],
      ['reject', undefined, 401, 'ERR_SSE_UNAUTHENTICATED'],
      ['reject', 'u2', 403, 'ERR_SSE_FORBIDDEN_CHANNEL'],
      ['reject', 'u1', 429, 'ERR_SSE_TOO_MANY_USER_CONNECTIONS'],
      ['disconnect', 'u1', undefined, undefined],
    ]);
    const [connect, , denied, , disconnect] = entries;
    expect(connect).toMatchObject({ channels: ['logs:a'], ip: expect.stringContaining('127.0.0.1') });
    expect(typeof connect?.connectionId).toBe('string');
    expect(disconnect?.connectionId).toBe(connect?.connectionId);
    expect(disconnect?.durationMs).toBeGreaterThanOrEqual(0);
    expect(denied?.channels).toEqual(['logs:secret']);
    const text = JSON.stringify(entries);
    expect(text).not.toContain('SECRET');
    expect(viaChannel).toHaveLength(entries.length);
  });

  test('the admin views list exactly this instance’s streams and topics, and refuse without admin.authorize', async () => {
    const harness = await startGateway(options);
    await harness.open('channels=logs:a,logs:b', { headers: { 'x-user': 'u1' } });
    await harness.open('channels=logs:a', { headers: { 'x-user': 'u2' } });
    const admin = { 'x-admin': 'yes' };
    expect((await getJson(`${harness.url}/events/connections`)).status).toBe(403);
    expect((await getJson(`${harness.url}/events/channels`)).status).toBe(403);
    const { body } = (await getJson(`${harness.url}/events/connections`, admin)) as {
      body: { total: number; connections: { principalId: string; channels: string[]; ageMs: number }[] };
    };
    expect(body.total).toBe(2);
    expect(body.connections.map((c) => [c.principalId, c.channels])).toEqual([
      ['u1', ['logs:a', 'logs:b']],
      ['u2', ['logs:a']],
    ]);
    const page = (await getJson(`${harness.url}/events/connections?offset=1&limit=1`, admin)).body as {
      connections: { principalId: string }[];
    };
    expect(page.connections.map((c) => c.principalId)).toEqual(['u2']);
    expect((await getJson(`${harness.url}/events/channels`, admin)).body).toEqual({
      channels: [
        { topic: 'logs:a', streams: 2 },
        { topic: 'logs:b', streams: 1 },
      ],
    });
  });
});

describe('metrics', () => {
  async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
    const sample = (metric?.values ?? []).find((v) =>
      Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l),
    );
    return sample?.value ?? 0;
  }

  test('every counter equals what happened in a scripted scenario; two gateways on two registries; nothing global', async () => {
    const first = await startGateway({
      channels: ['logs', 'metrics'],
      authentication: byHeader,
      authorize: (_user, channel) => !channel.endsWith('secret'),
      limits: { maxConnectionsPerUser: 2, maxBufferedBytes: 65_536 },
    });
    const second = await startGateway({ channels: ['logs'] });
    const registry = new Registry();
    const other = new Registry();
    registerMetrics(first.gateway, { registry });
    registerMetrics(second.gateway, { registry: other });
    const user = (id: string) => ({ headers: { 'x-user': id } });

    const a = await first.open('channels=logs:a', user('u1'));
    await first.open('channels=logs:secret,metrics:secret', user('u2'));
    await first.open('channels=logs:a', user('u1'));
    await first.open('channels=logs:a', user('u1'));
    const e1 = await first.gateway.publish('logs:a', 1);
    await first.gateway.publish('logs:a', 2);
    await a.take(2);
    const replay = await first.open('channels=logs:a', { headers: { 'x-user': 'u3', 'last-event-id': e1.id } });
    await replay.take(1);
    await first.open('channels=logs:a', { headers: { 'x-user': 'u4', 'last-event-id': 'zz-1' } });
    const slow = await first.open('channels=logs:a', user('u5'));
    slow.pause();
    // Kernel buffers vary by machine: publish until the paused client is closed, letting the others read.
    for (let i = 0; i < 5000 && first.gateway.stats().slowClosed === 0; i++) {
      await first.gateway.publish('logs:a', 'x'.repeat(20_000));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(first.gateway.stats().slowClosed).toBe(1);

    const stats = first.gateway.stats();
    expect(await value(registry, 'sse_connections')).toBe(stats.connections);
    expect(await value(registry, 'sse_connections_opened_total')).toBe(5);
    expect(await value(registry, 'sse_connections_rejected_total', { code: 'ERR_SSE_FORBIDDEN_CHANNEL' })).toBe(1);
    expect(await value(registry, 'sse_connections_rejected_total', { code: 'ERR_SSE_TOO_MANY_USER_CONNECTIONS' })).toBe(
      1,
    );
    expect(await value(registry, 'sse_authorize_denials_total', { namespace: 'logs' })).toBe(1);
    expect(await value(registry, 'sse_authorize_denials_total', { namespace: 'metrics' })).toBe(1);
    expect(await value(registry, 'sse_replays_total', { result: 'replayed' })).toBe(1);
    expect(await value(registry, 'sse_replays_total', { result: 'reset' })).toBe(1);
    expect(await value(registry, 'sse_replayed_events_total')).toBe(1);
    expect(await value(registry, 'sse_slow_consumers_closed_total')).toBe(1);
    expect(await value(registry, 'sse_deliveries_total')).toBe(first.gateway.stats().delivered);
    expect(await value(registry, 'sse_bus_up')).toBe(1);
    const lag = (await registry.getMetricsAsJSON()).find((m) => m.name === 'sse_event_lag_seconds');
    const count = lag?.values.find((v) => (v as { metricName?: string }).metricName === 'sse_event_lag_seconds_count');
    expect(count?.value).toBe(first.gateway.stats().events);
    // Scraping twice does not count twice.
    expect(await value(registry, 'sse_connections_opened_total')).toBe(5);
    expect(await value(other, 'sse_connections_opened_total')).toBe(0);
    expect(await globalRegistry.getMetricsAsJSON()).toEqual([]);
    expect(dataEvents(replay.events).map((e) => e.data)).toContain(2);
  });

  test('a scrape right after a change reads the new value (no reading is kept past the scrape)', async () => {
    const { gateway, open } = await startGateway({ channels: ['logs'] });
    const registry = new Registry();
    registerMetrics(gateway, { registry });
    expect(await value(registry, 'sse_connections')).toBe(0);
    const stream = await open('channels=logs:a');
    expect(await value(registry, 'sse_connections')).toBe(1);
    await gateway.publish('logs:a', 1);
    await stream.take(1);
    expect(await value(registry, 'sse_deliveries_total')).toBe(1);
    stream.close();
    await eventually(() => gateway.stats().connections === 0, 2000, 'the stream to close');
    expect(await value(registry, 'sse_connections')).toBe(0);
  });
});
