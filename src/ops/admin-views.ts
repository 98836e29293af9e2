/**
 * Admin views of this instance, behind `admin.authorize`: `GET {path}/connections` (paged: id, principal,
 * channels, age, buffered bytes) and `GET {path}/channels` (each indexed topic with its local stream count).
 * They describe this instance only; with several instances, ask each.
 */
import type { Router } from 'express';
import type { AdminGuard } from '../server/admin-routes';
import type { ChannelIndex } from '../server/channel-index';
import type { Connection } from '../server/connection';
import { below } from '../server/paths';

/** What the views read. */
export interface AdminViewSource {
  readonly connections: ReadonlySet<Connection>;
  readonly index: ChannelIndex<Connection>;
}

/** One row of `GET {path}/connections`. */
export interface ConnectionView {
  readonly id: string;
  readonly principalId: string;
  readonly channels: readonly string[];
  readonly ageMs: number;
  readonly bufferedBytes: number;
  readonly ip: string | undefined;
}

const MAX_PAGE = 500;

function pageParam(value: unknown, fallback: number, max: number): number {
  const parsed = typeof value === 'string' ? Number.parseInt(value, 10) : Number.NaN;
  return Number.isInteger(parsed) && parsed >= 0 ? Math.min(parsed, max) : fallback;
}

/** Mount both views below `path`. */
export function mountAdminViews(router: Router, path: string, source: AdminViewSource, allowed: AdminGuard): void {
  router.get(below(path, '/connections'), async (req, res) => {
    if (!(await allowed(req, res))) return;
    const offset = pageParam(req.query.offset, 0, Number.MAX_SAFE_INTEGER);
    const limit = pageParam(req.query.limit, 100, MAX_PAGE);
    const now = Date.now();
    const all = [...source.connections];
    const connections: ConnectionView[] = all.slice(offset, offset + limit).map((connection) => ({
      id: connection.id,
      principalId: connection.principal.id,
      channels: source.index.topicsOf(connection).map((t) => t.name),
      ageMs: now - connection.openedAt,
      bufferedBytes: connection.bufferedBytes,
      ip: connection.ip,
    }));
    res.set('Cache-Control', 'no-store').json({ total: all.length, offset, limit, connections });
  });
  router.get(below(path, '/channels'), async (req, res) => {
    if (!(await allowed(req, res))) return;
    const counts = new Map<string, number>();
    for (const connection of source.connections) {
      for (const topic of source.index.topicsOf(connection)) counts.set(topic.name, (counts.get(topic.name) ?? 0) + 1);
    }
    const channels = [...counts]
      .map(([topic, streams]) => ({ topic, streams }))
      .sort((a, b) => (a.topic < b.topic ? -1 : 1));
    res.set('Cache-Control', 'no-store').json({ channels });
  });
}
