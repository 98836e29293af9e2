/**
 * Public types of `@datashop/sse-gateway/react`, as the contract fixes them.
 */
import type { ClientEvent, ClientStatus, SseClient, SseClientError, SseClientOptions } from '../client/types';

/** Options of `useSSESubscription()` (and of `withSSE`, beside `channels`). */
export interface SSESubscriptionOptions<T = unknown> {
  /** `true`: `data` holds every message, newest last, up to `maxItems`; `false`: only the latest. Defaults to `true`. */
  accumulate?: boolean;
  /** How many messages `data` keeps (the oldest go first). Defaults to `200`. */
  maxItems?: number;
  /** Turns a payload into what `data` holds; runs once per event, whatever the number of renders. */
  transform?: (data: unknown, event: ClientEvent) => T;
  /** Keep `data` across unmount/remount and page reloads (sessionStorage). Needs `persistenceKey`. Defaults to `false`. */
  persistence?: boolean;
  /** Names the kept data; hooks with the same key share it. Required with `persistence`. */
  persistenceKey?: string;
  /** `false` unsubscribes (the data so far stays). Defaults to `true`. */
  enabled?: boolean;
}

/** What `useSSESubscription()` returns (and `withSSE` passes as `sseData`). */
export interface SSESubscriptionResult<T = unknown> {
  /** The messages received, newest last (with `accumulate: false`, at most the latest one). */
  readonly data: readonly T[];
  /** The newest message. */
  readonly lastMessage: T | undefined;
  /** The newest event as the client delivered it (before `transform`). */
  readonly lastEvent: ClientEvent | undefined;
  /** Where the provider's stream is. */
  readonly connectionStatus: ClientStatus;
  /** `connectionStatus === 'open'`. */
  readonly isConnected: boolean;
  /** The latest error: a refused channel of this subscription, or the stream's own failure. */
  readonly error: SseClientError | undefined;
}

/** What `useSSEStatus()` returns. */
export interface SSEStatus {
  /** Where the provider's stream is. */
  readonly connectionStatus: ClientStatus;
  /** `connectionStatus === 'open'`. */
  readonly isConnected: boolean;
  /** Why the stream last failed, until it opens again. */
  readonly error: SseClientError | undefined;
}

/** Props of `<SSEProvider>` besides `children`: a client's options, or a client made elsewhere. */
export type SSEProviderProps = (SseClientOptions & { client?: undefined }) | { client: SseClient; url?: undefined };

/** How long a subscription outlives its last component, so a quick remount keeps the server subscription. */
export interface SSEProviderTuning {
  /** Milliseconds a channel stays subscribed after the last component using it unmounted. Defaults to `1500`. */
  graceMs?: number;
}
