/**
 * The server half of typed channels: a publisher whose `publish` checks each payload against the app's
 * channel map, the same map the browser's `createTypedSSE<M>()` uses.
 */
import { publishEvent } from '../bus/default-bus';
import type { ChannelMap, ChannelOf, PayloadOf } from '../protocol/typed-channels';
import type { Bus, PublishOptions, SseEvent, SseGateway } from '../types';

/** A concrete channel of map `M` (no wildcard can be published to, but the type cannot see that). */
export type PublishChannelOf<M extends ChannelMap> = ChannelOf<M>;

/** `publish` typed by a channel map: `data` must be the channel's payload type. */
export interface TypedPublisher<M extends ChannelMap> {
  /**
   * Publish `data` on `channel`; its type is the payload type of the channel's namespace.
   *
   * @param channel - a concrete channel, e.g. `logs:ws1:wf2`.
   * @param options - `users`, `idempotencyKey`.
   */
  publish<C extends PublishChannelOf<M>>(
    channel: C,
    data: PayloadOf<M, C>,
    options?: Omit<PublishOptions, 'bus'>,
  ): Promise<SseEvent<PayloadOf<M, C>>>;
}

/**
 * A publisher typed by the app's channel map. Costs nothing at run time: it publishes through the gateway
 * (which checks the namespace), the bus, or, with neither, `publishEvent()`'s default bus.
 *
 * @param target - where to publish. Defaults to the default bus of `publishEvent()`.
 * @example
 * type Channels = { logs: { level: string; message: string }; metrics: { value: number } };
 * const events = createPublisher<Channels>(gateway);
 * await events.publish('metrics:ws1', { value: 3 });
 * await events.publish('metrics:ws1', { level: 'x' }); // type error: not a metrics payload
 */
export function createPublisher<M extends ChannelMap>(target?: SseGateway | Bus): TypedPublisher<M> {
  return {
    publish(channel, data, options = {}) {
      if (target === undefined) return publishEvent(channel, data, options);
      if ('stats' in target) return target.publish(channel, data, options);
      return target.publish(channel, data, options) as Promise<SseEvent<typeof data>>;
    },
  };
}
