/**
 * Opt-in admin routes below the stream path: `GET {path}/stats` and `POST {path}/publish` (whose body is
 * read and checked by the publish API, JSON only and capped whether or not a body parser ran first).
 */
import type { Request, Response, Router } from 'express';
import { SseError } from '../protocol/errors';
import { publishFromRequest } from '../publish-api/publish';
import { adminCaller } from '../publish-api/router';
import type { PublishOptions, SseEvent, SseStats } from '../types';
import { internalError, sendError } from './http-errors';
import type { GatewayConfig } from './options';
import { below } from './paths';

interface AdminTarget {
  publish(channel: string, data: unknown, options?: Omit<PublishOptions, 'bus'>): Promise<SseEvent>;
  stats(): SseStats;
}

/** Resolves true when `admin.authorize` lets `req` in; otherwise it has answered 403 (or 500) and resolves false. */
export type AdminGuard = (req: Request, res: Response) => Promise<boolean>;

/** The check in front of every admin route. */
export function adminGuard(config: GatewayConfig): AdminGuard {
  const admin = config.admin;
  return async (req, res) => {
    try {
      if (admin !== undefined && (await admin.authorize(req)) === true) return true;
      sendError(res, new SseError('ERR_SSE_FORBIDDEN', 'Not allowed to use the admin routes of this stream.', 403));
    } catch (cause) {
      config.logger.error('sse-gateway: admin.authorize threw', cause);
      sendError(res, internalError());
    }
    return false;
  };
}

/** Mount the admin routes on `router`. */
export function mountAdminRoutes(router: Router, gateway: AdminTarget, config: GatewayConfig): void {
  const admin = config.admin;
  if (admin === undefined) return;
  const allowed = adminGuard(config);

  router.get(below(config.path, '/stats'), async (req, res) => {
    if (await allowed(req, res)) res.set('Cache-Control', 'no-store').json(gateway.stats());
  });

  // With `publishers` set, the publish API serves this route and falls back to `admin.authorize` itself.
  if (config.publishers !== undefined) return;
  router.post(below(config.path, '/publish'), async (req, res) => {
    if (await allowed(req, res)) await publishFromRequest(req, res, gateway, config, adminCaller(admin));
  });
}
