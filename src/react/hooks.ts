/**
 * `useSSESubscription` and `useSSEStatus`: reads of the provider's store through `useSyncExternalStore`.
 */
import { useCallback, useEffect, useId, useMemo, useRef, useSyncExternalStore } from 'react';
import type { ClientEvent } from '../client/types';
import { EMPTY_SNAPSHOT, type EntrySnapshot } from './entry';
import { parseSubscription, type TransformRef } from './options';
import { useStore } from './provider';
import type { SSEStatus, SSESubscriptionOptions, SSESubscriptionResult } from './types';

const getServerSnapshot = (): EntrySnapshot => EMPTY_SNAPSHOT;

/**
 * Subscribe this component to one or more channels (or trailing-`*` patterns) of the provider's stream.
 * Components asking for the same channel share one server subscription; the last to unmount keeps it for
 * the provider's grace period, so a remount does not resubscribe. Events arriving in one task cause one
 * render; `transform` runs once per event.
 *
 * @param channels - a channel or pattern, or an array of them.
 * @param options - how to keep the data; see {@link SSESubscriptionOptions}.
 * @example
 * ```tsx
 * const { data, isConnected } = useSSESubscription<LogLine>('logs:ws1:*', { maxItems: 500 });
 * ```
 */
export function useSSESubscription<T = unknown>(
  channels: string | readonly string[],
  options: SSESubscriptionOptions<T> = {},
): SSESubscriptionResult<T> {
  const store = useStore('useSSESubscription');
  const instance = useId();
  const parsed = parseSubscription(channels, options, instance);
  const channelsKey = parsed.channels.join('\n');
  // One spec object per meaningful change, so the subscribe function (and the subscription) stays put.
  // biome-ignore lint/correctness/useExhaustiveDependencies: the spec is identified by its values.
  const spec = useMemo(() => parsed, [parsed.key, channelsKey, parsed.capacity, parsed.enabled]);
  const transform = useRef<TransformRef['current']>(options.transform as TransformRef['current']);
  useEffect(() => {
    transform.current = options.transform as TransformRef['current'];
  });
  const subscribe = useCallback((listener: () => void) => store.subscribe(spec, transform, listener), [store, spec]);
  const getSnapshot = useCallback(() => store.snapshot(spec), [store, spec]);
  const snapshot = useSyncExternalStore(subscribe, getSnapshot, getServerSnapshot);
  const status = useSyncExternalStore(store.subscribeStatus, store.getStatus, store.getServerStatus);
  return useMemo(
    () => ({
      data: snapshot.data as readonly T[],
      lastMessage: snapshot.lastMessage as T | undefined,
      lastEvent: snapshot.lastEvent as ClientEvent | undefined,
      connectionStatus: status.connectionStatus,
      isConnected: status.isConnected,
      error: snapshot.error ?? status.error,
    }),
    [snapshot, status],
  );
}

/**
 * The provider's connection status, for a badge or a banner; renders only when the status changes.
 *
 * @example
 * ```tsx
 * const { connectionStatus } = useSSEStatus();
 * ```
 */
export function useSSEStatus(): SSEStatus {
  const store = useStore('useSSEStatus');
  return useSyncExternalStore(store.subscribeStatus, store.getStatus, store.getServerStatus);
}
