/**
 * The bytes' carrier: one `EventSource` per attempt, reduced to open, message and error callbacks. The
 * client closes it at its first error and decides itself when and how to come back, so EventSource's
 * own reconnection (which would resend the old channel list and ignore 429/503) never runs.
 */
import { ControlEvent } from '../protocol/wire';
import type { EventSourceConstructor, EventSourceLike, MessageEventLike } from './types';

/** What a transport reports. */
export interface TransportHandlers {
  /** The response headers arrived with 200 and `text/event-stream`. */
  onOpen(): void;
  /** An event of a type the transport listens to. */
  onMessage(type: string, data: string, id: string): void;
  /**
   * The stream failed or ended; the transport is closed already. `status` is the HTTP status when the
   * EventSource implementation exposes it (the `eventsource` package's `code`), never in browsers.
   */
  onError(status: number | undefined): void;
}

/** One EventSource attempt. */
export interface Transport {
  /** Receive events of this type too (a namespace added while the stream is open). Idempotent. */
  listen(type: string): void;
  /** Close without reporting. Idempotent. */
  close(): void;
}

/** The HTTP status an error event carries, where the implementation gives one (`eventsource`'s `code`). */
function statusOf(event: unknown): number | undefined {
  if (typeof event !== 'object' || event === null) return undefined;
  const code = (event as { code?: unknown }).code;
  return typeof code === 'number' && code >= 100 && code < 600 ? code : undefined;
}

/**
 * Open an EventSource on `url`, listening to the control events and to `types`.
 *
 * @param EventSource - the constructor (the browser's, or the `eventsource` package's).
 * @param url - the stream URL, channels and `lastEventId` included.
 * @param withCredentials - passed to EventSource.
 * @param types - event types to listen to from the start: the namespaces of the channels.
 * @param handlers - where open, messages and the error go.
 * @example
 * ```ts
 * const transport = openTransport(EventSource, url, false, ['logs'], handlers);
 * ```
 */
export function openTransport(
  EventSource: EventSourceConstructor,
  url: string,
  withCredentials: boolean,
  types: Iterable<string>,
  handlers: TransportHandlers,
): Transport {
  const source: EventSourceLike = new EventSource(url, { withCredentials });
  const listened = new Set<string>();
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    source.onopen = null;
    source.onerror = null;
    source.close();
  };
  const listen = (type: string): void => {
    if (closed || listened.has(type)) return;
    listened.add(type);
    source.addEventListener(type, (event: MessageEventLike) => {
      if (!closed) handlers.onMessage(type, event.data, event.lastEventId);
    });
  };
  for (const type of Object.values(ControlEvent)) listen(type);
  for (const type of types) listen(type);
  source.onopen = () => {
    if (!closed) handlers.onOpen();
  };
  source.onerror = (event: unknown) => {
    if (closed) return;
    close();
    // The `eventsource` package arms its own reconnect timer after calling onerror; a second close()
    // once the handler has returned clears it (browsers need only the first).
    queueMicrotask(() => source.close());
    handlers.onError(statusOf(event));
  };
  return { listen, close };
}
