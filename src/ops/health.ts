/**
 * Probes: `GET {path}/health/live` (the process serves requests; never depends on the bus, so a Redis blip
 * does not restart pods) and `GET {path}/health/ready` (this instance should get new streams: not draining,
 * not closing, bus connected). Neither reveals counts, channels or users.
 */
import type { Request, Response, Router } from 'express';
import { below } from '../server/paths';

/** What readiness reads. */
export interface ReadinessSource {
  readonly closing: boolean;
  readonly draining: boolean;
  busConnected(): boolean;
}

/** The readiness state: `ready`, or why not. */
export type Readiness = 'ready' | 'draining' | 'closing' | 'bus-unavailable';

/** The readiness of `source` now. */
export function readiness(source: ReadinessSource): Readiness {
  if (source.closing) return 'closing';
  if (source.draining) return 'draining';
  return source.busConnected() ? 'ready' : 'bus-unavailable';
}

function probe(res: Response, status: number, body: { status: string }): void {
  res.status(status).setHeader('Cache-Control', 'no-store');
  res.json(body);
}

/** Mount both probes below `path`. */
export function mountHealthRoutes(router: Router, path: string, source: ReadinessSource): void {
  router.get(below(path, '/health/live'), (_req: Request, res: Response) => probe(res, 200, { status: 'live' }));
  router.get(below(path, '/health/ready'), (_req: Request, res: Response) => {
    const state = readiness(source);
    probe(res, state === 'ready' ? 200 : 503, { status: state });
  });
}
