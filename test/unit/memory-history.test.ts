/**
 * The memory bus's history on its own: a sequence-indexed queue bounded by count, estimated bytes and age.
 */
import { estimateEventBytes, MemoryHistory } from '../../src/bus/memory-history';
import type { SseEvent } from '../../src/types';

const event = (seq: number, time = Date.now()): SseEvent => ({ id: `e1-${seq}`, channel: 'logs:a', data: seq, time });
const bounds = { size: 1000, maxBytes: 1_000_000, ttlMs: 60_000 };

/** Push `from`..`to`, each costing `bytes`. */
function fill(history: MemoryHistory, from: number, to: number, bytes = 100, time?: (seq: number) => number): void {
  for (let seq = from; seq <= to; seq++) history.push(seq, event(seq, time?.(seq)), bytes);
}

const held = (history: MemoryHistory, from: number, to: number) => {
  const seqs: number[] = [];
  for (let seq = from; seq <= to; seq++) if (history.get(seq) !== undefined) seqs.push(seq);
  return seqs;
};

describe('MemoryHistory', () => {
  it('looks events up by sequence and drops the oldest beyond size', () => {
    const history = new MemoryHistory({ ...bounds, size: 100 });
    fill(history, 1, 5000);
    expect(history.count).toBe(100);
    expect(held(history, 1, 5000)).toEqual(Array.from({ length: 100 }, (_, i) => 4901 + i));
    expect(history.get(4950)?.id).toBe('e1-4950');
    expect(history.get(5001)).toBeUndefined();
    expect(history.status()).toMatchObject({ events: 100, bytes: 10_000 });
  });

  it('drops the oldest beyond maxBytes, and an event larger than maxBytes with everything before it', () => {
    const history = new MemoryHistory({ ...bounds, maxBytes: 1000 });
    fill(history, 1, 50);
    expect(held(history, 1, 50)).toEqual([41, 42, 43, 44, 45, 46, 47, 48, 49, 50]);
    history.push(51, event(51), 1001);
    expect(history.count).toBe(0);
    expect(history.get(51)).toBeUndefined();
    fill(history, 52, 53);
    expect(held(history, 1, 53)).toEqual([52, 53]);
    expect(history.status()).toMatchObject({ events: 2, bytes: 200 });
  });

  it('drops events older than ttlMs on push and on status', () => {
    const now = Date.now();
    const history = new MemoryHistory({ ...bounds, ttlMs: 1000 });
    fill(history, 1, 10, 100, (seq) => now - 5000 + seq * 100);
    fill(history, 11, 11, 100, () => now - 3150);
    // Pushing seq 11 dropped those more than 1 s older than it: seq 1 (4.9 s old) to 8 (4.2 s).
    expect(held(history, 1, 11)).toEqual([9, 10, 11]);
    const status = history.status(now);
    expect(status).toMatchObject({ events: 0, bytes: 0 });
    expect(status).not.toHaveProperty('oldestAgeMs');
    fill(history, 12, 13, 100, () => now - 200);
    expect(history.status(now)).toMatchObject({ events: 2, oldestAgeMs: 200 });
  });

  it('keeps serving lookups across compactions of the queue', () => {
    const history = new MemoryHistory({ ...bounds, size: 10 });
    for (let seq = 1; seq <= 20_000; seq++) {
      history.push(seq, event(seq), 1);
      if (seq % 997 === 0)
        expect(held(history, seq - 12, seq)).toEqual(Array.from({ length: 10 }, (_, i) => seq - 9 + i));
    }
  });

  it('starts over when a sequence does not follow the last one', () => {
    const history = new MemoryHistory(bounds);
    fill(history, 1, 5);
    history.push(9, event(9), 100);
    expect(held(history, 1, 9)).toEqual([9]);
  });

  it('retain() raises count and age, never lowers them, and keeps the byte bound', () => {
    const history = new MemoryHistory({ size: 10, maxBytes: 1000, ttlMs: 1000 });
    history.retain({ size: 50, ttlMs: 500 });
    expect(history.bounds).toEqual({ size: 50, maxBytes: 1000, ttlMs: 1000 });
    fill(history, 1, 40, 10);
    expect(history.count).toBe(40);
    fill(history, 41, 200, 10);
    expect(history.count).toBe(50);
  });
});

describe('estimateEventBytes', () => {
  it('is three times the JSON plus the strings and a fixed overhead (calibrated on Node 20)', () => {
    const small = event(1);
    expect(estimateEventBytes(small, 100)).toBe(300 + 2 * ('e1-1'.length + 'logs:a'.length) + 600);
    const scoped = { ...small, users: ['u1', 'u22'] };
    expect(estimateEventBytes(scoped, 100) - estimateEventBytes(small, 100)).toBe(2 * (2 + 16 + 3 + 16));
  });
});
