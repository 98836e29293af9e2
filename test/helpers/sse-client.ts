import { type IncomingHttpHeaders, type IncomingMessage, request } from 'node:http';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** An event as a spec-compliant parser (eventsource-parser) reads it off the wire. */
export interface ReceivedEvent {
  id?: string;
  event?: string;
  data: string;
}

/** A raw HTTP SSE reader: every event and comment, the `retry:` value, and the raw bytes. */
export interface SseStream {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Parsed JSON body for non-200 answers. */
  readonly body: unknown;
  readonly events: ReceivedEvent[];
  readonly comments: string[];
  readonly retry: number | undefined;
  /** Every byte received, decoded as UTF-8. */
  readonly raw: string;
  /** Resolves with the next `n` unread events (default 1). */
  take(n?: number, timeoutMs?: number): Promise<ReceivedEvent[]>;
  /** Resolves with the first unread event matching `predicate`, consuming everything up to it. */
  waitFor(predicate: (event: ReceivedEvent) => boolean, timeoutMs?: number): Promise<ReceivedEvent>;
  /** Resolves when `predicate` holds over the stream's state (checked after every chunk). */
  until(predicate: (stream: SseStream) => boolean, timeoutMs?: number): Promise<void>;
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>;
  readonly isEnded: boolean;
  /** Pause reading from the socket (a slow client). */
  pause(): void;
  /** Destroy the connection from the client side. */
  close(): void;
  readonly response: IncomingMessage;
}

/** Options of {@link openStream}. */
export interface OpenOptions {
  headers?: Record<string, string>;
  /** Resolve only after the `sse:ready` event (200 streams). Defaults to `true`. */
  ready?: boolean;
}

/** Open `url` with a raw HTTP GET and read it as an SSE stream. */
export function openStream(url: string, options: OpenOptions = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...options.headers } });
    req.on('error', reject);
    req.on('response', (res) => {
      const events: ReceivedEvent[] = [];
      const comments: string[] = [];
      let retry: number | undefined;
      let raw = '';
      let cursor = 0;
      let ended = false;
      let body: unknown;
      const watchers = new Set<() => void>();
      const notify = () => {
        for (const watcher of [...watchers]) watcher();
      };
      const parser = createParser({
        onEvent: (message: EventSourceMessage) => {
          const event: ReceivedEvent = { data: message.data };
          if (message.id !== undefined) event.id = message.id;
          if (message.event !== undefined) event.event = message.event;
          events.push(event);
        },
        onRetry: (ms) => {
          retry = ms;
        },
        onComment: (comment) => {
          comments.push(comment);
        },
      });
      const decoder = new TextDecoder();
      let endedResolve: () => void = () => {};
      const endedPromise = new Promise<void>((r) => {
        endedResolve = r;
      });
      const finish = () => {
        if (ended) return;
        ended = true;
        if (res.statusCode !== 200) {
          try {
            body = JSON.parse(raw);
          } catch {
            body = raw;
          }
        }
        endedResolve();
        notify();
      };
      res.on('data', (chunk: Buffer) => {
        const text = decoder.decode(chunk, { stream: true });
        raw += text;
        if (res.statusCode === 200) parser.feed(text);
        notify();
      });
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);

      const wait = (check: () => boolean, timeoutMs: number, what: () => string) =>
        new Promise<void>((done, fail) => {
          if (check()) return done();
          const timer = setTimeout(() => {
            watchers.delete(watcher);
            fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`));
          }, timeoutMs);
          const watcher = () => {
            if (check()) {
              clearTimeout(timer);
              watchers.delete(watcher);
              done();
            } else if (ended) {
              clearTimeout(timer);
              watchers.delete(watcher);
              fail(new Error(`stream ended while waiting for ${what()}; received ${JSON.stringify(events)}`));
            }
          };
          watchers.add(watcher);
        });

      const stream: SseStream = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        get body() {
          return body;
        },
        events,
        comments,
        get retry() {
          return retry;
        },
        get raw() {
          return raw;
        },
        async take(n = 1, timeoutMs = 5000) {
          await wait(
            () => events.length - cursor >= n,
            timeoutMs,
            () => `${n} events (have ${events.length - cursor} unread: ${JSON.stringify(events.slice(cursor))})`,
          );
          const out = events.slice(cursor, cursor + n);
          cursor += n;
          return out;
        },
        async waitFor(predicate, timeoutMs = 5000) {
          let found = -1;
          await wait(
            () => {
              found = events.findIndex((e, i) => i >= cursor && predicate(e));
              return found !== -1;
            },
            timeoutMs,
            () => 'a matching event',
          );
          cursor = found + 1;
          return events[found] as ReceivedEvent;
        },
        until(predicate, timeoutMs = 5000) {
          return wait(
            () => predicate(stream),
            timeoutMs,
            () => 'a condition on the stream',
          );
        },
        ended: endedPromise,
        get isEnded() {
          return ended;
        },
        pause() {
          res.pause();
        },
        close() {
          req.destroy();
          res.destroy();
        },
        response: res,
      };
      if (res.statusCode !== 200 || options.ready === false) {
        if (res.statusCode !== 200) endedPromise.then(() => resolve(stream));
        else resolve(stream);
        return;
      }
      stream.waitFor((e) => e.event === 'sse:ready').then(() => resolve(stream), reject);
    });
    req.end();
  });
}

/** Data events (not `sse:*` control events) parsed as `{ channel, data }` with their ids. */
export function dataEvents(
  events: readonly ReceivedEvent[],
): { id?: string; event?: string; channel: string; data: unknown }[] {
  return events
    .filter((e) => e.event === undefined || !e.event.startsWith('sse:'))
    .map((e) => {
      const parsed = JSON.parse(e.data) as { channel: string; data: unknown };
      return { id: e.id, event: e.event, channel: parsed.channel, data: parsed.data };
    });
}

/** Every event in a complete SSE text, read by eventsource-parser. */
export function parseAll(text: string): ReceivedEvent[] {
  const events: ReceivedEvent[] = [];
  const parser = createParser({
    onEvent: (message) => {
      const event: ReceivedEvent = { data: message.data };
      if (message.id !== undefined) event.id = message.id;
      if (message.event !== undefined) event.event = message.event;
      events.push(event);
    },
  });
  parser.feed(text);
  return events;
}
