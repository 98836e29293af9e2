/**
 * The replay window, on its own: the check both buses run on their history, the query bound, the
 * defaults, and how a window option is read.
 */
import {
  boundQuery,
  DEFAULT_HISTORY,
  DEFAULT_REDIS_HISTORY,
  type HistoryRecord,
  parseHistoryWindow,
  replayFromHistory,
} from '../../src/bus/history';
import type { ReplayQuery, SseEvent } from '../../src/types';
import { OptionError } from '../../src/util/validate';

interface Record extends HistoryRecord {
  readonly seq: number;
}

/** A history of `head` events of epoch `e1`, on channels `a` and `b` alternately, all published now. */
function history(head: number, overrides: { missing?: number[]; time?: (seq: number) => number } = {}) {
  const records = new Map<number, Record>();
  for (let seq = 1; seq <= head; seq++) {
    if (overrides.missing?.includes(seq)) continue;
    records.set(seq, { seq, channel: seq % 2 ? 'a' : 'b', time: overrides.time?.(seq) ?? Date.now() });
  }
  return { epoch: 'e1', headSeq: head, lookup: (seq: number) => records.get(seq) };
}

const all: ReplayQuery = { match: () => true, maxCount: 100, maxAgeMs: 60_000 };
const toEvent = (record: Record): SseEvent => ({
  id: `e1-${record.seq}`,
  channel: record.channel,
  data: null,
  time: record.time,
});
const ids = (result: ReturnType<typeof replayFromHistory>) =>
  result.ok ? result.events.map((e) => e.id) : result.reason;

describe('replayFromHistory', () => {
  it('replays every event after the id up to the head, in order, with the head id', () => {
    const result = replayFromHistory(history(5), { epoch: 'e1', seq: 2 }, all, toEvent);
    expect(result).toMatchObject({ ok: true, head: 'e1-5' });
    expect(ids(result)).toEqual(['e1-3', 'e1-4', 'e1-5']);
  });

  it('skips channels the caller did not ask for; they are no reason to reset', () => {
    const onlyA = { ...all, match: (channel: string) => channel === 'a' };
    expect(ids(replayFromHistory(history(6), { epoch: 'e1', seq: 0 }, onlyA, toEvent))).toEqual([
      'e1-1',
      'e1-3',
      'e1-5',
    ]);
  });

  it('answers an empty replay for the head itself', () => {
    expect(replayFromHistory(history(4), { epoch: 'e1', seq: 4 }, all, toEvent)).toEqual({
      ok: true,
      events: [],
      head: 'e1-4',
    });
  });

  it('builds events only for matching records', () => {
    const build = jest.fn(toEvent);
    replayFromHistory(history(10), { epoch: 'e1', seq: 0 }, { ...all, match: (c) => c === 'b' }, build);
    expect(build).toHaveBeenCalledTimes(5);
  });

  it.each([
    ['a foreign epoch', { epoch: 'e0', seq: 1 }],
    ['an id ahead of the head', { epoch: 'e1', seq: 6 }],
  ])('answers unknown-id for %s', (_what, last) => {
    expect(replayFromHistory(history(5), last, all, toEvent)).toEqual({ ok: false, reason: 'unknown-id' });
  });

  it('answers expired when more events lie between the id and the head than maxCount', () => {
    const query = { ...all, maxCount: 3 };
    expect(replayFromHistory(history(10), { epoch: 'e1', seq: 6 }, query, toEvent)).toEqual({
      ok: false,
      reason: 'expired',
    });
    expect(replayFromHistory(history(10), { epoch: 'e1', seq: 7 }, query, toEvent).ok).toBe(true);
  });

  it('answers expired when an event of the gap is no longer held', () => {
    expect(replayFromHistory(history(6, { missing: [4] }), { epoch: 'e1', seq: 2 }, all, toEvent)).toEqual({
      ok: false,
      reason: 'expired',
    });
    // A hole before the id does not matter.
    expect(replayFromHistory(history(6, { missing: [2] }), { epoch: 'e1', seq: 3 }, all, toEvent).ok).toBe(true);
  });

  it('answers expired when an event of the gap is older than maxAgeMs', () => {
    const now = Date.now();
    const aged = history(4, { time: (seq) => (seq === 3 ? now - 120_000 : now) });
    expect(replayFromHistory(aged, { epoch: 'e1', seq: 2 }, all, toEvent)).toEqual({ ok: false, reason: 'expired' });
    expect(replayFromHistory(aged, { epoch: 'e1', seq: 3 }, all, toEvent).ok).toBe(true);
  });
});

describe('boundQuery', () => {
  it('never promises more than the history keeps', () => {
    const bounded = boundQuery({ ...all, maxCount: 5000, maxAgeMs: 10_000 }, { size: 1000, ttlMs: 600_000 });
    expect(bounded).toMatchObject({ maxCount: 1000, maxAgeMs: 10_000 });
    expect(bounded.match('x')).toBe(true);
  });
});

describe('history windows', () => {
  it('has one default for the memory bus (count, bytes and age) and one for Redis (count and age)', () => {
    expect(DEFAULT_HISTORY).toEqual({ size: 100_000, maxBytes: 32 * 1024 * 1024, ttlMs: 600_000 });
    expect(DEFAULT_REDIS_HISTORY).toEqual({ size: 50_000, ttlMs: 600_000 });
    expect(Object.isFrozen(DEFAULT_HISTORY)).toBe(true);
  });

  it('fills absent fields from the fallback', () => {
    expect(parseHistoryWindow('f', 'history', undefined, DEFAULT_HISTORY)).toBe(DEFAULT_HISTORY);
    expect(parseHistoryWindow('f', 'history', { size: 5 }, DEFAULT_REDIS_HISTORY)).toEqual({ size: 5, ttlMs: 600_000 });
  });

  it.each([
    [{ size: 0 }, /f: `history.size` must be an integer >= 1 \(received 0\)/],
    [{ ttlMs: 1.5 }, /f: `history.ttlMs` must be an integer >= 1/],
    [{ sise: 5 }, /f: history: unknown option `sise`; did you mean `size`\?/],
    [7, /f: `history` must be \{ size\?, maxBytes\?, ttlMs\? \} or false \(received 7\)/],
  ])('rejects %j', (value, message) => {
    const read = () => parseHistoryWindow('f', 'history', value, DEFAULT_HISTORY, ' or false');
    expect(read).toThrow(OptionError);
    expect(read).toThrow(message);
  });
});
