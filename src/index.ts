/**
 * `@datashop/sse-gateway`: Server-Sent Events for Express backends-for-frontends.
 */

export { publishEvent } from './default-bus';
export type { SseErrorCode } from './errors';
export { sseProxy } from './proxy';
export type { UpstreamFailureReason } from './proxy';
export { bridgeUpstream } from './bridge';
export type { BridgeOptions, BridgeReconnectOptions, BridgeStatus, SubscriptionSource, UpstreamBridge } from './bridge';
export { createSseParser, DEFAULT_MAX_EVENT_SIZE } from './sse-parser';
export type { ParsedSseEvent, SseParser, SseParserOptions } from './sse-parser';
export { SseError } from './errors';
export type { SseMessage } from './framing';
export { formatComment, formatEvent } from './framing';
export { sseMiddleware } from './gateway';
export { createMemoryBus } from './memory-bus';
export { createRedisBus } from './redis-bus';
export type * from './types';
