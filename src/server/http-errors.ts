/**
 * The one way an {@link SseError} becomes an HTTP answer, for every route of the package (stream,
 * subscriptions, publish, admin, proxy): its status, `Cache-Control: no-store`, `Retry-After` where given,
 * and the JSON body `{ "error": { "code", "message", ... } }`.
 */
import type { Response } from 'express';
import { SseError } from '../protocol/errors';

/**
 * Answer `res` with `error`. When the headers are already out (a stream had started), the response is
 * destroyed instead: a half-written stream must not get a JSON body appended.
 *
 * @param retryAfterSeconds - sent as `Retry-After` (429, 503).
 */
export function sendError(res: Response, error: SseError, retryAfterSeconds?: number): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(retryAfterSeconds));
  res.status(error.status).setHeader('Cache-Control', 'no-store');
  res.json(error.toJSON());
}

/** An unexpected failure as the 500 `ERR_SSE_CALLBACK_FAILED` that clients see (details stay in the log). */
export function internalError(): SseError {
  return new SseError('ERR_SSE_CALLBACK_FAILED', 'Internal error.', 500);
}
