/**
 * The Redis bus's sequencer on its own: no Redis, only `(epoch, seq)` pairs as messages, history reads
 * and pings would bring them.
 */
import { Sequencer } from '../../src/bus/redis/sequencer';

function sequencer(timeoutMs = 1000) {
  const restarts: [string, string][] = [];
  const seq = new Sequencer(timeoutMs, (previous, next) => restarts.push([previous, next]));
  return { seq, restarts };
}

afterEach(() => {
  jest.useRealTimers();
});

describe('ordering', () => {
  it('accepts each sequence once, in order, and drops duplicates and stragglers', () => {
    const { seq } = sequencer();
    const accepted = [1, 2, 2, 4, 3, 5, 1].map((n) => seq.accept('e1', n));
    expect(accepted).toEqual([true, true, false, true, false, true, false]);
    expect(seq.lastSeq).toBe(5);
    expect(seq.head).toBe('e1-5');
  });

  it('treats skipped numbers as other channels, not as loss', () => {
    const { seq } = sequencer();
    expect(seq.accept('e1', 10)).toBe(true);
    expect(seq.accept('e1', 250)).toBe(true);
    expect(seq.lastSeq).toBe(250);
  });

  it('has no head before the first event', () => {
    const { seq } = sequencer();
    expect(seq.head).toBeUndefined();
    seq.start('', 0);
    expect(seq.started).toBe(true);
    expect(seq.head).toBeUndefined();
  });

  it('observe() accounts for a head without delivering, and never goes back', () => {
    const { seq } = sequencer();
    seq.observe('e1', 7);
    expect(seq.accept('e1', 7)).toBe(false);
    seq.observe('e1', 3);
    expect(seq.lastSeq).toBe(7);
  });
});

describe('gaps', () => {
  it('reports what a history no longer holds', () => {
    const { seq } = sequencer();
    seq.start('e1', 5);
    expect(seq.missedBefore(6)).toBeNull();
    expect(seq.missedBefore(4)).toBeNull();
    expect(seq.missedBefore(9)).toEqual({ from: 6, to: 8 });
  });

  it('has nothing to miss before its first event', () => {
    const { seq } = sequencer();
    seq.start('', 0);
    expect(seq.missedBefore(100)).toBeNull();
  });
});

describe('epoch switch', () => {
  it('starts the sequence over in a new epoch and says so when the old one had events', () => {
    const { seq, restarts } = sequencer();
    seq.accept('e1', 40);
    expect(seq.accept('e2', 1)).toBe(true);
    expect(seq.epoch).toBe('e2');
    expect(seq.lastSeq).toBe(1);
    expect(restarts).toEqual([['e1', 'e2']]);
  });

  it('is silent when nothing of the old epoch was seen', () => {
    const { seq, restarts } = sequencer();
    seq.start('e1', 0);
    seq.accept('e2', 3);
    expect(restarts).toEqual([]);
  });

  it('enter() alone resets the sequence, so a lower number in the new epoch is new', () => {
    const { seq } = sequencer();
    seq.accept('e1', 9);
    seq.enter('e2');
    expect(seq.lastSeq).toBe(0);
    expect(seq.accept('e2', 2)).toBe(true);
  });
});

describe('barrier', () => {
  it('resolves at once when live and the head is already passed, without a nudge', async () => {
    const { seq } = sequencer();
    seq.accept('e1', 5);
    const nudge = jest.fn();
    await expect(seq.reach('e1', 4, true, nudge)).resolves.toBe(true);
    expect(nudge).not.toHaveBeenCalled();
    expect(seq.waiting).toBe(0);
  });

  it('waits while the stream is not live, even for a passed head, and nudges once', async () => {
    const { seq } = sequencer();
    seq.accept('e1', 5);
    const nudge = jest.fn();
    const reached = seq.reach('e1', 5, false, nudge);
    expect(nudge).toHaveBeenCalledTimes(1);
    expect(seq.waiting).toBe(1);
    seq.observe('e1', 5);
    await expect(reached).resolves.toBe(true);
    expect(seq.waiting).toBe(0);
  });

  it('resolves true when an event or a ping passes the head', async () => {
    const { seq } = sequencer();
    seq.accept('e1', 1);
    const byEvent = seq.reach('e1', 3, true);
    const byPing = seq.reach('e1', 6, true);
    seq.accept('e1', 2);
    expect(seq.waiting).toBe(2);
    seq.accept('e1', 4);
    await expect(byEvent).resolves.toBe(true);
    seq.observe('e1', 6);
    await expect(byPing).resolves.toBe(true);
  });

  it('resolves false when the epoch changes before the head is reached', async () => {
    const { seq } = sequencer();
    seq.accept('e1', 1);
    const reached = seq.reach('e1', 10, true);
    seq.accept('e2', 50);
    await expect(reached).resolves.toBe(false);
  });

  it('times out with false', async () => {
    jest.useFakeTimers();
    const { seq } = sequencer(3000);
    const reached = seq.reach('e1', 1, true);
    jest.advanceTimersByTime(2999);
    expect(seq.waiting).toBe(1);
    jest.advanceTimersByTime(1);
    await expect(reached).resolves.toBe(false);
    expect(seq.waiting).toBe(0);
  });

  it('cancel() answers every waiter false', async () => {
    const { seq } = sequencer();
    const all = Promise.all([seq.reach('e1', 1, true), seq.reach('e1', 2, false)]);
    seq.cancel();
    await expect(all).resolves.toEqual([false, false]);
    // Settled waiters are gone: a later event resolves nothing twice.
    seq.accept('e1', 5);
    expect(seq.waiting).toBe(0);
  });
});
