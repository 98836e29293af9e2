/**
 * `@datashop/sse-gateway/metrics`: Prometheus figures of a gateway on a prom-client registry.
 *
 * Every figure is read from `gateway.stats()` when the registry is scraped (`collect()`), so registering
 * metrics adds nothing to the publish or delivery path. Labels are bounded: error codes, replay results,
 * configured namespaces; never channel names or user ids.
 */
import { Gauge, Histogram, type Registry } from 'prom-client';
import { observeEvents } from '../server/observe';
import type { SseGateway, SseStats } from '../types';
import { perScrape, runningTotal } from './scrape';

/** Options of {@link registerMetrics}. */
export interface MetricsOptions {
  /** The registry to register on (never prom-client's global one unless you pass it). */
  registry: Registry;
  /** Prefix of every metric name. Defaults to `sse_`. */
  prefix?: string;
}

/** Metrics registered for one gateway. */
export interface GatewayMetrics {
  /** Remove every metric of this gateway from the registry. */
  unregister(): void;
}

type Read = (stats: SseStats) => number;
type ReadLabelled = (stats: SseStats) => Readonly<Record<string, number>>;

/**
 * Register the gateway's figures on `registry`. Defaults to the prefix `sse_`.
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `sse_connections` | gauge | |
 * | `sse_users` | gauge | |
 * | `sse_subscriptions` | gauge | |
 * | `sse_buffered_bytes` | gauge | |
 * | `sse_ready` | gauge (1/0, what `/health/ready` says) | |
 * | `sse_bus_up` | gauge (1/0) | |
 * | `sse_connections_opened_total` | counter | |
 * | `sse_connections_rejected_total` | counter | `code` |
 * | `sse_connections_expired_total` | counter | |
 * | `sse_events_total` | counter (events received from the bus) | |
 * | `sse_deliveries_total` | counter (event frames written to clients) | |
 * | `sse_slow_consumers_closed_total` | counter | |
 * | `sse_dead_peers_closed_total` | counter | |
 * | `sse_replays_total` | counter | `result`: `replayed`, `reset` |
 * | `sse_replayed_events_total` | counter | |
 * | `sse_authorize_denials_total` | counter | `namespace` |
 * | `sse_replay_history_events` | gauge (events in the bus's replay history, every channel) | |
 * | `sse_replay_history_age_seconds` | gauge (age of its oldest event: how far back a stream can resume) | |
 * | `sse_event_lag_seconds` | histogram (publish time to fan-out on this instance: the bus's delay) | |
 *
 * @param gateway - what `sseMiddleware()` returned.
 * @param options - the registry and the prefix.
 * @returns a handle to unregister the metrics.
 * @throws TypeError when `registry` is missing, or Error when the names are already registered on it (use
 *   another prefix or registry for a second gateway).
 * @example
 * const registry = new Registry();
 * registerMetrics(gateway, { registry });
 * app.get('/metrics', async (_req, res) => res.type(registry.contentType).send(await registry.metrics()));
 */
export function registerMetrics(gateway: SseGateway, options: MetricsOptions): GatewayMetrics {
  const { registry } = options ?? {};
  if (registry === undefined || typeof registry.registerMetric !== 'function') {
    throw new TypeError('registerMetrics(gateway, { registry }) needs a prom-client Registry.');
  }
  const prefix = options.prefix ?? 'sse_';
  const names: string[] = [];
  const registers = [registry];
  const stats = perScrape(() => gateway.stats());

  const gauge = (name: string, help: string, read: Read): void => {
    names.push(prefix + name);
    new Gauge({
      name: prefix + name,
      help,
      registers,
      collect() {
        this.set(read(stats()));
      },
    });
  };
  const counter = (name: string, help: string, read: Read): void => {
    names.push(prefix + name);
    runningTotal({ name: prefix + name, help, registers }, () => [[{}, read(stats())]]);
  };
  const labelled = (name: string, help: string, label: string, read: ReadLabelled): void => {
    names.push(prefix + name);
    runningTotal({ name: prefix + name, help, labelNames: [label], registers }, () =>
      Object.entries(read(stats())).map(([value, count]) => [{ [label]: value }, count] as const),
    );
  };

  gauge('connections', 'Open streams.', (s) => s.connections);
  gauge('users', 'Distinct principals with an open stream.', (s) => s.users);
  gauge('subscriptions', 'Subscriptions over all open streams.', (s) => s.subscriptions);
  gauge('buffered_bytes', 'Bytes waiting for slow clients.', (s) => s.bufferedBytes);
  gauge('ready', 'Whether the readiness probe answers ready (1) or not (0).', (s) =>
    !s.closing && !s.draining && s.bus.connected ? 1 : 0,
  );
  gauge('bus_up', 'Whether the bus is connected (1) or not (0).', (s) => (s.bus.connected ? 1 : 0));
  counter('connections_opened_total', 'Streams opened.', (s) => s.opened);
  labelled('connections_rejected_total', 'Stream requests refused, by error code.', 'code', (s) => s.rejected);
  counter('connections_expired_total', 'Streams ended for reaching limits.maxConnectionAgeMs.', (s) => s.expired);
  counter('events_total', 'Events received from the bus.', (s) => s.events);
  counter('deliveries_total', 'Event frames written to clients.', (s) => s.delivered);
  counter('slow_consumers_closed_total', 'Streams closed for exceeding maxBufferedBytes.', (s) => s.slowClosed);
  counter(
    'dead_peers_closed_total',
    'Streams destroyed because their peer acknowledged nothing for deadPeerTimeoutMs.',
    (s) => s.deadPeersClosed,
  );
  labelled('replays_total', 'Last-Event-ID replays, by result.', 'result', (s) => s.replays);
  counter('replayed_events_total', 'Events written by replays.', (s) => s.replayedEvents);
  labelled('authorize_denials_total', 'Channels refused at connect time, by namespace.', 'namespace', (s) => s.denied);
  // 0 for a bus that keeps no history or does not report it (a custom Bus), or Redis before its first ping.
  const history = (s: SseStats) => (s.bus.history === false ? undefined : s.bus.history);
  gauge(
    'replay_history_events',
    "Events in the bus's replay history, over every channel.",
    (s) => history(s)?.events ?? 0,
  );
  gauge(
    'replay_history_age_seconds',
    "Age of the oldest event in the bus's replay history: how far back a reconnecting stream can resume.",
    (s) => (history(s)?.oldestAgeMs ?? 0) / 1000,
  );

  // The one per-event figure: observed at fan-out, only while these metrics are registered.
  names.push(`${prefix}event_lag_seconds`);
  const lag = new Histogram({
    name: `${prefix}event_lag_seconds`,
    help: 'Time from an event being published to its fan-out on this instance.',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  observeEvents(gateway, (event) => lag.observe(Math.max(0, Date.now() - event.time) / 1000));

  return {
    unregister() {
      observeEvents(gateway, undefined);
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}

// The upstream side (sseProxy handlers and bridges) has its own registration, beside the gateway's.
export type { MeteredUpstream, UpstreamMetrics, UpstreamMetricsOptions } from './upstream-metrics';
export { registerUpstreamMetrics } from './upstream-metrics';
