/**
 * `GET {path}`: parse the requested channels → admit → resolve the principal → authorise → open. Every
 * refusal is an {@link SseError} answered through `sendError` before the stream starts.
 */
import type { Request, Response } from 'express';
import { SseError } from '../protocol/errors';
import { resolvePrincipal } from './access';
import type { Gateway } from './gateway';
import { internalError, sendError } from './http-errors';
import { forbiddenChannels, requestedChannels } from './topics';

/** The 503 of a gateway that is shutting down. */
export function closingError(): SseError {
  return new SseError('ERR_SSE_CLOSING', 'The stream endpoint is shutting down; reconnect shortly.', 503);
}

/** Answer one stream request: open the stream, or send the error that says why not. */
export async function handleStreamRequest(gateway: Gateway, req: Request, res: Response): Promise<void> {
  const { config, admission } = gateway;
  const retryAfter = config.limits.retryAfterSeconds;
  if (gateway.closing) return sendError(res, closingError(), retryAfter);
  const params = new URL(req.originalUrl ?? req.url, 'http://localhost').searchParams;
  const topics = gateway.topics.parseAll(requestedChannels(params));
  if (topics instanceof SseError) return sendError(res, topics);
  const full = admission.checkPending();
  if (full !== undefined) return sendError(res, full, retryAfter);

  const done = admission.begin();
  let principal: Awaited<ReturnType<typeof resolvePrincipal>>;
  try {
    principal = await resolvePrincipal(config, req);
    const denied = await gateway.authorizer.denied(principal, topics, req);
    if (denied.length > 0) return sendError(res, forbiddenChannels(denied));
  } catch (error) {
    return sendError(res, error instanceof SseError ? error : internalError());
  } finally {
    done();
  }

  // The client may have gone, or the gateway closed, while callbacks ran.
  if (res.destroyed || req.destroyed || res.writableEnded) return;
  if (gateway.closing) return sendError(res, closingError(), retryAfter);
  const refused = admission.check(principal);
  if (refused !== undefined) return sendError(res, refused, retryAfter);
  const lastEventId = req.get('last-event-id') ?? params.get('lastEventId') ?? undefined;
  gateway.open(principal, topics, req, res, lastEventId);
}
