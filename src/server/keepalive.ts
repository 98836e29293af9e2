/**
 * Timers of open streams: the heartbeat comment, and the age sweep that ends streams past
 * `limits.maxConnectionAgeMs`. One timer each for every stream, running only while streams are open.
 */
import { encodeFrame } from '../bus/event';
import { formatComment } from '../protocol/framing';
import type { Connection } from './connection';

const HEARTBEAT = encodeFrame(formatComment('heartbeat'));

/** Heartbeats and the age sweep over a gateway's connections. */
export class KeepAlive {
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private ageTimer: NodeJS.Timeout | undefined;

  /**
   * @param connections - the open streams.
   * @param heartbeatMs - heartbeat interval.
   * @param maxAgeMs - the age limit, `Infinity` for none.
   * @param onExpired - called for each stream ended for its age.
   */
  constructor(
    private readonly connections: ReadonlySet<Connection>,
    private readonly heartbeatMs: number,
    private readonly maxAgeMs: number,
    private readonly onExpired: () => void,
  ) {}

  /** Timers running now. */
  get timers(): number {
    return (this.heartbeatTimer === undefined ? 0 : 1) + (this.ageTimer === undefined ? 0 : 1);
  }

  /** A stream opened: start the timers if needed, and give it its end of life (90-100 % of the limit). */
  opened(connection: Connection): void {
    if (this.heartbeatTimer === undefined) {
      this.heartbeatTimer = setInterval(() => {
        for (const open of this.connections) open.heartbeat(HEARTBEAT);
      }, this.heartbeatMs);
      this.heartbeatTimer.unref();
    }
    if (this.maxAgeMs === Number.POSITIVE_INFINITY) return;
    connection.expiresAt = Date.now() + this.maxAgeMs * (0.9 + 0.1 * Math.random());
    if (this.ageTimer !== undefined) return;
    // A quarter of the limit, between 10 ms and a minute: ends land within 25 % of their target.
    this.ageTimer = setInterval(() => this.sweep(), Math.min(60_000, Math.max(10, Math.floor(this.maxAgeMs / 4))));
    this.ageTimer.unref();
  }

  /** Stop every timer (no stream is open, or the gateway closes). */
  stop(): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    if (this.ageTimer !== undefined) clearInterval(this.ageTimer);
    this.heartbeatTimer = undefined;
    this.ageTimer = undefined;
  }

  private sweep(): void {
    const now = Date.now();
    for (const connection of [...this.connections]) {
      if (connection.expiresAt > now) continue;
      this.onExpired();
      connection.closeReason = 'max-age';
      connection.end();
    }
  }
}
