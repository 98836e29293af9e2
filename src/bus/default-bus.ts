/**
 * The default bus for `publishEvent()`: the bus of the most recently created gateway that is still
 * open, or the process-wide memory bus when there is none.
 */

import { namespaceOf } from '../protocol/channels';
import type { Bus, Logger, PublishOptions, SseEvent } from '../types';
import { createMemoryBus } from './memory-bus';

/** A gateway as the default-bus registry knows it: its bus and the namespaces it serves. */
interface Registered {
  readonly bus: Bus;
  readonly namespaces: ReadonlySet<string>;
  readonly logger: Logger;
}

let processBus: Bus | undefined;
const gatewayBuses: Registered[] = [];
/** Namespaces already warned about, so a misrouted publisher is told once, not per event. */
const warned = new Set<string>();

/** The process-wide memory bus, created on first use. */
export function processMemoryBus(): Bus {
  processBus ??= createMemoryBus();
  return processBus;
}

/**
 * Make `bus` the default until the returned function is called (when its gateway closes). A second gateway
 * on the implicit process-wide bus is warned about: the two share every event whose channel names coincide,
 * which for two tenants' gateways is a leak.
 */
export function pushDefaultBus(bus: Bus, namespaces: ReadonlySet<string>, logger: Logger): () => void {
  const entry: Registered = { bus, namespaces, logger };
  if (bus === processBus && gatewayBuses.some((other) => other.bus === bus)) {
    logger.warn(
      "sse-gateway: a second gateway uses the implicit process-wide bus, so both receive each other's events on channels of the same name. Give each gateway its own bus (createMemoryBus()) unless that is what you want.",
    );
  }
  gatewayBuses.push(entry);
  return () => {
    const at = gatewayBuses.lastIndexOf(entry);
    if (at !== -1) gatewayBuses.splice(at, 1);
  };
}

/** The bus `publishEvent()` uses when none is given. */
export function defaultBus(): Bus {
  return gatewayBuses[gatewayBuses.length - 1]?.bus ?? processMemoryBus();
}

/**
 * Warn once per namespace when an in-process bus carries a publish that no gateway of this process serves:
 * nobody can receive it (a typo, or a gateway that was never mounted). A networked bus is left alone, since
 * its gateways may live in other processes.
 */
function warnUnserved(bus: Bus, channel: string): void {
  if (typeof channel !== 'string' || bus.status().kind !== 'memory') return;
  const namespace = namespaceOf(channel);
  const gateways = gatewayBuses.filter((entry) => entry.bus === bus);
  if (warned.has(namespace) || gateways.some((entry) => entry.namespaces.has(namespace))) return;
  warned.add(namespace);
  const logger = gateways[gateways.length - 1]?.logger ?? console;
  logger.warn(
    `sse-gateway: publishEvent('${channel.slice(0, 140)}') went to a bus on which no gateway of this process serves namespace ${namespace}; nobody receives it.`,
  );
}

/**
 * Publish an event on the default bus (or `options.bus`): from any route handler or job, no `req`/`res`.
 *
 * @param channel - a concrete channel, e.g. `logs:ws123:wf456`.
 * @param data - a JSON-serialisable payload.
 * @param options - `users` restricts the audience; `bus` picks another bus.
 * @returns the event as sequenced, with its id.
 * @example
 * app.post('/api/workflows/:id/run', async (req, res) => {
 *   await publishEvent(`logs:${req.params.ws}:${req.params.id}`, { line: 'started' });
 *   res.sendStatus(202);
 * });
 */
export function publishEvent<T>(channel: string, data: T, options: PublishOptions = {}): Promise<SseEvent<T>> {
  const bus = options.bus ?? defaultBus();
  warnUnserved(bus, channel);
  // The bus reads `users` and `idempotencyKey` and ignores `bus`.
  return bus.publish(channel, data, options) as Promise<SseEvent<T>>;
}
