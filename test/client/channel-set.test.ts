import { ChannelSet, type Subscription } from '../../src/client/channel-set';
import { LastEventId } from '../../src/client/last-event-id';
import { parseTopic } from '../../src/protocol/channels';

function subscription(name: string): Subscription {
  const topic = parseTopic(name, true);
  if (topic === null) throw new Error(name);
  return { topic, listener: () => {}, handlers: {}, subscribed: false, active: true };
}

describe('the channel set', () => {
  it('counts references: a channel leaves with its last subscription', () => {
    const set = new ChannelSet();
    const a1 = subscription('logs:a');
    const a2 = subscription('logs:a');
    expect(set.add(a1).added).toBe(true);
    expect(set.add(a2).added).toBe(false);
    expect(set.names()).toEqual(['logs:a']);
    expect(set.remove(a1)).toBe(false);
    expect(set.remove(a1)).toBe(false);
    expect(set.names()).toEqual(['logs:a']);
    expect(set.remove(a2)).toBe(true);
    expect(set.size).toBe(0);
  });

  it('routes an event to its exact channel and to every pattern above it, never to a pattern’s own key', () => {
    const set = new ChannelSet();
    for (const name of ['logs:a', 'logs:*', 'logs:a:*', 'logs:b', 'metrics:*']) set.add(subscription(name));
    const routed = (channel: string) => set.routes(channel).map((entry) => entry.topic.name);
    expect(routed('logs:a')).toEqual(['logs:a', 'logs:*']);
    expect(routed('logs:a:x')).toEqual(['logs:*', 'logs:a:*']);
    expect(routed('logs')).toEqual([]);
    expect(routed('metrics:cpu')).toEqual(['metrics:*']);
    expect(routed('alerts:x')).toEqual([]);
  });

  it('drop() removes a refused channel with all its subscriptions', () => {
    const set = new ChannelSet();
    const [s1, s2] = [subscription('logs:*'), subscription('logs:*')];
    set.add(s1);
    set.add(s2);
    expect(set.drop('logs:*')).toEqual([s1, s2]);
    expect(set.routes('logs:x')).toEqual([]);
    expect(set.drop('logs:*')).toEqual([]);
  });
});

describe('the last event id', () => {
  it('keeps the newest id of an epoch and refuses repeats; another epoch replaces it', () => {
    const last = new LastEventId(undefined, undefined);
    expect(last.accept('ab-5')).toBe(true);
    expect(last.accept('ab-4')).toBe(false);
    expect(last.accept('ab-5')).toBe(false);
    expect(last.accept('ab-6')).toBe(true);
    expect(last.value).toBe('ab-6');
    expect(last.accept('cd-1')).toBe(true);
    expect(last.value).toBe('cd-1');
    expect(last.accept('')).toBe(true);
    expect(last.value).toBe('cd-1');
    expect(last.accept('opaque-id!')).toBe(true);
    expect(last.value).toBe('opaque-id!');
  });

  it('starts from the id it is given', () => {
    const last = new LastEventId('ab-9', undefined);
    expect(last.accept('ab-9')).toBe(false);
    expect(last.accept('ab-10')).toBe(true);
  });
});
