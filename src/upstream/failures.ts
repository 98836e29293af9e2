/**
 * The failures `sseProxy` and `bridgeUpstream` count, by reason and (for `upstream-status`) by HTTP status:
 * what their `stats()`/`status()` report and what `sse_upstream_errors_total` is made of. A failure is a
 * connection event, never a per-event one, so counting it costs nothing on the event path.
 */
import type { UpstreamFailureReason } from './client';

/**
 * Why an upstream stream could not be opened or stopped: the reasons of `sse:error` (an attempt that gave no
 * stream), plus `upstream-ended` (the upstream ended or dropped an open stream), `upstream-idle` (a bridge
 * heard nothing for `idleTimeoutMs`) and `publish-failed` (a bridge's bus refused a publish).
 */
export type UpstreamErrorReason =
  | Exclude<UpstreamFailureReason, 'aborted'>
  | 'upstream-ended'
  | 'upstream-idle'
  | 'publish-failed';

/** Failures of one proxy or bridge since it was created. */
export interface UpstreamErrorCounts {
  /** Failures by reason; a reason that never happened is absent. */
  readonly errors: Readonly<Partial<Record<UpstreamErrorReason, number>>>;
  /** `upstream-status` failures by the upstream's HTTP status (`"502"`, `"401"`, `"204"`, …). */
  readonly statuses: Readonly<Record<string, number>>;
}

/** @internal A tally of failures; `snapshot()` copies it for a status view. */
export class FailureTally {
  private readonly errors: Partial<Record<UpstreamErrorReason, number>> = {};
  private readonly statuses: Record<string, number> = {};

  /** Count one failure; `status` only counts for `upstream-status`. */
  count(reason: UpstreamErrorReason, status?: number): void {
    this.errors[reason] = (this.errors[reason] ?? 0) + 1;
    if (reason === 'upstream-status' && status !== undefined) {
      const key = String(status);
      this.statuses[key] = (this.statuses[key] ?? 0) + 1;
    }
  }

  snapshot(): UpstreamErrorCounts {
    return { errors: { ...this.errors }, statuses: { ...this.statuses } };
  }
}
