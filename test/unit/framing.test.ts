import { createParser, type EventSourceMessage } from 'eventsource-parser';
import fc from 'fast-check';
import { formatComment, formatDataEvent, formatEvent } from '../../src/protocol/framing';

function parse(text: string): { events: EventSourceMessage[]; comments: string[]; retry?: number } {
  const events: EventSourceMessage[] = [];
  const comments: string[] = [];
  let retry: number | undefined;
  const parser = createParser({
    onEvent: (e) => events.push(e),
    onComment: (c) => comments.push(c),
    onRetry: (r) => {
      retry = r;
    },
  });
  parser.feed(text);
  return { events, comments, retry };
}

// Strings rich in what breaks naive framing: line breaks of every kind, NUL, U+2028/2029, astral characters.
const nastyString = fc.string({
  unit: fc.oneof(
    fc.constantFrom('\n', '\r', '\r\n', '\u0000', '\u2028', '\u2029', ':', ' ', 'data: ', 'id: ', '😀', '\ud800'),
    fc.string({ unit: 'binary', maxLength: 3 }),
  ),
  maxLength: 60,
});

describe('formatDataEvent (the wire format of published events)', () => {
  it('round-trips any string payload byte-identically through a spec-compliant parser', () => {
    fc.assert(
      fc.property(nastyString, (payload) => {
        const { events } = parse(formatDataEvent('e1-7', 'logs:ws1', JSON.stringify(payload)));
        expect(events).toHaveLength(1);
        expect(events[0]?.id).toBe('e1-7');
        expect(events[0]?.event).toBe('logs');
        expect(JSON.parse(events[0]?.data ?? '')).toEqual({ channel: 'logs:ws1', data: payload });
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const { events } = parse(formatDataEvent('e1-1', 'metrics:a', JSON.stringify(value)));
        expect(JSON.parse(events[0]?.data ?? '').data).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('formatEvent', () => {
  it('writes the exact bytes of the fields and ends with a blank line', () => {
    expect(formatEvent({ id: '1', event: 'sse:ready', data: '{}', retry: 10 })).toBe(
      'retry: 10\nid: 1\nevent: sse:ready\ndata: {}\n\n',
    );
  });

  it('splits data on CRLF, CR and LF so every line is its own data field', () => {
    expect(formatEvent({ data: 'a\r\nb\rc\nd' })).toBe('data: a\ndata: b\ndata: c\ndata: d\n\n');
  });

  it('keeps any data string intact up to the parser’s line-ending normalisation', () => {
    fc.assert(
      fc.property(nastyString, (data) => {
        const { events } = parse(formatEvent({ event: 'x', data }));
        expect(events).toHaveLength(1);
        expect(events[0]?.data).toBe(data.replace(/\r\n|\r/g, '\n'));
      }),
      { numRuns: 500 },
    );
  });

  it.each(['a\nb', 'a\rb', 'a\u0000b', '\r\n'])('rejects id and event containing %j with a clear error', (bad) => {
    expect(() => formatEvent({ id: bad, data: '' })).toThrow(/id must not contain CR, LF or NUL/);
    expect(() => formatEvent({ event: bad, data: '' })).toThrow(/event must not contain CR, LF or NUL/);
    expect(() => formatEvent({ id: bad, data: '' })).toThrow(
      expect.objectContaining({ code: 'ERR_SSE_INVALID_FIELD' }),
    );
  });

  it('rejects a retry that is not a non-negative integer', () => {
    expect(() => formatEvent({ data: '', retry: -1 })).toThrow(/retry/);
    expect(() => formatEvent({ data: '', retry: 1.5 })).toThrow(/retry/);
  });

  it('formats comments line by line so they cannot start an event', () => {
    const text = formatComment('a\ndata: injected\r\nb');
    expect(text).toBe(': a\n: data: injected\n: b\n\n');
    const parsed = parse(text);
    expect(parsed.events).toHaveLength(0);
    expect(parsed.comments).toEqual(['a', 'data: injected', 'b']);
  });
});
