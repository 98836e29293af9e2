/**
 * Redis buses and gateways on them, as the instances of one deployment are: each closed by
 * {@link closeAll} after the test.
 */
import { createRedisBus } from '../../src/bus/redis';
import type { Bus, RedisBusOptions, SseOptions } from '../../src/types';
import { settled } from './bus';
import { type GatewayHarness, type HarnessOptions, onCleanup, recordingLogger, startGateway } from './gateway';

/**
 * A Redis bus, with a {@link recordingLogger} unless `options` names a logger; closed by {@link closeAll}.
 *
 * @example
 * const bus = redisBus({ url: server.url, prefix: 'it1' });
 */
export function redisBus(options: RedisBusOptions): Bus {
  const bus = createRedisBus({ logger: recordingLogger(), ...options });
  onCleanup(() => bus.close());
  return bus;
}

/** One instance of a deployment: a gateway on its own Redis bus. */
export interface RedisInstance extends GatewayHarness {
  readonly bus: Bus;
}

/**
 * Start a gateway on a new {@link redisBus} and resolve once the bus is connected and subscribed. Instances
 * given the same `prefix` share one history and sequence, as the instances of one deployment do.
 *
 * @param bus - the Redis bus's options (`url`, `prefix`, …).
 * @param options - the gateway's options, but its bus.
 * @example
 * const a = await startRedisInstance({ url: server.url, prefix: 'gw1' }, { channels: ['logs'] });
 * const b = await startRedisInstance({ url: server.url, prefix: 'gw1' }, { channels: ['logs'] });
 */
export async function startRedisInstance(
  bus: RedisBusOptions,
  options: Omit<SseOptions, 'bus'>,
  harness?: HarnessOptions,
): Promise<RedisInstance> {
  const made = redisBus(bus);
  const gateway = await startGateway({ ...options, bus: made }, harness);
  await settled(made);
  return { ...gateway, bus: made };
}
