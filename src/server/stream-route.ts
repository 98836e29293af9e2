/**
 * `GET {path}`: parse the requested channels → admit → resolve the principal → authorise → open. Every
 * refusal is an {@link SseError}, counted, audited and answered through `gateway.reject` before the stream
 * starts.
 */
import type { Request, Response } from 'express';
import { sendAway, wantsEventStream } from '../ops/drain';
import { SseError } from '../protocol/errors';
import type { Principal } from '../types';
import { resolvePrincipal } from './access';
import type { Gateway } from './gateway';
import { internalError } from './http-errors';
import { forbiddenChannels, requestedChannels } from './topics';

/** The 503 of a gateway that is shutting down. */
export function closingError(): SseError {
  return new SseError('ERR_SSE_CLOSING', 'The stream endpoint is shutting down; reconnect shortly.', 503);
}

/**
 * Answer a request that a closing or draining gateway will not serve. An EventSource is sent away with 200,
 * a jittered `retry:` and an immediate end: any other status would stop it for good, and during a deploy the
 * instance may keep listening for a few seconds after `close()`. Other requests get 503 with `Retry-After`.
 */
function turnAway(gateway: Gateway, req: Request, res: Response, names: readonly string[]): void {
  if (wantsEventStream(req)) sendAway(req, res, gateway.config.retryMs);
  else gateway.reject(req, res, closingError(), names);
}

/** Answer one stream request: open the stream, or send the error that says why not. */
export async function handleStreamRequest(gateway: Gateway, req: Request, res: Response): Promise<void> {
  const { config, admission } = gateway;
  const params = new URL(req.originalUrl ?? req.url, 'http://localhost').searchParams;
  const names = requestedChannels(params);
  if (gateway.closing || gateway.draining) return turnAway(gateway, req, res, names);
  const topics = gateway.topics.parseAll(names);
  if (topics instanceof SseError) return gateway.reject(req, res, topics, names);
  const full = admission.checkPending();
  if (full !== undefined) return gateway.reject(req, res, full, names);

  const done = admission.begin();
  let principal: Principal | undefined;
  try {
    // A disconnect() of this principal while its callbacks ran invalidates their answers: decide once more.
    for (let attempt = 0; attempt < 2; attempt++) {
      principal = await resolvePrincipal(config, req);
      const generation = gateway.authorizer.generation(principal.id);
      const denied = await gateway.authorizer.denied(principal, topics, req);
      if (denied.length > 0) return gateway.reject(req, res, forbiddenChannels(denied), names, principal);
      if (gateway.authorizer.generation(principal.id) === generation) break;
      if (attempt === 1) {
        const revoked = new SseError('ERR_SSE_UNAUTHENTICATED', 'The session changed while the stream opened.', 401);
        return gateway.reject(req, res, revoked, names, principal);
      }
    }
  } catch (error) {
    return gateway.reject(req, res, error instanceof SseError ? error : internalError(), names, principal);
  } finally {
    done();
  }
  if (principal === undefined) return;

  // The client may have gone, or the gateway closed, while callbacks ran.
  if (res.destroyed || req.destroyed || res.writableEnded) return;
  if (gateway.closing || gateway.draining) return turnAway(gateway, req, res, names);
  let refused = admission.check(principal);
  if (refused?.code === 'ERR_SSE_TOO_MANY_USER_CONNECTIONS' && config.limits.onUserLimit === 'end-oldest') {
    gateway.endOldest(principal);
    refused = admission.check(principal);
  }
  if (refused !== undefined) return gateway.reject(req, res, refused, names, principal);
  const lastEventId = req.get('last-event-id') ?? params.get('lastEventId') ?? undefined;
  gateway.open(principal, topics, req, res, lastEventId);
}
