/**
 * The default bus for `publishEvent()`: the bus of the most recently created gateway that is still
 * open, or the process-wide memory bus when there is none.
 */

import type { Bus, PublishOptions, SseEvent } from '../types';
import { createMemoryBus } from './memory-bus';

let processBus: Bus | undefined;
const gatewayBuses: Bus[] = [];

/** The process-wide memory bus, created on first use. */
export function processMemoryBus(): Bus {
  processBus ??= createMemoryBus();
  return processBus;
}

/** Make `bus` the default until the returned function is called (when its gateway closes). */
export function pushDefaultBus(bus: Bus): () => void {
  gatewayBuses.push(bus);
  return () => {
    const at = gatewayBuses.lastIndexOf(bus);
    if (at !== -1) gatewayBuses.splice(at, 1);
  };
}

/** The bus `publishEvent()` uses when none is given. */
export function defaultBus(): Bus {
  return gatewayBuses[gatewayBuses.length - 1] ?? processMemoryBus();
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
  // The bus reads `users` and `idempotencyKey` and ignores `bus`.
  return (options.bus ?? defaultBus()).publish(channel, data, options) as Promise<SseEvent<T>>;
}
