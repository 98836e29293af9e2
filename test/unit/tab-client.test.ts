import { createSharedClient } from '../../src/client/tabs';
import type {
  ClientEvent,
  ClientStatus,
  SseClient,
  SseClientOptions,
  SubscriptionHandlers,
} from '../../src/client/types';

// Tabs of one browser profile in one Node realm: Node's BroadcastChannel, a stand-in for Web Locks, and a
// stand-in server whose streams replay from an id on connect and confirm a live change a moment later.

interface Waiter {
  readonly name: string;
  readonly signal: AbortSignal | undefined;
  readonly callback: (lock: { name: string }) => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (reason: unknown) => void;
}

class FakeLocks {
  private readonly held = new Set<string>();
  private readonly waiting: Waiter[] = [];

  request(name: string, options: { signal?: AbortSignal }, callback: (lock: { name: string }) => unknown) {
    return new Promise((resolve, reject) => {
      const { signal } = options;
      if (signal?.aborted) {
        reject(new DOMException('aborted', 'AbortError'));
        return;
      }
      const waiter: Waiter = { name, signal, callback, resolve, reject };
      signal?.addEventListener('abort', () => {
        const i = this.waiting.indexOf(waiter);
        if (i === -1) return;
        this.waiting.splice(i, 1);
        reject(new DOMException('aborted', 'AbortError'));
      });
      this.waiting.push(waiter);
      this.grant();
    });
  }

  async query() {
    return { held: [...this.held].map((name) => ({ name })), pending: this.waiting.map((w) => ({ name: w.name })) };
  }

  private grant(): void {
    for (const waiter of [...this.waiting]) {
      if (this.held.has(waiter.name)) continue;
      this.waiting.splice(this.waiting.indexOf(waiter), 1);
      this.held.add(waiter.name);
      queueMicrotask(() => {
        Promise.resolve()
          .then(() => waiter.callback({ name: waiter.name }))
          .then(waiter.resolve, waiter.reject)
          .finally(() => {
            this.held.delete(waiter.name);
            this.grant();
          });
      });
    }
  }
}

const matches = (channel: string, concrete: string) =>
  channel.endsWith(':*') ? concrete.startsWith(channel.slice(0, -1)) : channel === concrete;

class FakeServer {
  readonly history: ClientEvent[] = [];
  readonly streams = new Set<FakeStream>();
  confirmDelayMs = 5;
  private seq = 0;

  publish(channel: string, data: unknown = this.seq + 1): ClientEvent {
    const event: ClientEvent = { id: `ep-${++this.seq}`, channel, namespace: 'logs', data };
    this.history.push(event);
    for (const stream of this.streams) stream.deliver(event);
    return event;
  }

  get head(): string | undefined {
    return this.history.at(-1)?.id;
  }
}

interface StreamSubscription {
  readonly channel: string;
  readonly listener: (event: ClientEvent) => void;
  readonly handlers: SubscriptionHandlers;
  active: boolean;
  confirmed: boolean;
}

class FakeStream implements SseClient {
  status: ClientStatus = 'idle';
  lastEventId: string | undefined;
  private readonly subscriptions: StreamSubscription[] = [];
  private readonly statusListeners = new Set<(status: ClientStatus) => void>();
  private connecting = false;

  constructor(
    private readonly server: FakeServer,
    lastEventId: string | undefined,
  ) {
    this.lastEventId = lastEventId;
  }

  subscribe(channel: string, listener: (event: ClientEvent) => void, handlers: SubscriptionHandlers = {}) {
    const subscription: StreamSubscription = { channel, listener, handlers, active: true, confirmed: false };
    this.subscriptions.push(subscription);
    if (this.status === 'open') {
      setTimeout(() => {
        if (!subscription.active || this.status !== 'open') return;
        subscription.confirmed = true;
        handlers.onSubscribed?.();
      }, this.server.confirmDelayMs);
    } else if (!this.connecting) {
      this.connecting = true;
      setTimeout(() => this.connect(), 1);
    }
    return () => {
      subscription.active = false;
    };
  }

  onStatus(listener: (status: ClientStatus) => void) {
    this.statusListeners.add(listener);
    return () => {
      this.statusListeners.delete(listener);
    };
  }

  close(): void {
    this.status = 'closed';
    this.server.streams.delete(this);
    for (const s of this.subscriptions) s.active = false;
  }

  deliver(event: ClientEvent): void {
    if (this.status !== 'open') return;
    const to = this.subscriptions.filter((s) => s.active && s.confirmed && matches(s.channel, event.channel));
    if (to.length === 0) return;
    this.lastEventId = event.id;
    for (const s of to) s.listener(event);
  }

  private connect(): void {
    if (this.status === 'closed') return;
    const from = this.lastEventId;
    if (from === undefined) this.lastEventId = this.server.head;
    this.status = 'open';
    this.server.streams.add(this);
    for (const l of this.statusListeners) l('open');
    const live = this.subscriptions.filter((s) => s.active);
    for (const s of live) {
      s.confirmed = true;
      s.handlers.onSubscribed?.();
    }
    if (from === undefined) return;
    const after = Number(from.split('-')[1]);
    for (const event of this.server.history) if (Number(event.id.split('-')[1]) > after) this.deliver(event);
  }
}

const locks = new FakeLocks();
const original = BroadcastChannel.prototype.postMessage;
beforeAll(() => {
  Object.defineProperty(globalThis, 'navigator', { value: { locks }, configurable: true });
});

let url = 0;
const opened: SseClient[] = [];
const cleanUp: (() => void)[] = [];
afterEach(() => {
  jest.restoreAllMocks();
  for (const client of opened.splice(0)) client.close();
  for (const done of cleanUp.splice(0)) done();
});

interface Tab {
  readonly client: SseClient;
  readonly received: ClientEvent[];
  readonly resets: string[];
  readonly subscribed: string[];
  sub(...channels: string[]): void;
  /** The page is hidden (unload, reload): what the page kept. */
  hide(): string | undefined;
}

function tabOf(server: FakeServer, base: string, options: Partial<SseClientOptions> = {}): Tab {
  const client = createSharedClient({ url: base, ...options }, (o) => new FakeStream(server, o.lastEventId));
  opened.push(client);
  const received: ClientEvent[] = [];
  const resets: string[] = [];
  const subscribed: string[] = [];
  return {
    client,
    received,
    resets,
    subscribed,
    sub(...channels) {
      for (const channel of channels)
        client.subscribe(channel, (e) => received.push(e), {
          onReset: (reason) => resets.push(`${channel} ${reason}`),
          onSubscribed: () => subscribed.push(channel),
        });
    },
    hide() {
      (client as unknown as { onPageHide: () => void }).onPageHide();
      return client.lastEventId;
    },
  };
}

async function until(condition: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function setUp() {
  const server = new FakeServer();
  const base = `http://tabs.test/events/${++url}`;
  return { server, base, tab: (options?: Partial<SseClientOptions>) => tabOf(server, base, options) };
}

it('a follower that reloads while events flow gets every event of its channels once, in order', async () => {
  const { server, tab } = setUp();
  const leader = tab();
  leader.sub('logs:feed');
  await until(() => leader.subscribed.length === 1);
  const follower = tab();
  follower.sub('logs:feed', 'logs:mine');
  await until(() => follower.subscribed.length === 2);
  server.publish('logs:feed');
  server.publish('logs:mine');
  await until(() => follower.received.length === 2);
  const kept = follower.hide();
  server.publish('logs:mine');
  server.publish('logs:feed');
  const again = tab({ lastEventId: kept });
  again.sub('logs:feed', 'logs:mine');
  for (let i = 0; i < 5; i++) {
    server.publish(i % 2 === 0 ? 'logs:mine' : 'logs:feed');
    await pause(1);
  }
  await until(() => again.client.lastEventId === server.head);
  expect(again.resets).toEqual([]);
  expect([...follower.received, ...again.received].map((e) => e.id)).toEqual(server.history.map((e) => e.id));
});

it('a channel first subscribed while the catch-up is asked for does not get the held events published before its subscribe()', async () => {
  const { server, tab } = setUp();
  const leader = tab();
  leader.sub('logs:a', 'logs:b');
  await until(() => leader.subscribed.length === 2);
  server.publish('logs:a');
  await until(() => leader.received.length === 1);
  // The leader's answer is kept back until the follower has subscribed logs:b.
  const answers: (() => void)[] = [];
  const post = jest.spyOn(BroadcastChannel.prototype, 'postMessage').mockImplementation(function (
    this: BroadcastChannel,
    message: unknown,
  ) {
    if ((message as { t?: string }).t === 'caught-up') answers.push(() => original.call(this, message));
    else original.call(this, message);
  });
  const follower = tab({ lastEventId: server.head });
  follower.sub('logs:a');
  await until(() => answers.length === 1);
  // An event of logs:b reaches the follower while it waits for the answer; it subscribes logs:b after it.
  server.publish('logs:b');
  await until(() => leader.received.length === 2);
  await pause(10);
  const late: ClientEvent[] = [];
  follower.client.subscribe('logs:b', (e) => late.push(e));
  post.mockRestore();
  for (const answer of answers) answer();
  const after = server.publish('logs:b');
  await until(() => late.some((e) => e.id === after.id));
  expect(late.map((e) => e.id)).toEqual([after.id]);
  expect(follower.received.map((e) => e.id)).toEqual([]);
});

/** Holds back what chosen senders post, in their order (BroadcastChannel keeps one sender's order only). */
function holdSenders() {
  const queues = new Map<BroadcastChannel, unknown[]>();
  jest.spyOn(BroadcastChannel.prototype, 'postMessage').mockImplementation(function (
    this: BroadcastChannel,
    message: unknown,
  ) {
    const queue = queues.get(this);
    if (queue === undefined) original.call(this, message);
    else queue.push(message);
  });
  return {
    hold: (sender: BroadcastChannel) => queues.set(sender, []),
    queued: (sender: BroadcastChannel) => (queues.get(sender) ?? []) as { t: string; leader?: string }[],
    /** Post the first `count` held messages of `sender` (through `via` when the sender is closed). */
    release(sender: BroadcastChannel, count = Number.POSITIVE_INFINITY, via = sender) {
      const queue = queues.get(sender) ?? [];
      for (const message of queue.splice(0, count)) original.call(via, message);
    },
  };
}
const memberOf = (t: Tab) => (t.client as unknown as { member: { id: string; channel: BroadcastChannel } }).member;

it('a late state from a leader that has left does not make a joining tab drop the next leader’s answer', async () => {
  const { server, tab } = setUp();
  const first = tab();
  first.sub('logs:a');
  await until(() => first.subscribed.length === 1);
  const next = tab();
  next.sub('logs:a');
  await until(() => next.subscribed.length === 1);
  const kept = server.publish('logs:a');
  await until(() => next.received.length === 1);
  const senders = holdSenders();
  // The first leader's posts from here on are late: its state for the joining tab's hello among them.
  const firstChannel = memberOf(first).channel;
  senders.hold(firstChannel);
  const joining = tab({ lastEventId: kept.id });
  joining.sub('logs:a');
  await until(() => senders.queued(firstChannel).some((m) => m.t === 'state'));
  // The joining tab's request waits until the next leader's stream is open (it would have no events yet).
  const joiningChannel = memberOf(joining).channel;
  senders.hold(joiningChannel);
  first.client.close();
  await until(() => senders.queued(joiningChannel).some((m) => m.t === 'catch-up'));
  await until(() => [...server.streams].some((s) => s.status === 'open'));
  const live = server.publish('logs:a');
  await until(() => next.received.length === 2);
  // The first leader's state arrives only now, after the next leader's: the joining tab asks it too.
  const late = new BroadcastChannel(firstChannel.name);
  cleanUp.push(() => late.close());
  senders.release(firstChannel, senders.queued(firstChannel).findIndex((m) => m.t === 'state') + 1, late);
  await until(() => senders.queued(joiningChannel).filter((m) => m.t === 'catch-up').length === 2);
  expect(senders.queued(joiningChannel).map((m) => m.leader)).toEqual([memberOf(next).id, expect.any(String)]);
  senders.release(joiningChannel);
  senders.release(firstChannel, Number.POSITIVE_INFINITY, late);
  // The next leader's answer is taken at once: no wait for the one that left, and no reset.
  await until(() => joining.received.length === 1);
  expect(joining.received.map((e) => e.id)).toEqual([live.id]);
  expect(joining.resets).toEqual([]);
});
