/**
 * `@datashop/sse-gateway`: Server-Sent Events for Express backends-for-frontends.
 */
export { sseMiddleware } from './gateway';
export { publishEvent } from './default-bus';
export { createMemoryBus } from './memory-bus';
export { SseError } from './errors';
export type { SseErrorCode } from './errors';
export { formatEvent, formatComment } from './framing';
export type { SseMessage } from './framing';
export type * from './types';
