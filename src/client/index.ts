/**
 * `@datashop/sse-gateway/client`: the browser side of the gateway. One stream for every subscription,
 * reference-counted channels, resume after drops. Imports nothing from Node or Express.
 */
export { createSseClient } from './client';
export type {
  ClientEvent,
  ClientStatus,
  EventSourceConstructor,
  EventSourceLike,
  MessageEventLike,
  SseClient,
  SseClientError,
  SseClientOptions,
  SubscriptionHandlers,
} from './types';
