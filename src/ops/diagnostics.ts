/**
 * The named points where a gateway reports what happens to streams, on `node:diagnostics_channel`: the one
 * place that the `audit` option, `registerMetrics` and anyone else (tests, tracing) subscribe to. A point
 * with no subscriber costs one property read, so nothing is paid when nobody listens. Points fire per stream
 * (connect, disconnect, reject, replay) or per upstream bridge state change, never per event.
 */
import diagnostics from 'node:diagnostics_channel';
import type { AuditEntry } from '../types';
import type { BridgeState, UpstreamBridge } from '../upstream/types';

/** Names of the diagnostics channels. */
export const DiagnosticsChannel = {
  /** Every {@link AuditEntry}: `connect`, `disconnect`, `reject`. Message: {@link StreamDiagnostic}. */
  stream: 'sse-gateway:stream',
  /** A Last-Event-ID replay was served or reset. Message: {@link ReplayDiagnostic}. */
  replay: 'sse-gateway:replay',
  /** A `bridgeUpstream()` changed state. Message: {@link UpstreamDiagnostic}. */
  upstream: 'sse-gateway:upstream',
} as const;

/** What `sse-gateway:stream` carries: the audit entry and the gateway it happened on. */
export interface StreamDiagnostic {
  /** Identifies the gateway (its router), so one process's gateways can be told apart. */
  readonly gateway: object;
  readonly entry: AuditEntry;
}

/** What `sse-gateway:replay` carries. */
export interface ReplayDiagnostic {
  readonly gateway: object;
  /** `replayed`: missed events were sent; `reset`: `sse:reset` was sent instead. */
  readonly result: 'replayed' | 'reset';
  /** Events replayed (0 for a reset). */
  readonly events: number;
  /** Why the replay was reset. */
  readonly reason?: string;
}

/** What `sse-gateway:upstream` carries: one state change of a bridge. */
export interface UpstreamDiagnostic {
  /** The bridge, as `bridgeUpstream()` returned it. */
  readonly upstream: UpstreamBridge;
  /** Its `name` option. */
  readonly name: string | undefined;
  readonly state: BridgeState;
  readonly previous: BridgeState;
  /** The bridge's last failure at this moment (see `BridgeStatus.lastError`). */
  readonly lastError: string | undefined;
}

const streamChannel = diagnostics.channel(DiagnosticsChannel.stream);
const replayChannel = diagnostics.channel(DiagnosticsChannel.replay);
const upstreamChannel = diagnostics.channel(DiagnosticsChannel.upstream);

/** Report a stream's connect, disconnect or reject. */
export function reportStream(message: StreamDiagnostic): void {
  if (streamChannel.hasSubscribers) streamChannel.publish(message);
}

/** Report a replay's outcome. */
export function reportReplay(message: ReplayDiagnostic): void {
  if (replayChannel.hasSubscribers) replayChannel.publish(message);
}

/** Report a bridge's state change. */
export function reportUpstream(message: UpstreamDiagnostic): void {
  if (upstreamChannel.hasSubscribers) upstreamChannel.publish(message);
}

/**
 * Subscribe to one gateway's messages on a diagnostics channel. Returns the unsubscribe function.
 *
 * @param gateway - the gateway whose messages are wanted.
 */
export function subscribeDiagnostics<M extends { gateway: object }>(
  name: (typeof DiagnosticsChannel)[keyof typeof DiagnosticsChannel],
  gateway: object,
  listener: (message: M) => void,
): () => void {
  const handler = (message: unknown): void => {
    if ((message as M).gateway === gateway) listener(message as M);
  };
  diagnostics.subscribe(name, handler);
  return () => {
    diagnostics.unsubscribe(name, handler);
  };
}
