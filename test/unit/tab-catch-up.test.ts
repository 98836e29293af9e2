import fc from 'fast-check';
import { mergeCatchUp, TabCatchUp } from '../../src/client/catch-up';
import { RecentEvents } from '../../src/client/recent-events';
import type { ClientEvent } from '../../src/client/types';

// The pure pieces of a joining tab's catch-up: the leader's ring of recent events (what it can serve, and
// when it must say reset instead), and the follower's merge of the answer with the live events it held.
const event = (id: string, channel = 'logs:a', data: unknown = id): ClientEvent => ({
  id,
  channel,
  namespace: channel.split(':')[0] as string,
  data,
});
const ids = (events: readonly ClientEvent[]) => events.map((e) => e.id);

describe('the leader ring', () => {
  it('serves the events after an id on the channels asked for, exact and patterns, in order', () => {
    const ring = new RecentEvents();
    for (const channel of ['logs:a', 'logs:b:*', 'logs:c']) ring.cover(channel, 'e-0');
    ring.push(event('e-1', 'logs:a'));
    ring.push(event('e-2', 'logs:b:x'));
    ring.push(event('e-3', 'logs:c'));
    ring.push(event('e-4', 'logs:b:y:z'));
    ring.push(event('e-5', 'logs:a'));
    expect(ring.after('e-1', ['logs:a', 'logs:b:*'])).toEqual({
      events: [event('e-2', 'logs:b:x'), event('e-4', 'logs:b:y:z'), event('e-5', 'logs:a')],
      resets: [],
    });
    expect(ring.after('e-5', ['logs:a'])).toEqual({ events: [], resets: [] });
    // Ahead of the leader (it resumed from an older id than this tab saw): nothing yet, no reset.
    expect(ring.after('e-9', ['logs:c'])).toEqual({ events: [], resets: [] });
  });

  it('is bounded by count: an id older than what it let go of is told to reset (expired)', () => {
    const ring = new RecentEvents({ maxEvents: 3, maxBytes: 1 << 20 });
    ring.cover('logs:a', 'e-0');
    for (let i = 1; i <= 5; i++) ring.push(event(`e-${i}`));
    expect(ring.length).toBe(3);
    expect(ring.after('e-1', ['logs:a'])).toEqual({ events: [], resets: [{ channel: 'logs:a', reason: 'expired' }] });
    // e-2 was the newest let go of: a tab that saw it misses nothing that is kept.
    expect(ids(ring.after('e-2', ['logs:a']).events)).toEqual(['e-3', 'e-4', 'e-5']);
  });

  it('is bounded by bytes (id, channel and JSON data); an event over the bound is not kept at all', () => {
    const ring = new RecentEvents({ maxEvents: 100, maxBytes: 300 });
    ring.cover('logs:a', 'e-0');
    ring.push(event('e-1', 'logs:a', 'x'.repeat(100)));
    ring.push(event('e-2', 'logs:a', 'x'.repeat(100)));
    ring.push(event('e-3', 'logs:a', 'x'.repeat(100)));
    expect(ring.length).toBe(2);
    expect(ring.after('e-1', ['logs:a']).resets).toEqual([]);
    expect(ring.after('e-0', ['logs:a']).resets).toEqual([{ channel: 'logs:a', reason: 'expired' }]);
    ring.push(event('e-4', 'logs:a', 'x'.repeat(1000)));
    expect(ring.length).toBe(0);
    expect(ring.after('e-3', ['logs:a']).resets).toEqual([{ channel: 'logs:a', reason: 'expired' }]);
    expect(ring.after('e-4', ['logs:a'])).toEqual({ events: [], resets: [] });
  });

  it('covers a channel from the id the stream had when the server confirmed it, not before', () => {
    const ring = new RecentEvents();
    ring.cover('logs:a', 'e-0');
    ring.push(event('e-1', 'logs:a'));
    ring.push(event('e-2', 'logs:a'));
    ring.cover('logs:late', 'e-2');
    ring.push(event('e-3', 'logs:late'));
    // A reset channel's events are not served at all: never a partial replay.
    expect(ring.after('e-1', ['logs:a', 'logs:late'])).toEqual({
      events: [event('e-2', 'logs:a')],
      resets: [{ channel: 'logs:late', reason: 'expired' }],
    });
    // Only the covered channels' events are served.
    expect(ring.after('e-1', ['logs:a'])).toEqual({ events: [event('e-2', 'logs:a')], resets: [] });
    expect(ring.after('e-2', ['logs:late'])).toEqual({ events: [event('e-3', 'logs:late')], resets: [] });
    // Not on the stream, or gone from it: nothing is claimed.
    expect(ring.after('e-2', ['logs:other']).resets).toEqual([{ channel: 'logs:other', reason: 'unavailable' }]);
    ring.uncover('logs:late');
    expect(ring.after('e-2', ['logs:late']).resets).toEqual([{ channel: 'logs:late', reason: 'unavailable' }]);
  });

  it('a channel the stream reset is covered again from the next event on', () => {
    const ring = new RecentEvents();
    ring.cover('logs:a', 'e-0');
    ring.push(event('e-1'));
    ring.reset('logs:a');
    expect(ring.after('e-1', ['logs:a']).resets).toEqual([{ channel: 'logs:a', reason: 'unavailable' }]);
    ring.push(event('e-7'));
    expect(ring.after('e-1', ['logs:a']).resets).toEqual([{ channel: 'logs:a', reason: 'expired' }]);
    // A tab that had e-6 (say from the leader before) misses nothing from e-7 on.
    expect(ring.after('e-6', ['logs:a'])).toEqual({ events: [event('e-7')], resets: [] });
  });

  it('ids of another epoch: the tab is told unknown-id; an event of a new epoch empties the ring', () => {
    const ring = new RecentEvents();
    ring.cover('logs:a', 'old-4');
    ring.cover('logs:b', 'old-4');
    ring.push(event('old-5'));
    expect(ring.after('other-5', ['logs:a']).resets).toEqual([{ channel: 'logs:a', reason: 'unknown-id' }]);
    expect(ring.after('not an id', ['logs:a']).resets).toEqual([{ channel: 'logs:a', reason: 'malformed-id' }]);
    // The server restarted: the stream reset logs:a, then the new epoch's events come.
    ring.reset('logs:a');
    ring.push(event('new-1', 'logs:b'));
    expect(ring.length).toBe(1);
    expect(ring.after('old-5', ['logs:a']).resets).toEqual([{ channel: 'logs:a', reason: 'unknown-id' }]);
    expect(ring.after('new-0', ['logs:a'])).toEqual({ events: [], resets: [] });
    // logs:b was claimed in the old epoch only.
    expect(ring.after('new-0', ['logs:b']).resets).toEqual([{ channel: 'logs:b', reason: 'unavailable' }]);
  });

  it('a stream opened on a bus with no event yet covers from the first event of its epoch', () => {
    const ring = new RecentEvents();
    ring.cover('logs:a', undefined);
    // No epoch known yet: an id cannot be placed.
    expect(ring.after('e-1', ['logs:a']).resets).toEqual([{ channel: 'logs:a', reason: 'unknown-id' }]);
    ring.push(event('e-1'));
    ring.push(event('e-2'));
    expect(ring.after('e-1', ['logs:a'])).toEqual({ events: [event('e-2')], resets: [] });
  });

  it('an event without an id of the sequence (a proxied upstream) ends every claim', () => {
    const ring = new RecentEvents();
    ring.cover('logs:a', 'e-0');
    ring.push(event('e-1'));
    ring.push(event('upstream-id-xyz!'));
    ring.push(event('e-2'));
    expect(ring.after('e-1', ['logs:a']).resets).toEqual([{ channel: 'logs:a', reason: 'unavailable' }]);
  });

  it('never a silent gap: what it serves for a channel is every event published on it after the id', () => {
    // A model stream: events published on channels the stream has are pushed, others never reach it; a
    // `gap` loses one event even so, and the stream then resets every channel (as a failed replay does).
    const channels = ['logs:a', 'logs:b', 'logs:c:*'];
    const matches = (channel: string, e: ClientEvent) =>
      channel.endsWith(':*') ? e.channel.startsWith(channel.slice(0, -1)) : e.channel === channel;
    const published = fc.constantFrom('logs:a', 'logs:b', 'logs:c:x', 'logs:c:y:z');
    const op = fc.oneof(
      { arbitrary: fc.record({ kind: fc.constant('publish' as const), channel: published }), weight: 8 },
      { arbitrary: fc.record({ kind: fc.constant('gap' as const), channel: published }), weight: 1 },
      {
        arbitrary: fc.record({
          kind: fc.constantFrom('subscribe' as const, 'unsubscribe' as const),
          channel: fc.constantFrom(...channels),
        }),
        weight: 2,
      },
    );
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 80 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 10, max: 400 }),
        fc.nat(90),
        (ops, maxEvents, maxBytes, since) => {
          const ring = new RecentEvents({ maxEvents, maxBytes });
          const stream = new Set<string>();
          const all: ClientEvent[] = [];
          for (const { kind, channel } of ops) {
            if (kind === 'subscribe' && !stream.has(channel)) {
              stream.add(channel);
              ring.cover(channel, `e-${all.length}`);
            } else if (kind === 'unsubscribe' && stream.delete(channel)) {
              ring.uncover(channel);
            } else if (kind === 'publish' || kind === 'gap') {
              const e = event(`e-${all.length + 1}`, channel, 'x'.repeat(all.length % 7));
              all.push(e);
              if (kind === 'gap') for (const s of stream) ring.reset(s);
              else if ([...stream].some((s) => matches(s, e))) ring.push(e);
            }
          }
          const answer = ring.after(`e-${since}`, channels);
          const reset = new Set(answer.resets.map((r) => r.channel));
          for (const channel of channels) {
            if (reset.has(channel)) continue;
            const expected = all.filter((e) => matches(channel, e) && Number(e.id.slice(2)) > since);
            expect(ids(answer.events.filter((e) => matches(channel, e)))).toEqual(ids(expected));
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe("the follower's merge", () => {
  it('the replayed events come first, each once, then the live ones', () => {
    const caughtUp = [event('e-2'), event('e-3'), event('e-4')];
    const held = [event('e-4'), event('e-5')];
    expect(ids(mergeCatchUp(caughtUp, held))).toEqual(['e-2', 'e-3', 'e-4', 'e-5']);
    expect(ids(mergeCatchUp([], held))).toEqual(['e-4', 'e-5']);
    expect(ids(mergeCatchUp(caughtUp, []))).toEqual(['e-2', 'e-3', 'e-4']);
  });

  it('held events of channels the answer did not serve take their place by sequence', () => {
    const caughtUp = [event('e-2', 'logs:a'), event('e-5', 'logs:a')];
    const held = [event('e-3', 'logs:new'), event('e-5', 'logs:a'), event('e-6', 'logs:new')];
    expect(ids(mergeCatchUp(caughtUp, held))).toEqual(['e-2', 'e-3', 'e-5', 'e-6']);
  });

  it('ids that cannot be compared keep their place, the answer first', () => {
    expect(ids(mergeCatchUp([event('a-2')], [event('b-1'), event('')]))).toEqual(['a-2', 'b-1', '']);
  });
});

describe("a follower's catch-up", () => {
  it('a tab without a kept id has nothing to catch up on', () => {
    const catchUp = new TabCatchUp(undefined);
    expect(catchUp.resuming).toBe(false);
    expect(catchUp.hold(event('e-1'))).toBe(false);
    expect(catchUp.ask('leader', 'tab', ['logs:a'])).toBeUndefined();
  });

  it('asks each leader once, with its channels; takes the first answer to a request of this catch-up', () => {
    const catchUp = new TabCatchUp('e-1');
    expect(catchUp.ask('L1', 'me', [])).toBeUndefined();
    expect(catchUp.ask('L1', 'me', ['logs:a'])).toEqual({
      t: 'catch-up',
      tab: 'me',
      leader: 'L1',
      request: 1,
      since: 'e-1',
      channels: ['logs:a'],
    });
    expect(catchUp.ask('L1', 'me', ['logs:a'])).toBeUndefined();
    expect(catchUp.hold(event('e-3'))).toBe(true);
    // L1 went before answering; the next leader is asked.
    expect(catchUp.ask('L2', 'me', ['logs:a'])?.request).toBe(2);
    const answer = { t: 'caught-up' as const, tab: 'me', events: [event('e-2'), event('e-3')], resets: [] };
    // L1's answer after all (or L2 was the leader, and L1's state came late): it is as good as L2's.
    expect(catchUp.settle({ ...answer, request: 1 })).toEqual({ resets: [], events: [event('e-2'), event('e-3')] });
    expect(catchUp.resuming).toBe(false);
    expect(catchUp.settle({ ...answer, request: 2 })).toBeUndefined();
  });

  it('does not take an answer to a request of an earlier catch-up (before a page came back)', () => {
    const catchUp = new TabCatchUp('e-1');
    expect(catchUp.ask('L1', 'me', ['logs:a'])?.request).toBe(1);
    catchUp.restart('e-5');
    expect(catchUp.ask('L1', 'me', ['logs:a'])?.request).toBe(2);
    const answer = { t: 'caught-up' as const, tab: 'me', events: [event('e-6')], resets: [] };
    expect(catchUp.settle({ ...answer, request: 1 })).toBeUndefined();
    expect(catchUp.settle({ ...answer, request: 3 })).toBeUndefined();
    expect(catchUp.settle({ ...answer, request: 2 })).toEqual({ resets: [], events: [event('e-6')] });
  });

  it('holds a bounded number of live events; one more and it gives up with what it held', () => {
    const catchUp = new TabCatchUp('e-1', 2);
    expect(catchUp.hold(event('e-2'))).toBe(true);
    expect(catchUp.hold(event('e-3'))).toBe(true);
    expect(catchUp.hold(event('e-4'))).toBe(false);
    expect(ids(catchUp.abandon())).toEqual(['e-2', 'e-3']);
    expect(catchUp.resuming).toBe(false);
  });

  it('starts over from a new id (a page back from the back-forward cache), forgetting what it held', () => {
    const catchUp = new TabCatchUp('e-1');
    catchUp.ask('L1', 'me', ['logs:a']);
    catchUp.hold(event('e-2'));
    catchUp.restart('e-5');
    expect(catchUp.ask('L1', 'me', ['logs:a'])?.since).toBe('e-5');
    expect(catchUp.abandon()).toEqual([]);
  });
});
