/**
 * Operations of the upstream side: a bridge's status and state changes, a proxy's counters, and both on a
 * prom-client registry, read the way Prometheus reads them (the text of GET /metrics, parsed). Real parts
 * throughout: fake upstream SSE servers, an Express BFF on port 0, raw SSE clients.
 */
import diagnostics from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { register as globalRegistry, Registry } from 'prom-client';
import { sseMiddleware } from '../../src/index';
import type { UpstreamDiagnostic } from '../../src/ops/diagnostics';
import { registerMetrics, registerUpstreamMetrics } from '../../src/ops/metrics';
import type { Logger, SseGateway } from '../../src/types';
import { bridgeUpstream } from '../../src/upstream/bridge';
import { sseProxy } from '../../src/upstream/proxy';
import type { BridgeState, UpstreamBridge, UpstreamProxy } from '../../src/upstream/types';
import { startServer, type TestServer } from '../helpers/server';
import { openStream, type SseStream } from '../helpers/sse-client';
import { type FakeUpstream, startUpstream } from '../helpers/upstream';

const quiet: Logger = { warn: () => {}, error: () => {} };

/** One sample of the Prometheus text format. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The samples of a text exposition (what `registry.metrics()` serves and Prometheus parses). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key as string] = (value as string).replace(/\\(.)/g, '$1');
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

/** GET /metrics of the BFF, parsed. */
async function scrape(bff: TestServer): Promise<Sample[]> {
  const res = await fetch(`${bff.url}/metrics`);
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

/** The value of the sample with exactly these labels, or undefined when there is none. */
function value(samples: readonly Sample[], name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels);
  const found = samples.filter(
    (s) =>
      s.name === name && Object.keys(s.labels).length === wanted.length && wanted.every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

/** Every state change of `bridge` on the `sse-gateway:upstream` diagnostics channel, in order. */
function recordStates(bridge: UpstreamBridge) {
  const seen: UpstreamDiagnostic[] = [];
  const waiters = new Set<() => void>();
  const handler = (message: unknown) => {
    if ((message as UpstreamDiagnostic).upstream !== bridge) return;
    seen.push(message as UpstreamDiagnostic);
    for (const waiter of [...waiters]) waiter();
  };
  diagnostics.subscribe('sse-gateway:upstream', handler);
  cleanups.push(() => diagnostics.unsubscribe('sse-gateway:upstream', handler));
  return {
    seen,
    states: () => seen.map((m) => m.state),
    /** Resolves when `check` holds over the changes seen so far. */
    until(check: (seen: readonly UpstreamDiagnostic[]) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
      return new Promise((resolve, reject) => {
        if (check(seen)) return resolve();
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`timed out waiting for ${what}; states: ${seen.map((m) => m.state).join(' ')}`));
        }, timeoutMs);
        const waiter = () => {
          if (!check(seen)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve();
        };
        waiters.add(waiter);
      });
    },
  };
}

const ALLOWED: Readonly<Record<BridgeState, readonly BridgeState[]>> = {
  stopped: ['idle', 'connecting'],
  idle: ['connecting', 'stopped'],
  connecting: ['open', 'retrying', 'idle', 'stopped'],
  open: ['retrying', 'idle', 'stopped'],
  retrying: ['connecting', 'idle', 'stopped'],
};

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Bff {
  readonly bff: TestServer;
  readonly gateway: SseGateway;
  readonly bridge: UpstreamBridge;
  readonly proxies: { readonly run: UpstreamProxy; readonly down: UpstreamProxy; readonly gone: UpstreamProxy };
  readonly upstream: FakeUpstream;
  readonly registry: Registry;
}

/** A closed loopback port: nothing listens there. */
async function closedPort(): Promise<number> {
  const spare = createServer();
  await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve));
  const { port } = spare.address() as AddressInfo;
  await new Promise<void>((resolve) => spare.close(() => resolve()));
  return port;
}

/**
 * The BFF of a team with one bridge and three proxies: `etl-logs` (lazy bridge of `logs:etl:*`), `etl-run`
 * (a healthy upstream), `etl-down` (an upstream answering 502) and `etl-gone` (nothing listening), all on the
 * registry of the gateway's own metrics, served at GET /metrics.
 */
async function startBff(): Promise<Bff> {
  const upstream = await startUpstream();
  cleanups.push(() => upstream.stop());
  const failing = await startUpstream({ status: 502 });
  cleanups.push(() => failing.stop());
  const gone = await closedPort();

  const gateway = sseMiddleware({ channels: ['logs'], heartbeatMs: 60_000 });
  cleanups.push(() => gateway.close());
  const base = new URL(upstream.url);
  const bridge = bridgeUpstream({
    name: 'etl-logs',
    // Credentials and a query the status must not show.
    target: `http://svc:s3cret@${base.host}/logs/stream?channels=logs:etl:*&token=s3cret`,
    bus: gateway.bus,
    channel: (event) => (JSON.parse(event.data) as { channel: string }).channel,
    channels: ['logs:etl:*'],
    gateway,
    stopDelayMs: 0,
    maxEventSize: 256,
    reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    logger: quiet,
  });
  cleanups.push(() => bridge.stop());
  const common = { retryMs: 1000, heartbeatMs: 60_000, maxEventSize: 256, logger: quiet };
  const proxies = {
    run: sseProxy({ ...common, name: 'etl-run', target: `${upstream.url}/run/stream` }),
    down: sseProxy({ ...common, name: 'etl-down', target: `${failing.url}/run/stream` }),
    gone: sseProxy({ ...common, name: 'etl-gone', target: `http://127.0.0.1:${gone}/run/stream` }),
  };

  const registry = new Registry();
  registerMetrics(gateway, { registry });
  registerUpstreamMetrics([bridge, proxies.run, proxies.down, proxies.gone], { registry });

  const app = express();
  app.use(gateway);
  app.get('/run', proxies.run);
  app.get('/down', proxies.down);
  app.get('/gone', proxies.gone);
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  const bff = await startServer(app);
  cleanups.push(() => bff.close());
  return { bff, gateway, bridge, proxies, upstream, registry };
}

/** A raw SSE client of the BFF, closed after the test (before the servers). */
async function open(bff: TestServer, path: string, ready = true): Promise<SseStream> {
  const stream = await openStream(`${bff.url}${path}`, { ready });
  cleanups.push(() => stream.close());
  return stream;
}

const line = (channel: string, n: number) => JSON.stringify({ channel, n });
const nth = (n: number) => (e: { event?: string; data: string }) =>
  e.event === 'logs' && (JSON.parse(e.data) as { data: { n: number } }).data.n === n;

describe('a bridge, seen by operations', () => {
  test('its upstream dies and comes back: states, reconnects, errors and events in status() and on /metrics', async () => {
    const { bff, bridge, upstream } = await startBff();
    const recorder = recordStates(bridge);
    const bridgeLabels = { kind: 'bridge', name: 'etl-logs' };
    const state = async (s: BridgeState) =>
      value(await scrape(bff), 'sse_upstream_bridge_state', { name: 'etl-logs', state: s });

    expect(bridge.status()).toMatchObject({ name: 'etl-logs', state: 'stopped', reconnects: 0, opened: 0 });
    expect(await state('stopped')).toBe(1);
    bridge.start();
    // Lazy, and nobody watches: started but deliberately not connected.
    expect(bridge.status()).toMatchObject({ state: 'idle', running: true, connected: false });
    expect(bridge.status().url).toBe(`${upstream.url}/logs/stream`);
    expect(JSON.stringify(bridge.status())).not.toContain('s3cret');
    expect(await state('idle')).toBe(1);
    expect(await state('stopped')).toBe(0);

    // A page subscribes through the gateway: the bridge connects.
    const page = await open(bff, '/events?channels=logs:etl:ws1:wf1');
    await recorder.until((seen) => seen.some((m) => m.state === 'open'), 'the bridge to open');
    const opened = bridge.status();
    expect(opened).toMatchObject({ state: 'open', connected: true, opened: 1, disconnectedSince: undefined });
    expect(opened.connectedSince).toEqual(expect.any(Number));

    upstream.send({ id: '1', data: line('logs:etl:ws1:wf1', 1) });
    upstream.send({ id: '2', data: line('alerts:u1', 2) }); // outside `channels`: refused
    upstream.send({ data: line('logs:etl:ws1:wf1', 3).padEnd(400, ' ') }); // beyond maxEventSize: skipped
    upstream.send({ id: '4', data: line('logs:etl:ws1:wf1', 4) });
    await page.waitFor(nth(4));
    let samples = await scrape(bff);
    expect(value(samples, 'sse_upstream_connections', bridgeLabels)).toBe(1);
    expect(value(samples, 'sse_upstream_opened_total', bridgeLabels)).toBe(1);
    expect(value(samples, 'sse_upstream_reconnects_total', bridgeLabels)).toBe(0);
    expect(value(samples, 'sse_upstream_events_total', { ...bridgeLabels, result: 'published' })).toBe(2);
    expect(value(samples, 'sse_upstream_events_total', { ...bridgeLabels, result: 'refused' })).toBe(1);
    expect(value(samples, 'sse_upstream_events_total', { ...bridgeLabels, result: 'skipped' })).toBe(1);
    expect(value(samples, 'sse_upstream_bridge_state', { name: 'etl-logs', state: 'open' })).toBe(1);
    expect(samples.filter((s) => s.name === 'sse_upstream_errors_total' && s.labels.kind === 'bridge')).toEqual([]);
    // The gateway's own metrics share the registry and the prefix.
    expect(samples.filter((s) => s.name === 'sse_connections')).toHaveLength(1);

    // The upstream dies: the bridge retries against a closed port.
    const diedAt = Date.now();
    await upstream.stop();
    const unreachable = (seen: readonly UpstreamDiagnostic[]) =>
      seen.filter((m) => m.state === 'retrying' && m.lastError === 'upstream-unreachable').length;
    await recorder.until((seen) => unreachable(seen) >= 2, 'two failed attempts');
    const down = bridge.status();
    expect(['connecting', 'retrying']).toContain(down.state);
    expect(down).toMatchObject({ connected: false, connectedSince: undefined, lastError: 'upstream-unreachable' });
    expect(down.errors['upstream-ended']).toBe(1);
    expect(down.errors['upstream-unreachable']).toBeGreaterThanOrEqual(2);
    expect(down.disconnectedSince).toBeGreaterThanOrEqual(diedAt);
    samples = await scrape(bff);
    expect(value(samples, 'sse_upstream_connections', bridgeLabels)).toBe(0);
    const seeking =
      (value(samples, 'sse_upstream_bridge_state', { name: 'etl-logs', state: 'connecting' }) ?? 0) +
      (value(samples, 'sse_upstream_bridge_state', { name: 'etl-logs', state: 'retrying' }) ?? 0);
    expect(seeking).toBe(1);
    expect(value(samples, 'sse_upstream_errors_total', { ...bridgeLabels, reason: 'upstream-ended' })).toBe(1);
    expect(
      value(samples, 'sse_upstream_errors_total', { ...bridgeLabels, reason: 'upstream-unreachable' }),
    ).toBeGreaterThanOrEqual(2);
    expect(value(samples, 'sse_upstream_reconnects_total', bridgeLabels)).toBeGreaterThanOrEqual(2);
    // Retries do not move the start of the outage.
    await recorder.until((seen) => unreachable(seen) >= 3, 'a third failed attempt');
    expect(bridge.status().disconnectedSince).toBe(down.disconnectedSince);

    // It comes back: the bridge reopens, resumes after id 4, and the page gets what follows.
    await upstream.restart();
    const before = recorder.seen.length;
    await recorder.until((seen) => seen.slice(before).some((m) => m.state === 'open'), 'the bridge to reopen');
    upstream.send({ id: '5', data: line('logs:etl:ws1:wf1', 5) });
    await page.waitFor(nth(5));
    const back = bridge.status();
    expect(back).toMatchObject({ state: 'open', opened: 2, disconnectedSince: undefined, lastEventId: '5' });
    expect(back.connectedSince).toBeGreaterThan(opened.connectedSince ?? Number.POSITIVE_INFINITY);
    samples = await scrape(bff);
    expect(value(samples, 'sse_upstream_connections', bridgeLabels)).toBe(1);
    expect(value(samples, 'sse_upstream_opened_total', bridgeLabels)).toBe(2);
    expect(value(samples, 'sse_upstream_reconnects_total', bridgeLabels)).toBe(back.reconnects);
    expect(back.reconnects).toBe(1 + (back.errors['upstream-unreachable'] ?? 0));
    expect(value(samples, 'sse_upstream_errors_total', { ...bridgeLabels, reason: 'upstream-unreachable' })).toBe(
      back.errors['upstream-unreachable'],
    );
    expect(value(samples, 'sse_upstream_events_total', { ...bridgeLabels, result: 'published' })).toBe(3);
    expect(value(samples, 'sse_upstream_bridge_state', { name: 'etl-logs', state: 'open' })).toBe(1);

    // The last page leaves (idle), then the app stops the bridge.
    page.close();
    await recorder.until((seen) => seen.at(-1)?.state === 'idle', 'the bridge to idle');
    await bridge.stop();
    expect(bridge.status().state).toBe('stopped');
    samples = await scrape(bff);
    expect(value(samples, 'sse_upstream_bridge_state', { name: 'etl-logs', state: 'stopped' })).toBe(1);
    expect(value(samples, 'sse_upstream_connections', bridgeLabels)).toBe(0);

    const states = recorder.states();
    expect(states.join(' ')).toMatch(
      /^idle connecting open retrying (connecting retrying )+connecting open idle stopped$/,
    );
    recorder.seen.forEach((m, i) => {
      expect(ALLOWED[m.previous]).toContain(m.state);
      if (i > 0) expect(m.previous).toBe(recorder.seen[i - 1]?.state);
    });
  });
});

describe('proxies, seen by operations', () => {
  test('open proxied streams are counted up and down; relayed, skipped, and failures by reason and status', async () => {
    const { bff, proxies, upstream } = await startBff();
    const run = { kind: 'proxy', name: 'etl-run' };
    let samples = await scrape(bff);
    expect(value(samples, 'sse_upstream_connections', run)).toBe(0);
    expect(value(samples, 'sse_upstream_opened_total', run)).toBe(0);

    // The headers reach a client once the upstream answered with a stream, so three open clients are three
    // counted streams.
    const clients = [await open(bff, '/run', false), await open(bff, '/run', false), await open(bff, '/run', false)];
    expect(proxies.run.stats()).toMatchObject({ name: 'etl-run', open: 3, opened: 3, connecting: 0 });
    upstream.send({ id: '1', data: 'a' });
    upstream.send({ id: '2', data: 'x'.repeat(400) }); // beyond maxEventSize: skipped on every stream
    upstream.send({ id: '3', data: 'b' });
    for (const client of clients) expect((await client.take(2)).map((e) => e.data)).toEqual(['a', 'b']);
    samples = await scrape(bff);
    expect(value(samples, 'sse_upstream_connections', run)).toBe(3);
    expect(value(samples, 'sse_upstream_opened_total', run)).toBe(3);
    expect(value(samples, 'sse_upstream_events_total', { ...run, result: 'relayed' })).toBe(6);
    expect(value(samples, 'sse_upstream_events_total', { ...run, result: 'skipped' })).toBe(3);

    // A client leaving closes its upstream request; that is no failure.
    clients[0]?.close();
    await upstream.waitFor((u) => u.open === 2, 5000, 'the upstream to see one stream go');
    samples = await scrape(bff);
    expect(value(samples, 'sse_upstream_connections', run)).toBe(2);
    expect(samples.filter((s) => s.name === 'sse_upstream_errors_total' && s.labels.name === 'etl-run')).toEqual([]);

    // The upstream ends its streams: the clients' streams end, counted as upstream-ended.
    upstream.endStreams();
    await Promise.all([clients[1]?.ended, clients[2]?.ended]);
    samples = await scrape(bff);
    expect(value(samples, 'sse_upstream_connections', run)).toBe(0);
    expect(value(samples, 'sse_upstream_errors_total', { ...run, reason: 'upstream-ended' })).toBe(2);
    expect(proxies.run.stats()).toMatchObject({ open: 0, opened: 3, events: 6, skipped: 3 });

    // An upstream answering 502, and one that is not there: sse:error for the client, counted by reason.
    for (const path of ['/down', '/down', '/gone']) {
      const client = await open(bff, path, false);
      await client.ended;
      expect(client.events.map((e) => e.event)).toEqual(['sse:error']);
    }
    samples = await scrape(bff);
    const down = { kind: 'proxy', name: 'etl-down' };
    expect(value(samples, 'sse_upstream_errors_total', { ...down, reason: 'upstream-status', status: '502' })).toBe(2);
    expect(value(samples, 'sse_upstream_opened_total', down)).toBe(0);
    expect(value(samples, 'sse_upstream_connections', down)).toBe(0);
    expect(
      value(samples, 'sse_upstream_errors_total', { kind: 'proxy', name: 'etl-gone', reason: 'upstream-unreachable' }),
    ).toBe(1);
    expect(proxies.down.stats()).toMatchObject({ errors: { 'upstream-status': 2 }, statuses: { '502': 2 } });
    // Scraping again counts nothing twice.
    expect(
      value(await scrape(bff), 'sse_upstream_errors_total', { ...down, reason: 'upstream-status', status: '502' }),
    ).toBe(2);
  });
});

describe('registerUpstreamMetrics', () => {
  const bus = () => {
    const gateway = sseMiddleware({ channels: ['logs'] });
    cleanups.push(() => gateway.close());
    return gateway.bus;
  };

  test('needs a name per upstream, unique, and a registry; registers nothing globally; unregister() removes all', async () => {
    const named = bridgeUpstream({
      name: 'a',
      target: 'http://127.0.0.1:1/s',
      bus: bus(),
      channel: 'logs:a',
      logger: quiet,
    });
    const anonymous = sseProxy({ target: 'http://127.0.0.1:1/s', logger: quiet });
    const registry = new Registry();
    expect(() => registerUpstreamMetrics([named, anonymous], { registry })).toThrow(
      /upstreams\[1\] \(a proxy\) has no `name`; create it with sseProxy\(\{ name: /,
    );
    expect(() =>
      registerUpstreamMetrics([named, sseProxy({ name: 'a', target: 'http://127.0.0.1:1/s', logger: quiet })], {
        registry,
      }),
    ).toThrow(/two upstreams are named "a"/);
    expect(() => registerUpstreamMetrics([{} as never], { registry })).toThrow(TypeError);
    expect(() => registerUpstreamMetrics([named], {} as never)).toThrow(/needs a prom-client Registry/);
    expect(await registry.getMetricsAsJSON()).toEqual([]);

    const metrics = registerUpstreamMetrics([named], { registry, prefix: 'bff_' });
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name).sort();
    expect(names).toEqual([
      'bff_upstream_bridge_state',
      'bff_upstream_connections',
      'bff_upstream_errors_total',
      'bff_upstream_events_total',
      'bff_upstream_opened_total',
      'bff_upstream_reconnects_total',
    ]);
    expect(await globalRegistry.getMetricsAsJSON()).toEqual([]);
    metrics.unregister();
    expect(await registry.getMetricsAsJSON()).toEqual([]);
  });
});
