import { parseSubscription, type TransformRef } from '../../src/react/options';
import { RingBuffer } from '../../src/react/ring-buffer';
import { SseStore } from '../../src/react/store';
import { FakeClient } from '../helpers/fake-client';

// The store behind the React hooks, in Node (no animation frames: a flush is one microtask).
const flush = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function setup(graceMs = 1000) {
  const client = new FakeClient();
  const created: (string | undefined)[] = [];
  const store = new SseStore({
    createClient: (resumeId) => {
      created.push(resumeId);
      return client;
    },
    ownsClient: true,
    graceMs,
    scope: '/events',
  });
  return { client, store, created };
}

const noTransform = (): TransformRef => ({ current: undefined });
const spec = (channels: string | string[], id: string, options = {}) => parseSubscription(channels, options, id);

afterEach(() => {
  jest.useRealTimers();
});

it('makes no client until the first subscription', () => {
  const { store, created } = setup();
  store.snapshot(spec('logs:ws1:*', 'a'));
  expect(created).toEqual([]);
  store.subscribe(spec('logs:ws1:*', 'a'), noTransform(), () => {});
  expect(created).toEqual([undefined]);
});

it('reference-counts channels and keeps the last one for the grace period', () => {
  jest.useFakeTimers();
  const { client, store } = setup(1000);
  const offA = store.subscribe(spec('logs:ws1:*', 'a'), noTransform(), () => {});
  const offB = store.subscribe(spec(['logs:ws1:*', 'metrics:ws1'], 'b'), noTransform(), () => {});
  expect(client.subscriptions.map((s) => s.channel)).toEqual(['logs:ws1:*', 'metrics:ws1']);
  offA();
  offB();
  jest.advanceTimersByTime(999);
  expect(client.active()).toEqual(['logs:ws1:*', 'metrics:ws1']);
  // Back within the grace period (a remount, or StrictMode's second effect): nothing new subscribed.
  const again = store.subscribe(spec('logs:ws1:*', 'a'), noTransform(), () => {});
  jest.advanceTimersByTime(1);
  expect(client.active()).toEqual(['logs:ws1:*']);
  expect(client.subscriptions).toHaveLength(2);
  again();
  jest.advanceTimersByTime(1000);
  expect(client.active()).toEqual([]);
});

it('tells each listener once per flush, builds one snapshot and runs transform once per event', async () => {
  const { client, store } = setup();
  const s = spec('logs:ws1:*', 'a', { maxItems: 3 });
  const transform: TransformRef = { current: jest.fn((data: unknown) => `#${data}`) };
  const listener = jest.fn();
  store.subscribe(s, transform, listener);
  for (let i = 1; i <= 5; i++) client.emit('logs:ws1:wf1', i);
  expect(listener).not.toHaveBeenCalled();
  await flush();
  expect(listener).toHaveBeenCalledTimes(1);
  const first = store.snapshot(s);
  expect(store.snapshot(s)).toBe(first);
  expect(first.data).toEqual(['#3', '#4', '#5']);
  expect(first.lastMessage).toBe('#5');
  expect(first.lastEvent?.data).toBe(5);
  expect(transform.current).toHaveBeenCalledTimes(5);
});

it('delivers an event matching two channels of one subscription once', async () => {
  const { client, store } = setup();
  const s = spec(['logs:ws1:*', 'logs:ws1:wf1'], 'a');
  store.subscribe(s, noTransform(), () => {});
  client.emit('logs:ws1:wf1', 'both');
  client.emit('logs:ws1:wf2', 'pattern only');
  await flush();
  expect(store.snapshot(s).data).toEqual(['both', 'pattern only']);
});

it('accumulate: false keeps only the latest message', async () => {
  const { client, store } = setup();
  const s = spec('metrics:ws1', 'a', { accumulate: false });
  store.subscribe(s, noTransform(), () => {});
  client.emit('metrics:ws1', 1);
  client.emit('metrics:ws1', 2);
  await flush();
  expect(store.snapshot(s).data).toEqual([2]);
});

it('reports a refused channel on its subscriptions and the stream error in the status', async () => {
  const { client, store } = setup();
  const s = spec('alerts:other', 'a');
  store.subscribe(s, noTransform(), () => {});
  const statusListener = jest.fn();
  store.subscribeStatus(statusListener);
  client.refuse('alerts:other', { code: 'ERR_SSE_FORBIDDEN_CHANNEL', status: 403, message: 'no' });
  client.setStatus('reconnecting', { code: 'ERR_SSE_NETWORK', message: 'down' });
  await flush();
  expect(store.snapshot(s).error?.code).toBe('ERR_SSE_FORBIDDEN_CHANNEL');
  expect(store.getStatus()).toEqual({
    connectionStatus: 'reconnecting',
    isConnected: false,
    error: { code: 'ERR_SSE_NETWORK', message: 'down' },
  });
  expect(statusListener).toHaveBeenCalledTimes(1);
  client.setStatus('open');
  await flush();
  expect(store.getStatus()).toEqual({ connectionStatus: 'open', isConnected: true, error: undefined });
});

it('disposes after its provider is released, unless retained again in the same task (StrictMode)', async () => {
  const { client, store } = setup();
  store.retain();
  store.subscribe(spec('logs:ws1:*', 'a'), noTransform(), () => {});
  store.release();
  store.retain();
  await flush();
  expect(client.closed).toBe(0);
  store.release();
  await flush();
  expect(client.closed).toBe(1);
  expect(client.active()).toEqual([]);
});

it('rejects wrong options with a suggestion', () => {
  expect(() => spec('logs:ws1:*', 'a', { maxitems: 5 })).toThrow(/did you mean `maxItems`/);
  expect(() => spec('logs:ws1:*', 'a', { persistence: true })).toThrow(/needs a `persistenceKey`/);
  expect(() => spec('logs:ws1:*', 'a', { maxItems: 0 })).toThrow(/integer >= 1/);
});

it('ring buffer: keeps the newest items in order through wrap-around and resize', () => {
  const ring = new RingBuffer<number>(3);
  for (let i = 1; i <= 7; i++) ring.push(i);
  expect(ring.toArray()).toEqual([5, 6, 7]);
  ring.resize(2);
  expect(ring.toArray()).toEqual([6, 7]);
  ring.resize(4);
  ring.push(8);
  expect(ring.toArray()).toEqual([6, 7, 8]);
});

it('a throwing transform is reported and costs only its own subscription that event', async () => {
  const { client, store } = setup();
  const failing = spec('logs:ws1:*', 'a');
  const healthy = spec('logs:ws1:*', 'b');
  const reported: unknown[] = [];
  const saved = console.error;
  console.error = (_message: unknown, error: unknown) => reported.push(error);
  try {
    store.subscribe(failing, { current: (data) => (data === 2 ? JSON.parse('{') : data) }, () => {});
    store.subscribe(healthy, noTransform(), () => {});
    for (let i = 1; i <= 3; i++) client.emit('logs:ws1:wf1', i);
    await flush();
  } finally {
    console.error = saved;
  }
  expect(store.snapshot(failing).data).toEqual([1, 3]);
  expect(store.snapshot(healthy).data).toEqual([1, 2, 3]);
  expect(reported).toHaveLength(1);
});

it('a disabled hook keeps rendering its data but releases the channels after the grace period', async () => {
  jest.useFakeTimers();
  const { client, store } = setup(100);
  const on = spec('metrics:ws1', 'a');
  const off = { ...on, enabled: false };
  const unsubscribe = store.subscribe(on, noTransform(), () => {});
  client.emit('metrics:ws1', 1);
  await jest.advanceTimersByTimeAsync(0);
  // The hook re-subscribes with enabled: false (a new spec, same key).
  unsubscribe();
  const stop = store.subscribe(off, noTransform(), () => {});
  jest.advanceTimersByTime(100);
  expect(client.active()).toEqual([]);
  expect(store.snapshot(off).data).toEqual([1]);
  stop();
  jest.advanceTimersByTime(100);
  expect(store.snapshot(off).data).toEqual([]);
});
