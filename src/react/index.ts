/**
 * `@datashop/sse-gateway/react`: React 18+ bindings over the browser client. One provider, one stream;
 * hooks read a store through `useSyncExternalStore`, so StrictMode, concurrent rendering and server
 * rendering are safe.
 */
export { useSSEStatus, useSSESubscription } from './hooks';
export { SSEProvider } from './provider';
export type {
  ChannelMap,
  ChannelOf,
  PayloadOf,
  TypedClientEvent,
  TypedSSE,
  TypedSseClient,
  TypedSubscriptionOptions,
} from './typed-channels';
export { createTypedSSE } from './typed-channels';
export type {
  SSEProviderProps,
  SSEProviderTuning,
  SSEStatus,
  SSESubscriptionOptions,
  SSESubscriptionResult,
} from './types';
export type { WithSSEOptions } from './with-sse';
export { withSSE } from './with-sse';
