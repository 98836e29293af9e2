/**
 * An incremental parser for `text/event-stream` bodies, following the WHATWG "event stream
 * interpretation". The proxy and the bridge read untrusted upstream bytes through it, so it is bounded:
 * a line or an event larger than `maxEventSize` is reported and skipped instead of growing memory.
 */
import { SseError } from './errors';

/** One dispatched event, as a browser's `EventSource` would see it. */
export interface ParsedSseEvent {
  /** The joined `data:` lines, without the final line feed. */
  readonly data: string;
  /** The `event:` field of this event, when given and not empty (a browser then uses `message`). */
  readonly event?: string;
  /** The `id:` field given in this event's block, when one was (it may be empty: that resets the id). */
  readonly id?: string;
  /** The stream's last event id after this event: the newest `id:` seen so far, even in earlier events. */
  readonly lastEventId: string;
}

/** Callbacks and limits of {@link createSseParser}. */
export interface SseParserOptions {
  /** Called for every dispatched event, in stream order. */
  onEvent(event: ParsedSseEvent): void;
  /** Called for a valid `retry:` field (ASCII digits only). */
  onRetry?(ms: number): void;
  /** Called for a comment line, with the text after `:` and one optional space. */
  onComment?(text: string): void;
  /**
   * Called when a block set an `id:` but carried no data: no event is dispatched, yet a browser's last
   * event id (and so its next `Last-Event-ID`) changes. Relays use it to pass the id on.
   */
  onBareId?(id: string): void;
  /**
   * Called when a line or an event exceeds `maxEventSize`; the event is dropped and parsing resumes after
   * the next blank line. The error's code is `ERR_SSE_EVENT_TOO_LARGE`.
   */
  onError?(error: SseError): void;
  /** Largest line, and largest event (its data plus the current line), in characters. Defaults to `1048576`. */
  maxEventSize?: number;
}

/** A running parser; feed it text or bytes as they arrive. */
export interface SseParser {
  /**
   * Parse the next piece of the stream. Bytes are decoded as UTF-8 (a sequence split between two chunks
   * is handled); strings are taken as already decoded. Do not mix the two on one parser.
   */
  feed(chunk: string | Uint8Array): void;
  /** The last event id so far (the spec's "last event ID buffer"). */
  readonly lastEventId: string;
  /**
   * Forget everything but the options: the next chunk starts a new stream (a leading BOM is stripped
   * again). Pass the id a reconnection resumes from, if any.
   */
  reset(lastEventId?: string): void;
}

/** Default bound of a line or an event: 1 MiB of characters. */
export const DEFAULT_MAX_EVENT_SIZE = 1_048_576;

const LF = 10;
const CR = 13;
const SPACE = 32;
const BOM = 0xfeff;
const DIGITS = /^[0-9]+$/;

/**
 * Create an incremental, spec-compliant SSE parser.
 * Defaults to a `maxEventSize` of `1048576` characters.
 *
 * @param options - the callbacks and the size bound.
 * @returns a parser; call `feed()` with each chunk.
 * @throws TypeError when `maxEventSize` is not a positive integer.
 * @example
 * const parser = createSseParser({ onEvent: (e) => console.log(e.event ?? 'message', e.data) });
 * response.on('data', (chunk: Buffer) => parser.feed(chunk));
 */
export function createSseParser(options: SseParserOptions): SseParser {
  const maxEventSize = options.maxEventSize ?? DEFAULT_MAX_EVENT_SIZE;
  if (!Number.isInteger(maxEventSize) || maxEventSize < 1) {
    throw new TypeError(`maxEventSize must be a positive integer (received ${String(maxEventSize)}).`);
  }
  const { onEvent, onRetry, onComment, onBareId, onError } = options;

  let decoder: InstanceType<typeof TextDecoder> | undefined;
  let atStart = true;
  /** The incomplete last line of what was fed so far. */
  let pending = '';
  /** The previous chunk ended in CR: a LF opening the next chunk belongs to that line end. */
  let afterCr = false;
  /** An oversized line or event is being skipped up to the next blank line. */
  let skipping = false;
  let skippingLine = false;
  let data = '';
  let dataLines = 0;
  let eventType = '';
  let blockId: string | undefined;
  let lastEventId = '';

  function overflow(what: string, size: number): void {
    skipping = true;
    data = '';
    dataLines = 0;
    eventType = '';
    blockId = undefined;
    onError?.(
      new SseError(
        'ERR_SSE_EVENT_TOO_LARGE',
        `An SSE ${what} of at least ${size} characters exceeds maxEventSize (${maxEventSize}); the event was dropped.`,
      ),
    );
  }

  function dispatch(): void {
    if (skipping) {
      skipping = false;
      return;
    }
    const id = blockId;
    blockId = undefined;
    if (dataLines === 0) {
      eventType = '';
      if (id !== undefined) onBareId?.(id);
      return;
    }
    const event: { data: string; event?: string; id?: string; lastEventId: string } = { data, lastEventId };
    if (eventType !== '') event.event = eventType;
    if (id !== undefined) event.id = id;
    data = '';
    dataLines = 0;
    eventType = '';
    onEvent(event);
  }

  function processLine(line: string): void {
    if (line.length === 0) {
      dispatch();
      return;
    }
    if (skipping) return;
    if (line.length > maxEventSize) {
      overflow('line', line.length);
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) {
      onComment?.(line.slice(line.charCodeAt(1) === SPACE ? 2 : 1));
      return;
    }
    const colon = line.indexOf(':');
    let field: string;
    let value: string;
    if (colon === -1) {
      field = line;
      value = '';
    } else {
      field = line.slice(0, colon);
      value = line.slice(line.charCodeAt(colon + 1) === SPACE ? colon + 2 : colon + 1);
    }
    switch (field) {
      case 'data':
        if (data.length + value.length + 1 > maxEventSize) {
          overflow('event', data.length + value.length);
          return;
        }
        data = dataLines === 0 ? value : `${data}\n${value}`;
        dataLines++;
        return;
      case 'event':
        eventType = value;
        return;
      case 'id':
        // An id holding NUL is ignored, so a relay never writes one into a Last-Event-ID header.
        if (!value.includes('\0')) {
          blockId = value;
          lastEventId = value;
        }
        return;
      case 'retry':
        if (DIGITS.test(value)) onRetry?.(Number.parseInt(value, 10));
        return;
      default:
    }
  }

  function feedText(input: string): void {
    let text = input;
    if (atStart) {
      if (text.length === 0) return;
      atStart = false;
      if (text.charCodeAt(0) === BOM) text = text.slice(1);
    }
    let start = 0;
    if (afterCr) {
      afterCr = false;
      if (text.charCodeAt(0) === LF) start = 1;
    }
    const length = text.length;
    while (start < length) {
      let end = start;
      // A plain scan beats two indexOf calls here: most lines are short and CR is rare.
      while (end < length) {
        const code = text.charCodeAt(end);
        if (code === LF || code === CR) break;
        end++;
      }
      if (end === length) {
        // No line end in the rest of the chunk: keep it, unless it is already too long to ever be used.
        if (skippingLine) return;
        if (pending.length + (length - start) > maxEventSize) {
          pending = '';
          skippingLine = true;
          overflow('line', maxEventSize + 1);
          return;
        }
        pending += text.slice(start);
        return;
      }
      if (skippingLine) {
        // The rest of an oversized line ends here; it is not a blank line, so the event stays skipped.
        skippingLine = false;
      } else {
        const line = pending.length === 0 ? text.slice(start, end) : pending + text.slice(start, end);
        pending = '';
        processLine(line);
      }
      if (text.charCodeAt(end) === CR) {
        if (end + 1 === length) {
          afterCr = true;
          return;
        }
        if (text.charCodeAt(end + 1) === LF) end++;
      }
      start = end + 1;
    }
  }

  return {
    feed(chunk: string | Uint8Array): void {
      if (typeof chunk === 'string') {
        feedText(chunk);
        return;
      }
      // ignoreBOM keeps the BOM in the text, so strings and bytes share one stripping rule.
      decoder ??= new TextDecoder('utf-8', { ignoreBOM: true });
      feedText(decoder.decode(chunk, { stream: true }));
    },
    get lastEventId(): string {
      return lastEventId;
    },
    reset(resumeFrom = ''): void {
      decoder = undefined;
      atStart = true;
      pending = '';
      afterCr = false;
      skipping = false;
      skippingLine = false;
      data = '';
      dataLines = 0;
      eventType = '';
      blockId = undefined;
      lastEventId = resumeFrom;
    },
  };
}
