/**
 * `@datashop/sse-gateway`: Server-Sent Events for Express backends-for-frontends.
 */

export { publishEvent } from './bus/default-bus';
export { createMemoryBus } from './bus/memory-bus';
export { createRedisBus } from './bus/redis';
export { isChannel, isSegment } from './protocol/channels';
export type { SseErrorCode } from './protocol/errors';
export { SseError } from './protocol/errors';
export type { SseMessage } from './protocol/framing';
export { formatComment, formatEvent } from './protocol/framing';
export type { ParsedSseEvent, SseParser, SseParserOptions } from './protocol/sse-parser';
export { createSseParser, DEFAULT_MAX_EVENT_SIZE } from './protocol/sse-parser';
export type { ChannelMap, ChannelOf, PayloadOf } from './protocol/typed-channels';
export { sseMiddleware } from './server/gateway';
export type { TypedPublisher } from './server/typed-publisher';
export { createPublisher } from './server/typed-publisher';
export type * from './types';
export type {
  BridgeOptions,
  BridgeReconnectOptions,
  BridgeState,
  BridgeStatus,
  SubscriptionSource,
  UpstreamBridge,
} from './upstream/bridge';
export { bridgeUpstream } from './upstream/bridge';
export type { UpstreamErrorCounts, UpstreamErrorReason } from './upstream/failures';
export type { ProxyStats, UpstreamFailureReason, UpstreamProxy } from './upstream/proxy';
export { sseProxy } from './upstream/proxy';
