/**
 * Typed channels in React: the channel map of `protocol/typed-channels` makes hooks and `client.subscribe`
 * know each payload without casts. Types only: the functions here return what they are given.
 */
import type { ComponentType } from 'react';
import type { ClientEvent, SseClient, SubscriptionHandlers } from '../client/types';
import type { ChannelMap, ChannelOf, PayloadOf } from '../protocol/typed-channels';
import { useSSESubscription } from './hooks';
import type { SSESubscriptionOptions, SSESubscriptionResult } from './types';

export type { ChannelMap, ChannelOf, PayloadOf } from '../protocol/typed-channels';

import { withSSE } from './with-sse';

/** A {@link ClientEvent} whose `data` is typed. */
export interface TypedClientEvent<P, C extends string = string> extends ClientEvent {
  readonly data: P;
  readonly channel: C extends `${infer Prefix}:*` ? `${Prefix}:${string}` : C;
}

/** An `SseClient` whose `subscribe` knows each channel's payload. */
export interface TypedSseClient<M extends ChannelMap> extends Omit<SseClient, 'subscribe'> {
  /** As `SseClient.subscribe`, with `event.data` typed by the channel's namespace. */
  subscribe<C extends ChannelOf<M>>(
    channel: C,
    listener: (event: TypedClientEvent<PayloadOf<M, C>, C>) => void,
    handlers?: SubscriptionHandlers,
  ): () => void;
}

/** Hook options whose `transform` receives the typed payload. */
export type TypedSubscriptionOptions<P, T> = Omit<SSESubscriptionOptions<T>, 'transform'> & {
  /** Turns a payload into what `data` holds; runs once per event. */
  transform?: (data: P, event: TypedClientEvent<P>) => T;
};

/** The bindings typed by one channel map: what {@link createTypedSSE} returns. */
export interface TypedSSE<M extends ChannelMap> {
  /** `useSSESubscription`, with `data` typed from the channel strings (or from `transform`). */
  useSSESubscription<C extends ChannelOf<M>, T = PayloadOf<M, C>>(
    channels: C | readonly C[],
    options?: TypedSubscriptionOptions<PayloadOf<M, C>, T>,
  ): SSESubscriptionResult<T>;
  /** `withSSE` with a `transform`: it gets the channels' payload and returns what `sseData` holds. */
  withSSE<P extends { sseData: SSESubscriptionResult<unknown> }, C extends ChannelOf<M>>(
    Component: ComponentType<P>,
    options: TypedWithSSEOptions<M, C, P, true> | ((props: Omit<P, 'sseData'>) => TypedWithSSEOptions<M, C, P, true>),
  ): ComponentType<Omit<P, 'sseData'>>;
  /** `withSSE` without a `transform`: only channels whose payload is what the component's `sseData` holds. */
  withSSE<P extends { sseData: SSESubscriptionResult<unknown> }, C extends ChannelCarrying<M, DataOf<P>>>(
    Component: ComponentType<P>,
    options: TypedWithSSEOptions<M, C, P, false> | ((props: Omit<P, 'sseData'>) => TypedWithSSEOptions<M, C, P, false>),
  ): ComponentType<Omit<P, 'sseData'>>;
  /** The same client, typed by the map. */
  typed(client: SseClient): TypedSseClient<M>;
}

/** The payload type a component's `sseData` prop asks for. */
type DataOf<P> = P extends { sseData: SSESubscriptionResult<infer T> } ? T : unknown;

/** The channel strings of the namespaces whose payload is assignable to `T`. */
export type ChannelCarrying<M extends ChannelMap, T> = {
  [N in keyof M & string]: M[N] extends T ? N | `${N}:${string}` : never;
}[keyof M & string];

/** Typed `withSSE` options, with a required `transform` or none. */
type TypedWithSSEOptions<M extends ChannelMap, C extends string, P, Transformed extends boolean> = Omit<
  TypedSubscriptionOptions<PayloadOf<M, C>, DataOf<P>>,
  'transform'
> & { channels: C | readonly C[] } & (Transformed extends true
    ? { transform: (data: PayloadOf<M, C>, event: TypedClientEvent<PayloadOf<M, C>>) => DataOf<P> }
    : { transform?: undefined });

/**
 * The bindings typed by a channel map, given once for the app. Costs nothing at run time: the functions are
 * the untyped ones.
 *
 * @example
 * ```tsx
 * type Channels = { logs: { line: string }; metrics: { value: number } };
 * export const { useSSESubscription, withSSE, typed } = createTypedSSE<Channels>();
 * const { lastMessage } = useSSESubscription('metrics:ws1'); // lastMessage: { value: number } | undefined
 * ```
 */
export function createTypedSSE<M extends ChannelMap>(): TypedSSE<M> {
  return {
    useSSESubscription: useSSESubscription as TypedSSE<M>['useSSESubscription'],
    withSSE: withSSE as unknown as TypedSSE<M>['withSSE'],
    typed: (client) => client as unknown as TypedSseClient<M>,
  };
}
