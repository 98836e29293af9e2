import { createMemoryBus } from '../../src/bus/memory-bus';
import type { Bus, SseEvent } from '../../src/types';

/** Resolve when `check()` holds, polling on the event loop (for state with no event to wait on). */
export async function until(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Resolve when the bus is connected and every SUBSCRIBE it sent has been answered. */
export function settled(bus: Bus, timeoutMs = 5000): Promise<void> {
  return until(
    () => {
      const status = bus.status();
      return status.connected && !((status.subscribing as number | undefined) ?? 0);
    },
    timeoutMs,
    `bus ${bus.id} to be connected and subscribed (${JSON.stringify(bus.status())})`,
  );
}

/** Every event a bus delivers, with waits on counts and predicates. */
export interface Collector {
  readonly events: SseEvent[];
  /** Resolve once `n` events have arrived. */
  count(n: number, timeoutMs?: number): Promise<SseEvent[]>;
  /** Resolve with the first event matching `predicate` (already received or yet to come). */
  find(predicate: (event: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  stop(): void;
}

/** Listen on `bus` and record what arrives. */
export function collect(bus: Bus): Collector {
  const events: SseEvent[] = [];
  const waiters = new Set<() => void>();
  const stop = bus.listen((event) => {
    events.push(event);
    for (const waiter of [...waiters]) waiter();
  });
  const wait = <T>(probe: () => T | undefined, timeoutMs: number, what: () => string) =>
    new Promise<T>((resolve, reject) => {
      const hit = probe();
      if (hit !== undefined) return resolve(hit);
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}; have ${events.length} events`));
      }, timeoutMs);
      const waiter = () => {
        const found = probe();
        if (found === undefined) return;
        clearTimeout(timer);
        waiters.delete(waiter);
        resolve(found);
      };
      waiters.add(waiter);
    });
  return {
    events,
    count: (n, timeoutMs = 5000) =>
      wait(
        () => (events.length >= n ? events.slice(0, n) : undefined),
        timeoutMs,
        () => `${n} events`,
      ),
    find: (predicate, timeoutMs = 5000) =>
      wait(
        () => events.find(predicate),
        timeoutMs,
        () => 'a matching event',
      ),
    stop,
  };
}

/**
 * Watch `topic` on `listener`, wait until it and `others` are connected and subscribed, then collect what
 * `listener` receives from there on (the set-up of a publisher-and-listener test).
 *
 * @example
 * const onB = await watchAndCollect(b, 'logs:*', [a]);
 */
export async function watchAndCollect(
  listener: Bus,
  topic: string,
  others: readonly Bus[] = [],
  timeoutMs = 5000,
): Promise<Collector> {
  listener.watch(topic);
  await Promise.all([listener, ...others].map((bus) => settled(bus, timeoutMs)));
  return collect(listener);
}

/**
 * A custom Bus, as a user might write one: the core methods of a memory bus (no signals), with `replay`
 * replaced when `override` gives one (it receives the memory bus to delegate to).
 */
export function customBus(override?: (inner: Bus) => Partial<Pick<Bus, 'replay'>>): Bus {
  const inner = createMemoryBus();
  const replay = override?.(inner).replay;
  return {
    id: inner.id,
    publish: (channel, data, options) => inner.publish(channel, data, options),
    listen: (listener) => inner.listen(listener),
    watch: (topic) => inner.watch(topic),
    replay: replay ?? ((id, query) => inner.replay(id, query)),
    status: () => inner.status(),
    close: () => inner.close(),
  };
}
