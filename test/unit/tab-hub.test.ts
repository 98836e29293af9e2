import { LINGER_MS, TabHub } from '../../src/client/tab-hub';
import type { TabMessage } from '../../src/client/tab-protocol';
import type { ClientEvent, ClientStatus, SseClient, SubscriptionHandlers } from '../../src/client/types';

// The leader's hub with a stand-in stream: what it serves a tab that joins with a kept id, per channel,
// and how long a hidden page's channels stay on the stream.
interface Subscription {
  readonly channel: string;
  readonly listener: (event: ClientEvent) => void;
  readonly handlers: SubscriptionHandlers;
  active: boolean;
}

class FakeStream implements SseClient {
  readonly subscriptions: Subscription[] = [];
  status: ClientStatus = 'open';
  lastEventId: string | undefined;
  private seq = 0;

  constructor(from: string | undefined) {
    this.lastEventId = from;
    if (from !== undefined) this.seq = Number(from.split('-')[1]);
  }

  subscribe(channel: string, listener: (event: ClientEvent) => void, handlers: SubscriptionHandlers = {}) {
    const subscription: Subscription = { channel, listener, handlers, active: true };
    this.subscriptions.push(subscription);
    return () => {
      subscription.active = false;
    };
  }

  onStatus() {
    return () => {};
  }

  close() {}

  active(): string[] {
    return this.subscriptions.filter((s) => s.active).map((s) => s.channel);
  }

  /** The server confirms `channel` (sse:ready or sse:subscribed). */
  confirm(channel: string): void {
    for (const s of this.subscriptions) if (s.active && s.channel === channel) s.handlers.onSubscribed?.();
  }

  reset(channel: string): void {
    for (const s of this.subscriptions) if (s.active && s.channel === channel) s.handlers.onReset?.('expired');
  }

  /** A bus-wide event: published on `channel`, delivered if the stream has it. */
  publish(channel: string): string {
    const id = `ep-${++this.seq}`;
    const event: ClientEvent = { id, channel, namespace: 'logs', data: this.seq };
    for (const s of this.subscriptions) {
      const matches = s.channel.endsWith(':*') ? channel.startsWith(s.channel.slice(0, -1)) : s.channel === channel;
      if (s.active && matches) {
        this.lastEventId = id;
        s.listener(event);
      }
    }
    return id;
  }
}

function setUp(from?: string) {
  const table = new Map<string, Set<string>>([['leader', new Set(['logs:shared'])]]);
  const posted: TabMessage[] = [];
  let stream: FakeStream | undefined;
  const hub = new TabHub(
    {
      table,
      self: 'leader',
      createStream: (lastEventId) => {
        stream = new FakeStream(lastEventId);
        return stream;
      },
      emit: (message) => posted.push(message),
    },
    from,
  );
  hub.reconcileAll();
  return { hub, table, posted, stream: stream as FakeStream };
}

const ask = (hub: TabHub, since: string, channels: string[]) => {
  const answer = hub.catchUp({ t: 'catch-up', tab: 'b', leader: 'leader', request: 1, since, channels });
  if (answer.t !== 'caught-up') throw new Error('not an answer');
  return { data: answer.events.map((e) => e.data), resets: answer.resets };
};

afterEach(() => {
  jest.useRealTimers();
});

it("serves a joining tab's channels from their confirmation on; a channel the server has not confirmed is reset", () => {
  const { hub, table, stream } = setUp('ep-10');
  stream.confirm('logs:shared');
  stream.publish('logs:shared'); // 11
  table.set('b', new Set(['logs:shared', 'logs:b']));
  hub.reconcile('b');
  expect(stream.active()).toEqual(['logs:shared', 'logs:b']);
  stream.publish('logs:b'); // 12: before the server confirmed logs:b
  expect(ask(hub, 'ep-11', ['logs:b']).resets).toEqual([{ channel: 'logs:b', reason: 'unavailable' }]);
  stream.confirm('logs:b');
  stream.publish('logs:b'); // 13
  stream.publish('logs:shared'); // 14
  expect(ask(hub, 'ep-10', ['logs:shared'])).toEqual({ data: [11, 14], resets: [] });
  expect(ask(hub, 'ep-12', ['logs:shared', 'logs:b'])).toEqual({ data: [13, 14], resets: [] });
  expect(ask(hub, 'ep-11', ['logs:b'])).toEqual({ data: [], resets: [{ channel: 'logs:b', reason: 'expired' }] });
  // A stream reset: from then on, an id from before it is told to reset too.
  stream.reset('logs:shared');
  stream.publish('logs:shared'); // 15
  expect(ask(hub, 'ep-13', ['logs:shared']).resets).toEqual([{ channel: 'logs:shared', reason: 'expired' }]);
  expect(ask(hub, 'ep-14', ['logs:shared'])).toEqual({ data: [15], resets: [] });
});

it("a hidden page's own channel stays on the stream for LINGER_MS, served to the page that comes back", () => {
  jest.useFakeTimers();
  const { hub, table, stream } = setUp('ep-1');
  table.set('b', new Set(['logs:b']));
  hub.reconcile('b');
  stream.confirm('logs:b');
  stream.publish('logs:b'); // 2
  // Page b is reloading: its bye asks its channels to linger.
  table.delete('b');
  hub.reconcile('b', true);
  stream.publish('logs:b'); // 3: nobody has it, the stream still does
  expect(stream.active()).toContain('logs:b');
  table.set('b2', new Set(['logs:b']));
  hub.reconcile('b2');
  expect(ask(hub, 'ep-2', ['logs:b'])).toEqual({ data: [3], resets: [] });
  jest.advanceTimersByTime(LINGER_MS * 2);
  expect(stream.active()).toContain('logs:b');

  // Gone for longer than that: the channel leaves the stream, and nothing of it is claimed.
  table.delete('b2');
  hub.reconcile('b2', true);
  jest.advanceTimersByTime(LINGER_MS);
  expect(stream.active()).not.toContain('logs:b');
  table.set('b3', new Set(['logs:b']));
  hub.reconcile('b3');
  expect(ask(hub, 'ep-3', ['logs:b']).resets).toEqual([{ channel: 'logs:b', reason: 'unavailable' }]);
});

it('a tab that closed (no linger) takes its channels off the stream at once', () => {
  const { hub, table, stream } = setUp('ep-1');
  table.set('b', new Set(['logs:b']));
  hub.reconcile('b');
  stream.confirm('logs:b');
  table.delete('b');
  hub.reconcile('b');
  expect(stream.active()).toEqual(['logs:shared']);
  hub.close();
});

it('a channel added to the open stream is not claimed from before its confirmation: events published while it was off the stream are not silently skipped', () => {
  const { hub, table, stream } = setUp('ep-10');
  stream.confirm('logs:shared');
  // Page b had logs:b alone and left at ep-10; logs:b carries on while no stream has it.
  stream.publish('logs:b'); // 11: reaches no one
  // b's page comes back with its kept id ep-10: logs:b joins the open stream (a live change).
  table.set('b', new Set(['logs:b']));
  hub.reconcile('b');
  stream.confirm('logs:b');
  // The stream's newest id is still ep-10, but ep-11 of logs:b was never on it.
  expect(ask(hub, 'ep-10', ['logs:b'])).toEqual({ data: [], resets: [{ channel: 'logs:b', reason: 'unavailable' }] });
  stream.publish('logs:b'); // 12
  expect(ask(hub, 'ep-10', ['logs:b'])).toEqual({ data: [], resets: [{ channel: 'logs:b', reason: 'expired' }] });
  expect(ask(hub, 'ep-11', ['logs:b'])).toEqual({ data: [12], resets: [] });
});
