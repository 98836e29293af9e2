/**
 * What the client does after a stream failed before it opened, and after an upstream's `sse:error`: pure
 * decisions from the answer, so the table of cases is read (and tested) in one place.
 */
import { isRetryable } from '../protocol/errors';
import type { UpstreamErrorPayload } from '../protocol/wire';
import type { Failure } from './diagnose';
import type { SseClientError } from './types';

/** The client's next step after a failed stream request. */
export type FailureAction =
  /** Stop with status `closed` (401, or an answer no retry can change); a new subscription starts over. */
  | { readonly kind: 'halt'; readonly error: SseClientError }
  /** Fail these channels' subscriptions (403 or 400 naming them), then reconnect at once with the rest. */
  | { readonly kind: 'drop'; readonly channels: readonly string[]; readonly error: SseClientError }
  /** Retry after the backoff, or after `retryAfterMs` when the answer said so (429, 503). */
  | { readonly kind: 'retry'; readonly retryAfterMs?: number; readonly error: SseClientError };

/** Upstream answers after which a proxied stream must not be retried: "no content", "who are you", "no". */
const UPSTREAM_STOP: ReadonlySet<number> = new Set([204, 401, 403, 404]);

/**
 * Decide what a failed stream request calls for.
 *
 * @param failure - what {@link diagnose} found.
 */
export function decideFailure(failure: Failure): FailureAction {
  const { status, code, message, channels } = failure;
  const error: SseClientError = {
    code: code ?? (status === undefined ? 'ERR_SSE_NETWORK' : `ERR_SSE_HTTP_${status}`),
    ...(status === undefined ? {} : { status }),
    message,
  };
  if (status === 401) return { kind: 'halt', error: { ...error, code: 'ERR_SSE_UNAUTHENTICATED' } };
  if ((status === 403 || status === 400) && channels !== undefined && channels.length > 0) {
    return { kind: 'drop', channels, error };
  }
  // A network failure, or a 200 now: the stream broke on the way, not by an answer; back off and retry.
  if (status === undefined || status === 200 || isRetryable(code, status)) {
    return {
      kind: 'retry',
      ...(failure.retryAfterMs === undefined ? {} : { retryAfterMs: failure.retryAfterMs }),
      error,
    };
  }
  return { kind: 'halt', error };
}

/**
 * The error an upstream's `sse:error` reports, and whether it means "stop" (so that the stream's end
 * closes the client instead of reconnecting for ever).
 *
 * @param payload - the event's data, as parsed (possibly malformed).
 */
export function upstreamFailure(payload: UpstreamErrorPayload | undefined): { error: SseClientError; stop: boolean } {
  const reason = typeof payload?.reason === 'string' ? payload.reason : 'upstream-failed';
  const status = typeof payload?.status === 'number' ? payload.status : undefined;
  const error: SseClientError = {
    code: 'ERR_SSE_UPSTREAM',
    ...(status === undefined ? {} : { status }),
    message: `The upstream stream failed: ${reason}${status === undefined ? '' : ` (${status})`}.`,
  };
  return { error, stop: status !== undefined && UPSTREAM_STOP.has(status) };
}
