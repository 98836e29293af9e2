/**
 * Errors users can act on: every one carries a stable `code` and, for HTTP answers, a status. The codes are
 * shared with the browser client, which reads them from error bodies and decides from them whether to retry.
 */

/** Stable codes of {@link SseError}. */
export type SseErrorCode =
  | 'ERR_SSE_INVALID_CHANNEL'
  | 'ERR_SSE_NO_CHANNELS'
  | 'ERR_SSE_TOO_MANY_CHANNELS'
  | 'ERR_SSE_UNAUTHENTICATED'
  | 'ERR_SSE_FORBIDDEN_CHANNEL'
  | 'ERR_SSE_TOO_MANY_CONNECTIONS'
  | 'ERR_SSE_TOO_MANY_USER_CONNECTIONS'
  | 'ERR_SSE_CLOSING'
  | 'ERR_SSE_INVALID_FIELD'
  | 'ERR_SSE_INVALID_DATA'
  | 'ERR_SSE_INVALID_PRINCIPAL'
  | 'ERR_SSE_CALLBACK_FAILED'
  | 'ERR_SSE_BUS_CLOSED'
  | 'ERR_SSE_BUS_UNAVAILABLE'
  | 'ERR_SSE_PAYLOAD_TOO_LARGE'
  | 'ERR_SSE_BAD_REQUEST'
  | 'ERR_SSE_FORBIDDEN'
  | 'ERR_SSE_EVENT_TOO_LARGE'
  | 'ERR_SSE_UNKNOWN_CONNECTION'
  | 'ERR_SSE_INVALID_OPTION';

/**
 * Codes after which the same request may succeed later without any change (back off, then retry): limits,
 * shutdown, an unavailable bus, a failing callback. Every other code needs a change first (sign in, other
 * channels, a fixed request).
 */
export const RETRYABLE_CODES: ReadonlySet<SseErrorCode> = new Set<SseErrorCode>([
  'ERR_SSE_TOO_MANY_CONNECTIONS',
  'ERR_SSE_TOO_MANY_USER_CONNECTIONS',
  'ERR_SSE_CLOSING',
  'ERR_SSE_BUS_UNAVAILABLE',
  'ERR_SSE_CALLBACK_FAILED',
]);

/**
 * True when a request that failed with `code` (or, without a code, with HTTP `status`) is worth retrying
 * after a delay.
 *
 * @param code - the `ERR_SSE_*` code of the error body, if any.
 * @param status - the HTTP status, if any.
 */
export function isRetryable(code: string | undefined, status?: number): boolean {
  if (code?.startsWith('ERR_SSE_')) return RETRYABLE_CODES.has(code as SseErrorCode);
  return status === undefined || status === 408 || status === 429 || status >= 500;
}

/**
 * An error with a stable `code`, an HTTP `status` where it answers a request, and optional details
 * (for example the offending `channels`) that are sent in the JSON body.
 */
export class SseError extends Error {
  /** Stable machine-readable code. */
  readonly code: SseErrorCode;
  /** HTTP status used when the error answers a request. */
  readonly status: number;
  /** Extra fields for the JSON body, such as `channels`. */
  readonly details: Readonly<Record<string, unknown>>;

  /**
   * @param code - stable code.
   * @param message - what happened and what to do.
   * @param status - HTTP status. Defaults to `500`.
   * @param details - extra JSON fields.
   */
  constructor(code: SseErrorCode, message: string, status = 500, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'SseError';
    this.code = code;
    this.status = status;
    this.details = details;
  }

  /** The body sent to clients: `{ error: { code, message, ...details } }`. */
  toJSON(): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}
