/**
 * Draining: moving every stream of an instance to the others without losing an event. Open streams are
 * ended in waves over the window, each told to come back after a jittered `retry:`; the browsers reconnect
 * through the load balancer, elsewhere, with their Last-Event-ID, and the spread keeps the other instances
 * from taking every tab in the same second. New stream requests are sent away the way an EventSource
 * survives: it treats any non-200 answer as final, so it gets 200, a `retry:` and an immediate end.
 */
import type { Request, Response } from 'express';
import { formatRetry } from '../protocol/framing';
import type { Connection } from '../server/connection';
import { startEventStream } from '../server/event-stream';

/** Waves a drain ends streams in: enough to spread, few enough to keep timers cheap. */
const WAVES = 10;

/** A reconnect delay between half and all of `ms`, so clients sent away together come back apart. */
export function jitteredRetry(ms: number): number {
  return Math.round(ms * (0.5 + 0.5 * Math.random()));
}

/** True when the request is an EventSource's (it accepts `text/event-stream`). */
export function wantsEventStream(req: Request): boolean {
  return (req.get('accept') ?? '').includes('text/event-stream');
}

/** Send an EventSource away: 200, a jittered `retry:`, and the end of the stream. */
export function sendAway(req: Request, res: Response, retryMs: number): void {
  startEventStream(req, res);
  res.end(formatRetry(jitteredRetry(retryMs)));
}

/**
 * End `connections` in {@link WAVES} waves spread over `timeoutMs`, each after a jittered `retry:`.
 * Resolves when every one of them has closed.
 *
 * @param retryMs - the reconnect delay the clients are given (jittered).
 */
export function drainConnections(
  connections: ReadonlySet<Connection>,
  timeoutMs: number,
  retryMs: number,
): Promise<void> {
  const open = [...connections];
  // A random order, so the first wave is not always the oldest streams.
  for (let i = open.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [open[i], open[j]] = [open[j] as Connection, open[i] as Connection];
  }
  const closed = open.map(
    (connection) =>
      new Promise<void>((resolve) => {
        if (connection.isClosed) resolve();
        else connection.res.once('close', () => resolve());
      }),
  );
  const perWave = Math.ceil(open.length / WAVES);
  for (let wave = 0; wave < WAVES; wave++) {
    const batch = open.slice(wave * perWave, (wave + 1) * perWave);
    if (batch.length === 0) break;
    const timer = setTimeout(
      () => {
        for (const connection of batch) connection.endWithRetry(formatRetry(jitteredRetry(retryMs)));
      },
      (wave * timeoutMs) / WAVES,
    );
    timer.unref();
  }
  return Promise.all(closed).then(() => undefined);
}
