/**
 * `@datashop/sse-gateway`: Server-Sent Events for Express backends-for-frontends.
 */

export type { BridgeOptions, BridgeReconnectOptions, BridgeStatus, SubscriptionSource, UpstreamBridge } from './bridge';
export { bridgeUpstream } from './bridge';
export { publishEvent } from './default-bus';
export type { SseErrorCode } from './errors';
export { SseError } from './errors';
export type { SseMessage } from './framing';
export { formatComment, formatEvent } from './framing';
export { sseMiddleware } from './gateway';
export { createMemoryBus } from './memory-bus';
export type { UpstreamFailureReason } from './proxy';
export { sseProxy } from './proxy';
export { createRedisBus } from './redis-bus';
export type { ParsedSseEvent, SseParser, SseParserOptions } from './sse-parser';
export { createSseParser, DEFAULT_MAX_EVENT_SIZE } from './sse-parser';
export type * from './types';
