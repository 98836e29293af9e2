/**
 * `POST {path}/publish` for services: a Bearer token names the publisher, whose channel patterns bound what
 * it may publish. With `admin` set as well, a request without a publisher's token falls back to
 * `admin.authorize`.
 */
import type { Request, Response, Router } from 'express';
import { SseError } from '../protocol/errors';
import { internalError, sendError } from '../server/http-errors';
import type { GatewayConfig } from '../server/options';
import { below } from '../server/paths';
import { type PublishCaller, type PublishTarget, publishFromRequest } from './publish';

/** The caller the `admin` option admits: any channel of the gateway, `admin.maxBodyBytes`. */
export function adminCaller(admin: NonNullable<GatewayConfig['admin']>): PublishCaller {
  return { label: 'admin', topics: undefined, maxBodyBytes: admin.maxBodyBytes };
}

/** Who the request is: a publisher by its token, else an admin, else nobody (and the answer is sent). */
async function authenticate(req: Request, res: Response, config: GatewayConfig): Promise<PublishCaller | undefined> {
  const authorization = req.get('authorization');
  const publisher = config.publishers?.identify(authorization);
  if (publisher !== undefined) {
    return { label: `publisher ${publisher.name}`, topics: publisher.topics, maxBodyBytes: publisher.maxBodyBytes };
  }
  if (config.admin !== undefined) {
    try {
      if ((await config.admin.authorize(req)) === true) return adminCaller(config.admin);
    } catch (cause) {
      config.logger.error('sse-gateway: admin.authorize threw', cause);
      sendError(res, internalError());
      return undefined;
    }
  }
  const presented = authorization !== undefined && /^Bearer /i.test(authorization);
  res.setHeader(
    'WWW-Authenticate',
    presented ? 'Bearer realm="sse-gateway", error="invalid_token"' : 'Bearer realm="sse-gateway"',
  );
  sendError(
    res,
    new SseError(
      'ERR_SSE_UNAUTHENTICATED',
      presented
        ? 'The Bearer token is not a publisher token of this gateway.'
        : 'Send a publisher token: Authorization: Bearer <token>.',
      401,
    ),
  );
  return undefined;
}

/**
 * Mount `POST {path}/publish` for the `publishers` option (nothing when it is absent; the admin routes then
 * serve the route alone).
 *
 * Only the `Authorization` header authenticates a publisher, never a cookie, and the body must be JSON: a
 * cross-site HTML form can send neither, so it cannot publish.
 *
 * @param router - the gateway's router.
 * @param target - this gateway: events go to its `publish`, on its bus.
 * @param config - its parsed options.
 * @example
 * mountPublishApi(router, gateway, gateway.config);
 */
export function mountPublishApi(router: Router, target: PublishTarget, config: GatewayConfig): void {
  if (config.publishers === undefined) return;
  router.post(below(config.path, '/publish'), (req, res) => {
    const run = async (): Promise<void> => {
      const caller = await authenticate(req, res, config);
      if (caller !== undefined) await publishFromRequest(req, res, target, config, caller);
    };
    run().catch((cause: unknown) => {
      config.logger.error('sse-gateway: unexpected error in POST publish', cause);
      sendError(res, internalError());
    });
  });
}
