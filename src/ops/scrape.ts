/**
 * What the gateway's and the upstreams' Prometheus registrations share: one reading per scrape, and a
 * counter that follows a running total kept elsewhere (the gateway's `stats()`, a bridge's `status()`).
 */
import { Counter, type Registry } from 'prom-client';

/** Label values of one sample. */
export type Labels = Record<string, string>;

/**
 * `read` at most once per scrape, however many metrics call it: prom-client runs every `collect()` of a
 * scrape before the event loop turns, and the reading is dropped at the next turn, so a later scrape (even one
 * right after a change) reads afresh.
 *
 * @example
 * const stats = perScrape(() => gateway.stats());
 */
export function perScrape<T>(read: () => T): () => T {
  let cached: { readonly value: T } | undefined;
  return () => {
    if (cached === undefined) {
      cached = { value: read() };
      setImmediate(() => {
        cached = undefined;
      });
    }
    return cached.value;
  };
}

/** What {@link runningTotal} registers: the metric's name, help and labels, and where. */
export interface RunningTotalConfig {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
  readonly registers: Registry[];
}

/**
 * A counter that follows running totals read at scrape time: each label set is increased by what its total
 * grew since the last scrape, and shows at 0 from the first scrape where it is known (so `increase()` sees its
 * first step). A total that went down (its source restarted) is taken as the new base.
 *
 * @param samples - each label set with its total now; `[{}, n]` for a counter without labels.
 * @example
 * runningTotal({ name: 'sse_deliveries_total', help: 'Frames written.', registers }, () => [[{}, stats().delivered]]);
 */
export function runningTotal(
  config: RunningTotalConfig,
  samples: () => Iterable<readonly [Labels, number]>,
): Counter<string> {
  const labelNames = config.labelNames ?? [];
  const seen = new Map<string, number>();
  return new Counter({
    name: config.name,
    help: config.help,
    labelNames: [...labelNames],
    registers: config.registers,
    collect() {
      for (const [labels, value] of samples()) {
        const key = labelNames.map((label) => labels[label] ?? '').join('\u0000');
        const before = seen.get(key);
        if (before === undefined || value > before) this.inc(labels, value - (before ?? 0));
        seen.set(key, value);
      }
    },
  });
}
