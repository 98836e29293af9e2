/**
 * The Redis bus's gap reader against a model of the fetch script (`head` and `replay` modes over a stream
 * with ids `<seq>-0`): pages, holes, a restart between pages, the early stop, and pages shared between
 * replays.
 */
import { REPLAY_PAGE, ReplayPages } from '../../src/bus/redis/replay-pages';
import type { FetchMode, FetchReply } from '../../src/bus/redis/scripts';
import { encodeHeaderTail } from '../../src/bus/redis/wire';
import type { ReplayQuery } from '../../src/types';

/** The history stream of one epoch, as the fetch script sees it. */
class FakeHistory {
  epoch = 'e1';
  head = 0;
  readonly entries = new Map<number, string>();
  /** The `replay` reads; `head` reads are counted in `heads`. */
  readonly calls: { after: number; count: number }[] = [];
  heads = 0;

  /** Publish `count` events; `own(seq)` puts one on `logs:a`, else on `logs:b`. */
  publish(count: number, own: (seq: number) => boolean = () => false): void {
    for (let i = 0; i < count; i++) {
      const seq = ++this.head;
      const tail = encodeHeaderTail(own(seq) ? 'logs:a' : 'logs:b', Date.now(), 'bus-1');
      this.entries.set(seq, `{"id":"${this.epoch}-${seq}",${tail}\n{"n":${seq}}`);
    }
  }

  /** Keep only the last `size` entries (what XADD MAXLEN does). */
  trim(size: number): void {
    for (const seq of this.entries.keys()) if (seq <= this.head - size) this.entries.delete(seq);
  }

  readonly fetch = async (epoch: string, after: number, count: number, mode: FetchMode): Promise<FetchReply> => {
    expect(mode).not.toBe('recover');
    if (mode === 'head') this.heads++;
    else this.calls.push({ after, count });
    await Promise.resolve();
    if (mode === 'head' || epoch !== this.epoch || after >= this.head) {
      return { epoch: this.epoch, head: this.head, entries: [] };
    }
    const entries = [];
    for (let seq = after + 1; seq <= this.head && entries.length < count; seq++) {
      const message = this.entries.get(seq);
      if (message !== undefined) entries.push({ seq, message });
    }
    return { epoch: this.epoch, head: this.head, entries };
  };
}

const query = (maxCount = 1000): ReplayQuery => ({ match: (c) => c === 'logs:a', maxCount, maxAgeMs: 60_000 });
const seqs = (answer: Awaited<ReturnType<ReplayPages['replay']>>) =>
  answer.result.ok ? answer.result.events.map((e) => Number(e.id.split('-')[1])) : answer.result.reason;

describe('ReplayPages', () => {
  it('reads a short gap within the head’s page with the head and one read of just the gap', async () => {
    const history = new FakeHistory();
    history.publish(100, (seq) => seq % 10 === 0);
    const answer = await new ReplayPages(history.fetch).replay({ epoch: 'e1', seq: 50 }, query());
    expect(seqs(answer)).toEqual([60, 70, 80, 90, 100]);
    expect(answer).toMatchObject({ epoch: 'e1', head: 100 });
    expect(history.heads).toBe(1);
    expect(history.calls).toEqual([{ after: 50, count: 50 }]);
  });

  it('reads a long gap page by page, never more than a page per fetch, up to the snapshot head', async () => {
    const history = new FakeHistory();
    history.publish(4321, (seq) => seq % 1000 === 7);
    const answer = await new ReplayPages(history.fetch).replay({ epoch: 'e1', seq: 123 }, query(10));
    expect(seqs(answer)).toEqual([1007, 2007, 3007, 4007]);
    // Aligned pages from the one holding the id's successor, then the partial one up to the head.
    expect(history.calls).toEqual([
      { after: 0, count: REPLAY_PAGE },
      { after: 1000, count: REPLAY_PAGE },
      { after: 2000, count: REPLAY_PAGE },
      { after: 3000, count: REPLAY_PAGE },
      { after: 4000, count: 321 },
    ]);
  });

  it('stops at the first page where the stream’s own events exceed its window', async () => {
    const history = new FakeHistory();
    history.publish(20_000, (seq) => seq % 100 === 0);
    const answer = await new ReplayPages(history.fetch).replay({ epoch: 'e1', seq: 0 }, query(15));
    expect(seqs(answer)).toBe('expired');
    expect(history.calls).toHaveLength(2);
  });

  it('answers expired for a gap whose start was trimmed, after one page', async () => {
    const history = new FakeHistory();
    history.publish(5000);
    history.trim(2000);
    const answer = await new ReplayPages(history.fetch).replay({ epoch: 'e1', seq: 10 }, query());
    expect(seqs(answer)).toBe('expired');
    expect(history.calls).toEqual([{ after: 0, count: REPLAY_PAGE }]);
  });

  it('answers expired for an entry lost in a later page, and for a restart between pages', async () => {
    const holed = new FakeHistory();
    holed.publish(3500, (seq) => seq === 3400);
    holed.entries.delete(2222);
    expect(seqs(await new ReplayPages(holed.fetch).replay({ epoch: 'e1', seq: 0 }, query()))).toBe('expired');

    const restarted = new FakeHistory();
    restarted.publish(3500, (seq) => seq === 3400);
    const fetch = restarted.fetch;
    let reads = 0;
    const restarting = async (epoch: string, after: number, count: number, mode: FetchMode) => {
      if (mode === 'replay' && ++reads === 2) {
        restarted.epoch = 'e2';
        restarted.head = 0;
        restarted.entries.clear();
        restarted.publish(3000, () => true);
      }
      return fetch(epoch, after, count, mode);
    };
    expect(seqs(await new ReplayPages(restarting).replay({ epoch: 'e1', seq: 0 }, query()))).toBe('expired');
  });

  it('answers unknown-id for another epoch or an id ahead, and an empty replay at the head, from the head alone', async () => {
    const history = new FakeHistory();
    history.publish(10);
    const pages = new ReplayPages(history.fetch);
    expect(seqs(await pages.replay({ epoch: 'e0', seq: 3 }, query()))).toBe('unknown-id');
    expect(seqs(await pages.replay({ epoch: 'e1', seq: 11 }, query()))).toBe('unknown-id');
    expect(seqs(await pages.replay({ epoch: 'e1', seq: 10 }, query()))).toEqual([]);
    expect(history.calls).toEqual([]);
  });

  it('shares full pages between replays, in flight and for a while after, but not the partial one at the head', async () => {
    const history = new FakeHistory();
    history.publish(6500, (seq) => seq % 500 === 0);
    const pages = new ReplayPages(history.fetch);
    const answers = await Promise.all([
      pages.replay({ epoch: 'e1', seq: 10 }, query()),
      pages.replay({ epoch: 'e1', seq: 20 }, query()),
      pages.replay({ epoch: 'e1', seq: 1500 }, query()),
    ]);
    expect(answers.map(seqs).map((ids) => ids.length)).toEqual([13, 13, 10]);
    expect(seqs(answers[2] as (typeof answers)[0])).toEqual([
      2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500,
    ]);
    // Each full page read once for the three; each replay read the partial one at the head.
    expect(history.calls.map((call) => call.after).sort((a, b) => a - b)).toEqual([
      0, 1000, 2000, 3000, 4000, 5000, 6000, 6000, 6000,
    ]);
    // A later replay reads only the partial one.
    history.calls.length = 0;
    history.publish(10);
    await pages.replay({ epoch: 'e1', seq: 30 }, query());
    expect(history.calls).toEqual([{ after: 6000, count: 510 }]);
  });

  it('lets kept pages go a while after the last replay, with nobody reading again', async () => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    try {
      const history = new FakeHistory();
      history.publish(3500, (seq) => seq % 500 === 0);
      const pages = new ReplayPages(history.fetch);
      await pages.replay({ epoch: 'e1', seq: 0 }, query());
      expect(pages.keptBytes).toBeGreaterThan(0);
      jest.advanceTimersByTime(5_000);
      expect(pages.keptBytes).toBeGreaterThan(0);
      jest.advanceTimersByTime(6_000);
      expect(pages.keptBytes).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('keeps the pages nearest the head when the gaps outgrow the budget', async () => {
    const history = new FakeHistory();
    history.publish(7500, (seq) => seq % 500 === 0);
    // About two pages of these messages.
    const pages = new ReplayPages(history.fetch, 800_000);
    await pages.replay({ epoch: 'e1', seq: 0 }, query());
    history.calls.length = 0;
    expect(seqs(await pages.replay({ epoch: 'e1', seq: 0 }, query()))).toHaveLength(15);
    // The older pages again (and they leave again); those after 5000 and 6000 were kept.
    expect(history.calls.map((call) => call.after)).toEqual([0, 1000, 2000, 3000, 4000, 7000]);
  });
});
