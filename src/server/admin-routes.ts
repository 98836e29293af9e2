/**
 * Opt-in admin routes below the stream path: `GET {path}/stats` and `POST {path}/publish`.
 */
import type { Request, Response, Router } from 'express';
import { SseError } from '../protocol/errors';
import type { PublishOptions, SseEvent, SseStats } from '../types';
import { internalError, sendError } from './http-errors';
import type { GatewayConfig } from './options';

interface AdminTarget {
  publish(channel: string, data: unknown, options?: Omit<PublishOptions, 'bus'>): Promise<SseEvent>;
  stats(): SseStats;
}

const fail = sendError;

/** Read a JSON body up to `limit` bytes, unless a body parser already did. */
export async function readJson(req: Request, limit: number): Promise<unknown> {
  const parsed = (req as Request & { body?: unknown }).body;
  if (parsed !== undefined && typeof parsed === 'object' && parsed !== null && !Buffer.isBuffer(parsed)) return parsed;
  if (!/^application\/(.+\+)?json\b/i.test(req.get('content-type') ?? '')) {
    throw new SseError('ERR_SSE_BAD_REQUEST', 'Send the event as JSON with Content-Type: application/json.', 415);
  }
  const declared = Number(req.get('content-length'));
  if (declared > limit)
    throw new SseError('ERR_SSE_PAYLOAD_TOO_LARGE', `The body exceeds ${limit} bytes.`, 413, { limit });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      throw new SseError('ERR_SSE_PAYLOAD_TOO_LARGE', `The body exceeds ${limit} bytes.`, 413, { limit });
    }
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new SseError('ERR_SSE_BAD_REQUEST', 'The body is not valid JSON.', 400);
  }
}

/** Mount the admin routes on `router`. */
export function mountAdminRoutes(router: Router, gateway: AdminTarget, config: GatewayConfig): void {
  const admin = config.admin;
  if (admin === undefined) return;
  const allowed = async (req: Request, res: Response): Promise<boolean> => {
    try {
      if ((await admin.authorize(req)) === true) return true;
      fail(res, new SseError('ERR_SSE_FORBIDDEN', 'Not allowed to use the admin routes of this stream.', 403));
    } catch (cause) {
      config.logger.error('sse-gateway: admin.authorize threw', cause);
      fail(res, internalError());
    }
    return false;
  };

  router.get(`${config.path}/stats`, async (req, res) => {
    if (await allowed(req, res)) res.set('Cache-Control', 'no-store').json(gateway.stats());
  });

  router.post(`${config.path}/publish`, async (req, res) => {
    if (!(await allowed(req, res))) return;
    try {
      const body = await readJson(req, admin.maxBodyBytes);
      const { channel, data, users, idempotencyKey } = (body ?? {}) as {
        channel?: unknown;
        data?: unknown;
        users?: unknown;
        idempotencyKey?: unknown;
      };
      if (typeof channel !== 'string') {
        throw new SseError(
          'ERR_SSE_BAD_REQUEST',
          'The body needs a string `channel`: { "channel": "logs:ws1", "data": … }.',
          400,
        );
      }
      // A retried POST carries the same key (in the body, or as the `Idempotency-Key` header): published once.
      const key = idempotencyKey ?? req.get('idempotency-key');
      const event = await gateway.publish(channel, data, {
        ...(users === undefined ? {} : { users: users as string[] }),
        ...(key === undefined ? {} : { idempotencyKey: key as string }),
      });
      res.status(201).json({ id: event.id, channel: event.channel, time: event.time });
    } catch (error) {
      if (error instanceof SseError && error.status < 500) return fail(res, error);
      config.logger.error('sse-gateway: publish over HTTP failed', error);
      fail(res, error instanceof SseError ? error : new SseError('ERR_SSE_BUS_UNAVAILABLE', 'Publishing failed.', 503));
    }
  });
}
