/**
 * `@datashop/sse-gateway`: Server-Sent Events for Express backends-for-frontends.
 */

export { publishEvent } from './default-bus';
export type { SseErrorCode } from './errors';
export { SseError } from './errors';
export type { SseMessage } from './framing';
export { formatComment, formatEvent } from './framing';
export { sseMiddleware } from './gateway';
export { createMemoryBus } from './memory-bus';
export type * from './types';
