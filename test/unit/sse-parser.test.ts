import { createParser } from 'eventsource-parser';
import fc from 'fast-check';
import type { SseError } from '../../src/protocol/errors';
import { createSseParser, type ParsedSseEvent, type SseParserOptions } from '../../src/protocol/sse-parser';

interface Collected {
  events: ParsedSseEvent[];
  retries: number[];
  comments: string[];
  bareIds: string[];
  errors: SseError[];
}

function collect(chunks: readonly (string | Uint8Array)[], options: Partial<SseParserOptions> = {}): Collected {
  const out: Collected = { events: [], retries: [], comments: [], bareIds: [], errors: [] };
  const parser = createSseParser({
    onEvent: (e) => out.events.push(e),
    onRetry: (ms) => out.retries.push(ms),
    onComment: (c) => out.comments.push(c),
    onBareId: (id) => out.bareIds.push(id),
    onError: (e) => out.errors.push(e),
    ...options,
  });
  for (const chunk of chunks) parser.feed(chunk);
  return out;
}

const data = (chunks: readonly string[]) => collect(chunks).events.map((e) => e.data);

/** Split `text` into chunks of one character each: the harshest chunking there is. */
const perChar = (text: string) => [...text];

// Golden cases in the spirit of web-platform-tests `eventsource/format-*.any.js`: same inputs, same verdicts.
describe('createSseParser: WPT-style golden cases', () => {
  test('format-field-data: empty data, bare `data`, and a trailing incomplete event', () => {
    expect(data(['data:\n\ndata\ndata\n\ndata:test'])).toEqual(['', '\n']);
  });

  test('format-newlines: CRLF, LF and CR line ends mix', () => {
    expect(data(['data:test\r\ndata\ndata:test\r\n\r'])).toEqual(['test\n\ntest']);
  });

  test('format-comments: comments between data lines, of every line ending, are skipped', () => {
    const long = 'x'.repeat(2048);
    const message = `data:1\r:\0\n:\r\ndata:2\n:${long}\rdata:3\n:data:fail\r:${long}\ndata:4\n\n`;
    expect(data([message])).toEqual(['1\n2\n3\n4']);
    expect(data(perChar(message))).toEqual(['1\n2\n3\n4']);
  });

  test('format-field-parsing: field names are case-sensitive and exact, NUL is data', () => {
    const message =
      'data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n';
    expect(data([message])).toEqual(['\0\n 2\n1\n3\n\n4']);
  });

  test('format-field-unknown: unknown fields and lines with a leading space are ignored', () => {
    expect(data(['data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n'])).toEqual([
      'test\n\ntest',
    ]);
  });

  test('format-leading-space: only one leading space is removed', () => {
    expect(data(['data:\u0020\u0020test\n\n'])).toEqual(['\u0020test']);
  });

  test('format-bom: one leading BOM is stripped, a second one makes the first line unknown', () => {
    expect(data(['\uFEFFdata:1\n\ndata:2\n\ndata:3\n\n'])).toEqual(['1', '2', '3']);
    expect(data(['\uFEFF\uFEFFdata:1\n\ndata:2\n\ndata:3\n\n'])).toEqual(['2', '3']);
    const bytes = Buffer.from('\uFEFFdata:1\n\n');
    expect(collect([bytes.subarray(0, 1), bytes.subarray(1, 2), bytes.subarray(2)]).events.map((e) => e.data)).toEqual([
      '1',
    ]);
  });

  test('format-null-character: NUL in data survives', () => {
    expect(data(['data:\0\n\n'])).toEqual(['\0']);
  });

  test('format-data-before-final-empty-line: an event without its blank line is never dispatched', () => {
    const out = collect(['retry:1000\ndata:test1\n\nid:test\ndata:test2']);
    expect(out.events).toEqual([{ data: 'test1', lastEventId: '' }]);
    expect(out.retries).toEqual([1000]);
  });

  test('format-field-event / event-empty: a name, and an empty name meaning `message`', () => {
    expect(collect(['event:test\ndata:x\n\nevent: \ndata:y\n\n']).events).toEqual([
      { event: 'test', data: 'x', lastEventId: '' },
      { data: 'y', lastEventId: '' },
    ]);
  });

  test('format-field-retry / retry-bogus / retry-empty: digits only', () => {
    const out = collect(['retry:03000\nretry:1000x\nretry\nretry: 12\nretry:-1\nretry:1.5\ndata:x\n\n']);
    expect(out.retries).toEqual([3000, 12]);
    expect(out.events.map((e) => e.data)).toEqual(['x']);
  });

  test('format-field-id / id-2: the last event id persists across events and can be reset', () => {
    const out = collect(['id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: …\ndata: d\n\n']);
    expect(out.events).toEqual([
      { id: '1', data: 'a', lastEventId: '1' },
      { data: 'b', lastEventId: '1' },
      { id: '', data: 'c', lastEventId: '' },
      { id: '…', data: 'd', lastEventId: '…' },
    ]);
  });

  test('format-field-id-null: an id containing NUL is ignored', () => {
    for (const value of ['\0\0', 'x\0', '\0x', 'x\0x', ' \0']) {
      const out = collect([`id: keep\ndata: a\n\nid:${value}\ndata: hello\n\n`]);
      expect(out.events[1]).toEqual({ data: 'hello', lastEventId: 'keep' });
    }
  });

  test('format-utf-8: multi-byte characters split between chunks', () => {
    const bytes = Buffer.from('data: ok…€😀\n\n');
    const chunks = [...bytes].map((b) => Uint8Array.of(b));
    expect(collect(chunks).events.map((e) => e.data)).toEqual(['ok…€😀']);
  });

  test('comments are reported without the colon and one space', () => {
    expect(collect([': hi\n:no-space\n:  two\n\n']).comments).toEqual(['hi', 'no-space', ' two']);
  });

  test('a block with an id but no data updates the id without an event', () => {
    const out = collect(['id: 7\n\ndata: x\n\n']);
    expect(out.bareIds).toEqual(['7']);
    expect(out.events).toEqual([{ data: 'x', lastEventId: '7' }]);
  });

  test('a CR at the end of a chunk followed by LF in the next is one line end', () => {
    expect(data(['data: a\r', '\ndata: b\r', '\n\r', '\n'])).toEqual(['a\nb']);
    // A lone CR then a blank line: the CR ends the line and the next LF is not swallowed twice.
    expect(data(['data: a\r', '\r', '\n'])).toEqual(['a']);
  });

  test('reset() starts a new stream from a given id', () => {
    const events: ParsedSseEvent[] = [];
    const parser = createSseParser({ onEvent: (e) => events.push(e) });
    parser.feed('id: 1\ndata: half');
    parser.reset('1');
    parser.feed('\uFEFFdata: b\n\n');
    expect(events).toEqual([{ data: 'b', lastEventId: '1' }]);
  });
});

describe('createSseParser: bounded memory', () => {
  test('a line longer than maxEventSize is reported, dropped with its event, and parsing resumes', () => {
    const huge = 'x'.repeat(5000);
    for (const chunks of [
      [`data: a\n\ndata: ${huge}\ndata: more\n\ndata: b\n\n`],
      perChar(`data: ${huge}\n\ndata: b\n\n`),
    ]) {
      const out = collect(chunks, { maxEventSize: 1000 });
      expect(out.errors).toHaveLength(1);
      expect(out.errors[0]?.code).toBe('ERR_SSE_EVENT_TOO_LARGE');
      expect(out.events.map((e) => e.data).filter((d) => d !== 'a')).toEqual(['b']);
    }
  });

  test('an event whose lines add up past maxEventSize is dropped', () => {
    const line = `data: ${'y'.repeat(300)}\n`;
    const out = collect([`${line.repeat(10)}\ndata: after\n\n`], { maxEventSize: 1000 });
    expect(out.errors).toHaveLength(1);
    expect(out.events.map((e) => e.data)).toEqual(['after']);
  });

  test('an endless line never holds more than maxEventSize characters', () => {
    const parser = createSseParser({ onEvent: () => {}, onError: () => {}, maxEventSize: 1024 });
    const chunk = 'z'.repeat(4096);
    for (let i = 0; i < 1000; i++) parser.feed(chunk);
    parser.feed('\n\ndata: fine\n\n');
    // Nothing to assert on memory directly: the test would take seconds and gigabytes if the line were kept.
    expect(parser.lastEventId).toBe('');
  });

  test('rejects a bad maxEventSize', () => {
    expect(() => createSseParser({ onEvent: () => {}, maxEventSize: 0 })).toThrow(TypeError);
  });
});

describe('createSseParser: properties', () => {
  const field = fc.constantFrom(
    'data',
    'data:',
    'data: ',
    'event:',
    'event: ',
    'id:',
    'id: ',
    'retry:',
    ':',
    'foo:',
    '',
  );
  const value = fc.string({ unit: fc.constantFrom('a', 'b', ' ', ':', '1', '\0', 'é', '😀'), maxLength: 8 });
  const lineEnd = fc.constantFrom('\n', '\r', '\r\n');
  const fieldLine = fc.tuple(field, value, lineEnd).map(([f, v, e]) => `${f}${v}${e}`);
  // Blank lines are what dispatch, so they are drawn often enough for most runs to produce events.
  const line = fc.oneof({ arbitrary: fieldLine, weight: 3 }, { arbitrary: lineEnd, weight: 1 });
  const stream = fc.array(line, { maxLength: 40 }).map((lines) => lines.join(''));
  const chunked = stream.chain((text) =>
    fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, text.length - 1) }), { maxLength: 10 }).map((cuts) => {
      const points = [0, ...cuts.filter((c) => c < text.length).sort((a, b) => a - b), text.length];
      const chunks: string[] = [];
      for (let i = 1; i < points.length; i++) chunks.push(text.slice(points[i - 1], points[i]));
      return { text, chunks };
    }),
  );

  test('agrees with eventsource-parser on any input and any chunking', () => {
    fc.assert(
      fc.property(chunked, ({ chunks }) => {
        // A final LF flushes a trailing CR that eventsource-parser holds back until it sees the next byte.
        const input = [...chunks, '\n\n'];
        const ours = collect(input);
        const theirs: { id?: string; event?: string; data: string }[] = [];
        const retries: number[] = [];
        const comments: string[] = [];
        const reference = createParser({
          onEvent: (e) => theirs.push(e.id === undefined ? { event: e.event, data: e.data } : e),
          onRetry: (ms) => retries.push(ms),
          onComment: (c) => comments.push(c),
        });
        for (const chunk of input) reference.feed(chunk);
        expect(
          ours.events.map((e) => ({ ...(e.id === undefined ? {} : { id: e.id }), event: e.event, data: e.data })),
        ).toEqual(theirs.map((e) => ({ ...(e.id === undefined ? {} : { id: e.id }), event: e.event, data: e.data })));
        expect(ours.retries).toEqual(retries);
        expect(ours.comments).toEqual(comments);
      }),
      { numRuns: 500 },
    );
  });

  test('chunking never changes the result, for strings and for bytes', () => {
    fc.assert(
      fc.property(chunked, ({ text, chunks }) => {
        const whole = collect([text]);
        expect(collect(chunks)).toEqual(whole);
        const bytes = Buffer.from(text);
        const byteChunks: Uint8Array[] = [];
        for (let i = 0; i < bytes.length; i += 3) byteChunks.push(bytes.subarray(i, i + 3));
        expect(collect(byteChunks)).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });
});
