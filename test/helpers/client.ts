import { EventSource } from 'eventsource';
import type express from 'express';
import type {
  ClientEvent,
  ClientStatus,
  EventSourceConstructor,
  SseClient,
  SseClientError,
  SseClientOptions,
} from '../../src/client';
import { createSseClient } from '../../src/client';
import { onCleanup } from './gateway';

/** Header the test EventSource adds, so the server can tell stream attempts from the client's other requests. */
export const TRANSPORT_HEADER = 'x-test-transport';

/** The `eventsource` package's EventSource, tagging its requests with {@link TRANSPORT_HEADER}. */
class TaggedEventSource extends EventSource {
  constructor(url: string | URL, init?: { withCredentials?: boolean }) {
    super(url, {
      ...init,
      fetch: (input, options) =>
        fetch(input, { ...options, headers: { ...options?.headers, [TRANSPORT_HEADER]: 'eventsource' } }),
    });
  }
}

/** A client of `url` in Node: the `eventsource` package and Node's fetch, closed after the test. */
export function nodeClient(url: string, options: Partial<SseClientOptions> = {}): SseClient {
  const client = createSseClient({
    url,
    EventSource: TaggedEventSource as unknown as EventSourceConstructor,
    fetch: globalThis.fetch,
    shareAcrossTabs: false,
    ...options,
  });
  onCleanup(() => client.close());
  return client;
}

/** One request the app saw. */
export interface SeenRequest {
  readonly time: number;
  readonly method: string;
  readonly path: string;
  /** `eventsource` for a stream attempt, `fetch` for anything else the client sent. */
  readonly transport: 'eventsource' | 'fetch';
  readonly query: URLSearchParams;
}

/** Record every request below `path`; install with the harness's `before`. */
export function recordRequests(app: express.Express, path = '/events'): SeenRequest[] {
  const seen: SeenRequest[] = [];
  app.use(path, (req, _res, next) => {
    const url = new URL(req.originalUrl, 'http://x');
    seen.push({
      time: performance.now(),
      method: req.method,
      path: url.pathname,
      transport: req.get(TRANSPORT_HEADER) === 'eventsource' ? 'eventsource' : 'fetch',
      query: url.searchParams,
    });
    next();
  });
  return seen;
}

/** Stream attempts among recorded requests. */
export function attempts(seen: readonly SeenRequest[]): SeenRequest[] {
  return seen.filter((r) => r.transport === 'eventsource');
}

/** A subscription whose events, callbacks and errors are recorded. */
export interface Recorder {
  readonly events: ClientEvent[];
  readonly errors: SseClientError[];
  readonly resets: string[];
  /** How many times onSubscribed ran. */
  subscribedCount: number;
  /** Resolves at the first onSubscribed. */
  readonly subscribed: Promise<void>;
  /** Resolves when `predicate` holds (checked after every callback). */
  until(predicate: (recorder: Recorder) => boolean, timeoutMs?: number, what?: string): Promise<void>;
  unsubscribe(): void;
}

/** Subscribe `channel` on `client` with recording handlers. */
export function record(client: SseClient, channel: string): Recorder {
  const watchers = new Set<() => void>();
  const notify = () => {
    for (const watcher of [...watchers]) watcher();
  };
  let onSubscribed: () => void = () => {};
  const recorder: Recorder = {
    events: [],
    errors: [],
    resets: [],
    subscribedCount: 0,
    subscribed: new Promise<void>((resolve) => {
      onSubscribed = resolve;
    }),
    until: (predicate, timeoutMs = 10_000, what = 'condition') =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate(recorder)) return;
          watchers.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`${channel}: timed out waiting for ${what} (${recorder.events.length} events)`));
        }, timeoutMs);
        watchers.add(check);
        check();
      }),
    unsubscribe: () => {},
  };
  recorder.unsubscribe = client.subscribe(
    channel,
    (event) => {
      recorder.events.push(event);
      notify();
    },
    {
      onSubscribed: () => {
        recorder.subscribedCount++;
        onSubscribed();
        notify();
      },
      onReset: (reason) => {
        recorder.resets.push(reason);
        notify();
      },
      onError: (error) => {
        recorder.errors.push(error);
        notify();
      },
    },
  );
  return recorder;
}

/** Resolves with the error of the first status change to `status` (or at once when already there). */
export function nextStatus(
  client: SseClient,
  status: ClientStatus,
  timeoutMs = 10_000,
): Promise<SseClientError | undefined> {
  if (client.status === status) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for status ${status} (now ${client.status})`));
    }, timeoutMs);
    const off = client.onStatus((now, error) => {
      if (now !== status) return;
      off();
      clearTimeout(timer);
      resolve(error);
    });
  });
}

/** Every status change of `client`, with the error codes. */
export function statusLog(client: SseClient): string[] {
  const log: string[] = [];
  client.onStatus((status, error) => log.push(error === undefined ? status : `${status}:${error.code}`));
  return log;
}
