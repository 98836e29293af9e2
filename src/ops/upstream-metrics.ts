/**
 * `registerUpstreamMetrics`, exported by `@datashop/sse-gateway/metrics`: Prometheus figures of the app's
 * `sseProxy()` handlers and `bridgeUpstream()` bridges, beside the gateway's.
 *
 * As in `registerMetrics`, every figure is read from the upstreams' own `stats()`/`status()` when the registry
 * is scraped, so registering adds nothing to the event path. Labels are bounded: `kind`, the `name` the app
 * gave each upstream, failure reasons, upstream HTTP statuses and bridge states; never a URL or an id.
 */
import { Gauge, type Registry } from 'prom-client';
import type { BridgeState, UpstreamBridge, UpstreamProxy } from '../upstream/types';
import { type Labels, perScrape, runningTotal } from './scrape';

/** What `registerUpstreamMetrics` takes: what `bridgeUpstream()` or `sseProxy()` returned. */
export type MeteredUpstream = UpstreamBridge | UpstreamProxy;

/** Options of {@link registerUpstreamMetrics}. */
export interface UpstreamMetricsOptions {
  /** The registry to register on (never prom-client's global one unless you pass it). */
  registry: Registry;
  /** Prefix of every metric name, before `upstream_`. Defaults to `sse_`. */
  prefix?: string;
}

/** Metrics registered for a set of upstreams. */
export interface UpstreamMetrics {
  /** Remove every metric of this call from the registry. */
  unregister(): void;
}

type Kind = 'bridge' | 'proxy';

/** One upstream's figures at a scrape, whichever kind it is. */
interface Reading {
  readonly kind: Kind;
  readonly name: string;
  readonly connections: number;
  /** Bridges only. */
  readonly state: BridgeState | undefined;
  readonly opened: number;
  /** Bridges only: a proxy's client does its own reconnecting. */
  readonly reconnects: number | undefined;
  readonly errors: Readonly<Partial<Record<string, number>>>;
  readonly statuses: Readonly<Record<string, number>>;
  /** Events by result: a bridge's `published`, `refused`, `skipped`; a proxy's `relayed`, `skipped`. */
  readonly events: Readonly<Record<string, number>>;
}

/** A metric's samples from one reading: label values and the figure. */
type Samples = (r: Reading) => Array<[Labels, number]>;

const STATES: readonly BridgeState[] = ['connecting', 'open', 'retrying', 'idle', 'stopped'];

function kindOf(upstream: unknown): Kind | undefined {
  if (typeof upstream === 'function' && typeof (upstream as Partial<UpstreamProxy>).stats === 'function') {
    return 'proxy';
  }
  if (typeof upstream === 'object' && upstream !== null) {
    if (typeof (upstream as Partial<UpstreamBridge>).status === 'function') return 'bridge';
  }
  return undefined;
}

function read(kind: Kind, upstream: MeteredUpstream, name: string): Reading {
  if (kind === 'bridge') {
    const s = (upstream as UpstreamBridge).status();
    return {
      kind,
      name,
      connections: s.state === 'open' ? 1 : 0,
      state: s.state,
      opened: s.opened,
      reconnects: s.reconnects,
      errors: s.errors,
      statuses: s.statuses,
      events: { published: s.published, refused: s.refused, skipped: s.skipped },
    };
  }
  const s = (upstream as UpstreamProxy).stats();
  return {
    kind,
    name,
    connections: s.open,
    state: undefined,
    opened: s.opened,
    reconnects: undefined,
    errors: s.errors,
    statuses: s.statuses,
    events: { relayed: s.events, skipped: s.skipped },
  };
}

/**
 * Register the figures of the app's upstream proxies and bridges on `registry`, one time series per
 * upstream `name`. Pass every upstream in one call (a second call on the same registry and prefix would
 * register the same names); the gateway's own `registerMetrics` may share the registry and the prefix.
 * Defaults to the prefix `sse_`.
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `sse_upstream_connections` | gauge (a bridge: 1 while open; a proxy: its open proxied streams) | `kind`, `name` |
 * | `sse_upstream_bridge_state` | gauge (1 for the bridge's current state, 0 for the others) | `name`, `state` |
 * | `sse_upstream_opened_total` | counter (upstream event streams opened) | `kind`, `name` |
 * | `sse_upstream_reconnects_total` | counter (a bridge's attempts after its first) | `kind`, `name` |
 * | `sse_upstream_errors_total` | counter | `kind`, `name`, `reason`, `status` (for `upstream-status`) |
 * | `sse_upstream_events_total` | counter | `kind`, `name`, `result`: `published`, `refused`, `skipped` (bridge), `relayed`, `skipped` (proxy) |
 *
 * @param upstreams - what `bridgeUpstream()` and `sseProxy()` returned, each created with a `name`.
 * @param options - the registry and the prefix.
 * @returns a handle to unregister the metrics.
 * @throws TypeError when `registry` is missing, an upstream is neither kind, has no `name`, or shares its
 *   name with another; Error when the names are already registered on the registry.
 * @example
 * const etlLogs = bridgeUpstream({ name: 'etl-logs', target, bus: gateway.bus, channel, channels, gateway });
 * const runLogs = sseProxy({ name: 'etl-run-logs', target: (req) => runUrl(req) });
 * app.get('/api/run-logs', requireUser, runLogs);
 * const registry = new Registry();
 * registerMetrics(gateway, { registry });
 * registerUpstreamMetrics([etlLogs, runLogs], { registry });
 */
export function registerUpstreamMetrics(
  upstreams: readonly MeteredUpstream[],
  options: UpstreamMetricsOptions,
): UpstreamMetrics {
  const { registry } = options ?? {};
  if (registry === undefined || typeof registry.registerMetric !== 'function') {
    throw new TypeError('registerUpstreamMetrics(upstreams, { registry }) needs a prom-client Registry.');
  }
  if (!Array.isArray(upstreams)) {
    throw new TypeError(
      'registerUpstreamMetrics(upstreams, { registry }) takes an array of what sseProxy() and bridgeUpstream() returned.',
    );
  }
  const entries = named(upstreams);
  const prefix = `${options.prefix ?? 'sse_'}upstream_`;
  const names: string[] = [];
  const registers = [registry];
  // One status()/stats() per upstream and scrape, however many metrics read it.
  const readings = perScrape(() => entries.map((e) => read(e.kind, e.upstream, e.name)));

  // What every metric of this call is registered with; its name is kept for unregister().
  const config = (name: string, help: string, labelNames: string[]) => {
    names.push(prefix + name);
    return { name: prefix + name, help, labelNames, registers };
  };
  const gauge = (name: string, help: string, labelNames: string[], samples: Samples) => {
    new Gauge({
      ...config(name, help, labelNames),
      collect() {
        for (const reading of readings()) for (const [labels, value] of samples(reading)) this.set(labels, value);
      },
    });
  };
  // A counter follows the upstream's own running total.
  const counter = (name: string, help: string, labelNames: string[], samples: Samples) => {
    runningTotal(config(name, help, labelNames), () => readings().flatMap(samples));
  };
  const base = (r: Reading): Labels => ({ kind: r.kind, name: r.name });

  gauge(
    'connections',
    'Open upstream event streams: 1 or 0 for a bridge, the open proxied streams for a proxy.',
    ['kind', 'name'],
    (r) => [[base(r), r.connections]],
  );
  gauge('bridge_state', "1 for the bridge's current state, 0 for the others.", ['name', 'state'], (r) =>
    r.state === undefined ? [] : STATES.map((state) => [{ name: r.name, state }, state === r.state ? 1 : 0]),
  );
  counter('opened_total', 'Upstream event streams opened.', ['kind', 'name'], (r) => [[base(r), r.opened]]);
  counter('reconnects_total', "A bridge's upstream connection attempts after its first.", ['kind', 'name'], (r) =>
    r.reconnects === undefined ? [] : [[base(r), r.reconnects]],
  );
  counter(
    'errors_total',
    'Upstream failures, by reason; `upstream-status` by HTTP status too.',
    ['kind', 'name', 'reason', 'status'],
    (r) => {
      const samples: Array<[Labels, number]> = [];
      for (const [reason, count] of Object.entries(r.errors)) {
        if (reason !== 'upstream-status') samples.push([{ ...base(r), reason }, count ?? 0]);
      }
      for (const [status, count] of Object.entries(r.statuses)) {
        samples.push([{ ...base(r), reason: 'upstream-status', status }, count]);
      }
      return samples;
    },
  );
  counter(
    'events_total',
    'Upstream events, by result: published, refused or skipped (bridge); relayed or skipped (proxy).',
    ['kind', 'name', 'result'],
    (r) => Object.entries(r.events).map(([result, count]) => [{ ...base(r), result }, count]),
  );

  return {
    unregister() {
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}

/** Each upstream with its kind and its `name`, checked: present and unique. */
function named(upstreams: readonly MeteredUpstream[]): Array<{ kind: Kind; name: string; upstream: MeteredUpstream }> {
  const seen = new Set<string>();
  return upstreams.map((upstream, i) => {
    const kind = kindOf(upstream);
    if (kind === undefined) {
      throw new TypeError(
        `registerUpstreamMetrics: upstreams[${i}] is neither an sseProxy() handler nor a bridgeUpstream() bridge.`,
      );
    }
    const name =
      kind === 'bridge' ? (upstream as UpstreamBridge).status().name : (upstream as UpstreamProxy).stats().name;
    if (name === undefined) {
      const fix =
        kind === 'bridge' ? "bridgeUpstream({ name: 'etl-logs', … })" : "sseProxy({ name: 'etl-run-logs', … })";
      throw new TypeError(
        `registerUpstreamMetrics: upstreams[${i}] (a ${kind}) has no \`name\`; create it with ${fix}: the name is its \`name\` label.`,
      );
    }
    if (seen.has(name)) {
      throw new TypeError(
        `registerUpstreamMetrics: two upstreams are named ${JSON.stringify(name)}; names must differ.`,
      );
    }
    seen.add(name);
    return { kind, name, upstream };
  });
}
