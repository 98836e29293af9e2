/**
 * The replay window counts the resuming stream's own events (issue 12, item 14): the check on a history
 * (matched events against `maxCount`, holes and age over the whole gap), the same check fed page by page,
 * and the `maxBytes` bound of a history option.
 */
import {
  DEFAULT_HISTORY,
  DEFAULT_REDIS_HISTORY,
  GapScan,
  type HistoryRecord,
  parseHistoryWindow,
  replayFromHistory,
} from '../../src/bus/history';
import type { ReplayQuery, SseEvent } from '../../src/types';
import { OptionError } from '../../src/util/validate';

interface Entry extends HistoryRecord {
  readonly seq: number;
}

/**
 * A history of `head` events of epoch `e1`: `own(seq)` says which are on channel `a` (the stream's),
 * the others are on `b`. `missing` sequences are not held; `age(seq)` makes an event that many ms old.
 */
function history(
  head: number,
  own: (seq: number) => boolean,
  options: { missing?: readonly number[]; age?: (seq: number) => number } = {},
) {
  const now = Date.now();
  const entries = new Map<number, Entry>();
  for (let seq = 1; seq <= head; seq++) {
    if (options.missing?.includes(seq)) continue;
    entries.set(seq, { seq, channel: own(seq) ? 'a' : 'b', time: now - (options.age?.(seq) ?? 0) });
  }
  return { epoch: 'e1', headSeq: head, lookup: (seq: number) => entries.get(seq) };
}

const onlyA = (maxCount: number, maxAgeMs = 60_000): ReplayQuery => ({
  match: (channel) => channel === 'a',
  maxCount,
  maxAgeMs,
});
const toEvent = (entry: Entry): SseEvent => ({
  id: `e1-${entry.seq}`,
  channel: entry.channel,
  data: null,
  time: entry.time,
});
const answer = (result: ReturnType<typeof replayFromHistory>) =>
  result.ok ? result.events.map((e) => e.id) : result.reason;
const everyThousandth = (seq: number) => seq % 1000 === 0;

describe('replayFromHistory counts the matched events, not the gap', () => {
  it('replays a stream’s 12 events after 50,000 events of other channels with a window of 1,000', () => {
    const result = replayFromHistory(
      history(50_000, (seq) => seq % 4000 === 0),
      { epoch: 'e1', seq: 0 },
      onlyA(1000),
      toEvent,
    );
    expect(answer(result)).toEqual(Array.from({ length: 12 }, (_, i) => `e1-${(i + 1) * 4000}`));
    expect(result).toMatchObject({ ok: true, head: 'e1-50000' });
  });

  it('answers expired once the matched events exceed maxCount, however short the gap', () => {
    const all = () => true;
    expect(replayFromHistory(history(6, all), { epoch: 'e1', seq: 0 }, onlyA(5), toEvent)).toEqual({
      ok: false,
      reason: 'expired',
    });
    expect(answer(replayFromHistory(history(5, all), { epoch: 'e1', seq: 0 }, onlyA(5), toEvent))).toHaveLength(5);
    expect(answer(replayFromHistory(history(1, all), { epoch: 'e1', seq: 0 }, onlyA(0), toEvent))).toBe('expired');
  });

  it('replays exactly maxCount matched events among many others', () => {
    const result = replayFromHistory(history(5000, everyThousandth), { epoch: 'e1', seq: 0 }, onlyA(5), toEvent);
    expect(answer(result)).toEqual(['e1-1000', 'e1-2000', 'e1-3000', 'e1-4000', 'e1-5000']);
  });

  it('answers expired for a hole anywhere in the gap, on any channel (never a partial replay)', () => {
    const from = { epoch: 'e1', seq: 0 };
    // 2,500 is on channel b: the stream would not have received it, but the history cannot prove it.
    expect(
      answer(replayFromHistory(history(5000, everyThousandth, { missing: [2500] }), from, onlyA(10), toEvent)),
    ).toBe('expired');
    // The oldest event of the gap trimmed, the stream's own ones all held.
    expect(answer(replayFromHistory(history(5000, everyThousandth, { missing: [1] }), from, onlyA(10), toEvent))).toBe(
      'expired',
    );
    // A hole at or before the id is no part of the gap.
    const after = { epoch: 'e1', seq: 2500 };
    expect(
      answer(replayFromHistory(history(5000, everyThousandth, { missing: [2500] }), after, onlyA(10), toEvent)),
    ).toEqual(['e1-3000', 'e1-4000', 'e1-5000']);
  });

  it('answers expired when any event of the gap, on any channel, is older than maxAgeMs', () => {
    const aged = history(3000, everyThousandth, { age: (seq) => (seq === 1 ? 120_000 : 0) });
    expect(answer(replayFromHistory(aged, { epoch: 'e1', seq: 0 }, onlyA(10), toEvent))).toBe('expired');
    expect(answer(replayFromHistory(aged, { epoch: 'e1', seq: 1 }, onlyA(10), toEvent))).toEqual([
      'e1-1000',
      'e1-2000',
      'e1-3000',
    ]);
  });

  it('stops reading at the first reason to reset', () => {
    const held = history(100_000, () => true);
    const lookup = jest.fn(held.lookup);
    expect(answer(replayFromHistory({ ...held, lookup }, { epoch: 'e1', seq: 0 }, onlyA(10), toEvent))).toBe('expired');
    expect(lookup).toHaveBeenCalledTimes(11);
  });
});

describe('GapScan, fed page by page', () => {
  const page = (scan: GapScan<Entry>, source: ReturnType<typeof history>, size: number) => {
    const end = Math.min(scan.next + size - 1, source.headSeq);
    let result = scan.result;
    while (result === undefined && scan.next <= end) result = scan.feed(source.lookup(scan.next));
    return result;
  };

  it('gives the answer of replayFromHistory, whatever the page size', () => {
    const cases: [ReturnType<typeof history>, ReplayQuery][] = [
      [history(4500, everyThousandth), onlyA(10)],
      [history(4500, everyThousandth, { missing: [3999] }), onlyA(10)],
      [history(4500, (seq) => seq % 10 === 0), onlyA(100)],
      [history(4500, everyThousandth, { age: (seq) => (seq < 3 ? 90_000 : 0) }), onlyA(10)],
    ];
    for (const [source, query] of cases) {
      const whole = replayFromHistory(source, { epoch: 'e1', seq: 0 }, query, toEvent);
      for (const size of [1, 7, 1000, 5000]) {
        const scan = new GapScan(source, { epoch: 'e1', seq: 0 }, query, toEvent);
        let result = scan.result;
        while (result === undefined) result = page(scan, source, size);
        expect(result).toEqual(whole);
      }
    }
  });

  it('knows the answer before any page for a foreign epoch, an id ahead of the head, and the head itself', () => {
    const source = history(10, () => true);
    expect(new GapScan(source, { epoch: 'e0', seq: 1 }, onlyA(5), toEvent).result).toEqual({
      ok: false,
      reason: 'unknown-id',
    });
    expect(new GapScan(source, { epoch: 'e1', seq: 11 }, onlyA(5), toEvent).result).toEqual({
      ok: false,
      reason: 'unknown-id',
    });
    expect(new GapScan(source, { epoch: 'e1', seq: 10 }, onlyA(5), toEvent).result).toEqual({
      ok: true,
      events: [],
      head: 'e1-10',
    });
  });

  it('keeps its answer once it has one', () => {
    const scan = new GapScan(
      history(3, () => true),
      { epoch: 'e1', seq: 0 },
      onlyA(5),
      toEvent,
    );
    expect(scan.feed(undefined)).toEqual({ ok: false, reason: 'expired' });
    expect(scan.feed({ seq: 2, channel: 'a', time: Date.now() })).toEqual({ ok: false, reason: 'expired' });
  });
});

describe('history options', () => {
  it('reads maxBytes where the fallback has it, and keeps the other fields’ fallbacks', () => {
    expect(parseHistoryWindow('createMemoryBus', 'history', { maxBytes: 1 << 20 }, DEFAULT_HISTORY)).toEqual({
      size: 100_000,
      maxBytes: 1 << 20,
      ttlMs: 600_000,
    });
    expect(() => parseHistoryWindow('createMemoryBus', 'history', { maxBytes: 0 }, DEFAULT_HISTORY)).toThrow(
      /createMemoryBus: `history.maxBytes` must be an integer >= 1 \(received 0\)/,
    );
  });

  it('suggests maxBytes for a misspelling, and names the known keys', () => {
    expect(() => parseHistoryWindow('createMemoryBus', 'history', { maxByte: 5 }, DEFAULT_HISTORY)).toThrow(
      /createMemoryBus: history: unknown option `maxByte`; did you mean `maxBytes`\?/,
    );
    expect(() => parseHistoryWindow('sseMiddleware', 'replay', { maxBytes: 5 }, DEFAULT_REDIS_HISTORY)).toThrow(
      OptionError,
    );
  });

  it('refuses a key with its own reason where the reader does not support it', () => {
    const read = () =>
      parseHistoryWindow('createRedisBus', 'history', { maxBytes: 5 }, DEFAULT_REDIS_HISTORY, '', {
        maxBytes: 'trimmed by count.',
      });
    expect(read).toThrow(OptionError);
    expect(read).toThrow('createRedisBus: `history.maxBytes` is not supported: trimmed by count.');
  });
});
