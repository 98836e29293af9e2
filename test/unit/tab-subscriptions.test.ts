import { readTabMessage, tabNames } from '../../src/client/tab-protocol';
import { plainEvent, TabSubscriptions } from '../../src/client/tab-subscriptions';
import type { ClientEvent } from '../../src/client/types';

// One tab's side of a shared stream: the leader posts every event of the union once; each tab routes it
// to its own listeners by the channel grammar.
const event = (id: string, channel: string, data: unknown = id): ClientEvent => ({
  id,
  channel,
  namespace: channel.split(':')[0] as string,
  data,
});

it('routes an event to exact and pattern listeners, once each, and to nothing else', () => {
  const tab = new TabSubscriptions();
  const got: string[] = [];
  tab.add('logs:ws1:a', (e) => got.push(`exact ${e.id}`), undefined);
  tab.add('logs:ws1:*', (e) => got.push(`ws1 ${e.id}`), undefined);
  tab.add('logs:*', (e) => got.push(`logs ${e.id}`), undefined);
  tab.add('logs:ws2:*', (e) => got.push(`ws2 ${e.id}`), undefined);
  tab.deliver(event('e-1', 'logs:ws1:a'));
  tab.deliver(event('e-2', 'logs:ws1'));
  tab.deliver(event('e-3', 'metrics:ws1:a'));
  expect(got).toEqual(['exact e-1', 'logs e-1', 'ws1 e-1', 'logs e-2']);
});

it('counts listeners per channel: the first add and the last removal are the ones the leader hears of', () => {
  const tab = new TabSubscriptions();
  const one = tab.add('logs:a', () => {}, undefined);
  const two = tab.add('logs:a', () => {}, undefined);
  expect([one.first, two.first]).toEqual([true, false]);
  expect(one.remove()).toBe(false);
  expect(one.remove()).toBe(false);
  expect(tab.channels()).toEqual(['logs:a']);
  expect(two.remove()).toBe(true);
  expect(tab.empty).toBe(true);
});

it('confirms a listener once; a listener added to a live channel is confirmed at once', async () => {
  const tab = new TabSubscriptions();
  const onSubscribed = jest.fn();
  tab.add('logs:a', () => {}, { onSubscribed });
  tab.subscribed('logs:a');
  tab.subscribed('logs:a');
  expect(onSubscribed).toHaveBeenCalledTimes(1);
  const late = jest.fn();
  tab.add('logs:a', () => {}, { onSubscribed: late });
  expect(late).not.toHaveBeenCalled();
  await Promise.resolve();
  expect(late).toHaveBeenCalledTimes(1);
});

it('a refused channel fails its listeners alone and forgets them', () => {
  const tab = new TabSubscriptions();
  const onError = jest.fn();
  const got: string[] = [];
  const refused = tab.add('logs:secret', (e) => got.push(e.id), { onError });
  tab.add('logs:open', (e) => got.push(e.id), undefined);
  tab.refused('logs:secret', { code: 'ERR_SSE_FORBIDDEN_CHANNEL', status: 403, message: 'no' });
  expect(onError).toHaveBeenCalledWith({ code: 'ERR_SSE_FORBIDDEN_CHANNEL', status: 403, message: 'no' });
  expect(refused.remove()).toBe(false);
  tab.deliver(event('e-1', 'logs:secret'));
  tab.deliver(event('e-2', 'logs:open'));
  expect(got).toEqual(['e-2']);
  expect(tab.channels()).toEqual(['logs:open']);
});

it('a listener that throws does not keep the others from the event', () => {
  const tab = new TabSubscriptions();
  const got: string[] = [];
  tab.add(
    'logs:a',
    () => {
      throw new Error('listener bug');
    },
    undefined,
  );
  tab.add('logs:a', (e) => got.push(e.id), undefined);
  const report = jest.spyOn(console, 'error').mockImplementation(() => {});
  try {
    tab.deliver(event('e-1', 'logs:a'));
    expect(got).toEqual(['e-1']);
    expect(report).toHaveBeenCalledWith('sse client: a listener threw', new Error('listener bug'));
  } finally {
    report.mockRestore();
  }
});

it('tab messages: versioned names, strangers ignored, events cloned plain', () => {
  const names = tabNames('https://app.example/events');
  expect(names.base).toBe('sse-gateway:v2:https://app.example/events');
  expect(names.tabLock('t1')).toBe('sse-gateway:v2:https://app.example/events#tab:t1');
  expect(readTabMessage({ t: 'sub', tab: 't1', channel: 'logs:a' })).toEqual({
    t: 'sub',
    tab: 't1',
    channel: 'logs:a',
  });
  for (const stranger of [null, 'sub', { t: 'nonsense' }, { type: 'sub' }]) expect(readTabMessage(stranger)).toBeNull();
  const extra = Object.assign(event('e-1', 'logs:a', { n: 1 }), { extra: () => {} });
  expect(plainEvent(extra)).toEqual({ id: 'e-1', channel: 'logs:a', namespace: 'logs', data: { n: 1 } });
});
