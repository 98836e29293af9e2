/**
 * The defaults every factory shares (`sseMiddleware`, `sseProxy`, `bridgeUpstream`), in one table, so the
 * gateway and the proxy cannot drift apart: a browser behind either sees the same heartbeat and `retry:`.
 */

/** The shape of {@link DEFAULTS}. */
export interface Defaults {
  /** Comment line toward the client after this much silence, in ms: below the 60 s many proxies allow. */
  readonly heartbeatMs: number;
  /** The `retry:` sent on connect, in ms. */
  readonly retryMs: number;
  /** Time allowed for an upstream's response headers, in ms. */
  readonly connectTimeoutMs: number;
  /** The Last-Event-ID replay window: how many missed events of a stream's own channels, and how old. */
  readonly replay: { readonly size: number; readonly ttlMs: number };
  /**
   * How long a stream's data may go unacknowledged by its peer before the stream is destroyed, in ms: as long
   * as nginx's `send_timeout`, so a stream behind nginx and one straight from the gateway fare alike.
   */
  readonly deadPeerTimeoutMs: number;
}

/**
 * The shared defaults, frozen. Defaults to `heartbeatMs: 25000`, `retryMs: 5000`, `connectTimeoutMs: 10000`
 * a replay window of `{ size: 1000, ttlMs: 600000 }` and `deadPeerTimeoutMs: 60000`.
 *
 * @example
 * integer('sseProxy: `retryMs`', options.retryMs, DEFAULTS.retryMs, 0);
 */
export const DEFAULTS: Defaults = Object.freeze({
  heartbeatMs: 25_000,
  retryMs: 5000,
  connectTimeoutMs: 10_000,
  replay: Object.freeze({ size: 1000, ttlMs: 600_000 }),
  deadPeerTimeoutMs: 60_000,
});
