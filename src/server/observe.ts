/**
 * A private hook on the gateway object for the package's own observers (`registerMetrics`): a symbol, so
 * it is not part of the public API and costs one check per event when nothing observes.
 */
import type { SseEvent, SseGateway } from '../types';

/** The key of the hook: `gateway[OBSERVE_EVENTS](observer)` sets (or, with `undefined`, removes) the observer. */
export const OBSERVE_EVENTS: unique symbol = Symbol.for('@datashop/sse-gateway:observe-events');

/** Set the observer told of every event the gateway receives from its bus. */
export function observeEvents(gateway: SseGateway, observer: ((event: SseEvent) => void) | undefined): void {
  const hook = (gateway as unknown as Record<symbol, ((o: typeof observer) => void) | undefined>)[OBSERVE_EVENTS];
  hook?.(observer);
}
