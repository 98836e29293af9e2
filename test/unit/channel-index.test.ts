import { parseTopic, type Topic } from '../../src/protocol/channels';
import { ChannelIndex, type Indexed } from '../../src/server/channel-index';

const topic = (name: string): Topic => parseTopic(name, true) as Topic;

function setup() {
  const watched: string[] = [];
  const released: string[] = [];
  const bus = {
    watch(name: string) {
      watched.push(name);
      return () => released.push(name);
    },
  };
  const index = new ChannelIndex<{ id: string } & Indexed>(bus, { warn: jest.fn(), error: jest.fn() });
  const changes: [string, boolean][] = [];
  index.onTopic((name, active) => changes.push([name, active]));
  return { index, watched, released, changes };
}

function audience(index: ChannelIndex<{ id: string } & Indexed>, channel: string): string[] {
  const seen: string[] = [];
  index.forEachSubscriber(channel, (c) => seen.push(c.id));
  return seen;
}

test('exact channels and patterns find their connections, and nothing else', () => {
  const { index } = setup();
  const a = { id: 'a' };
  const b = { id: 'b' };
  index.add(a, [topic('logs:ws1:wf1'), topic('dashboards:*')]);
  index.add(b, [topic('logs:ws1:*')]);
  expect(audience(index, 'logs:ws1:wf1')).toEqual(['a', 'b']);
  expect(audience(index, 'logs:ws1:wf2')).toEqual(['b']);
  expect(audience(index, 'logs:ws1')).toEqual([]);
  expect(audience(index, 'dashboards:d1:x')).toEqual(['a']);
  expect(audience(index, 'dashboards')).toEqual([]);
  expect(index.size).toBe(3);
  expect(index.subscriptions).toBe(3);
});

test('a topic is watched on the bus with its first connection and released with its last', () => {
  const { index, watched, released, changes } = setup();
  const a = { id: 'a' };
  const b = { id: 'b' };
  index.add(a, [topic('logs:x')]);
  index.add(b, [topic('logs:x')]);
  expect(watched).toEqual(['logs:x']);
  index.remove(a);
  expect(released).toEqual([]);
  index.remove(b);
  expect(released).toEqual(['logs:x']);
  expect(changes).toEqual([
    ['logs:x', true],
    ['logs:x', false],
  ]);
  expect(index.size).toBe(0);
  expect(index.subscriptions).toBe(0);
});

test('addTopic and removeTopic change one connection while it stays indexed', () => {
  const { index, released } = setup();
  const a = { id: 'a' };
  index.add(a, [topic('logs:x')]);
  expect(index.addTopic(a, topic('metrics:*'))).toBe(true);
  expect(index.addTopic(a, topic('metrics:*'))).toBe(false);
  expect(index.topicsOf(a).map((t) => t.name)).toEqual(['logs:x', 'metrics:*']);
  expect(index.covers(a, 'metrics:ws1')).toBe(true);
  expect(index.removeTopic(a, 'logs:x')?.name).toBe('logs:x');
  expect(index.removeTopic(a, 'logs:x')).toBeUndefined();
  expect(released).toEqual(['logs:x']);
  expect(audience(index, 'logs:x')).toEqual([]);
  expect(audience(index, 'metrics:ws1')).toEqual(['a']);
  expect(index.topics()).toEqual(['metrics:*']);
  expect(index.subscriptions).toBe(1);
});

test('a throwing topic listener is logged and does not stop the index', () => {
  const error = jest.fn();
  const index = new ChannelIndex<Indexed>({ watch: () => () => {} }, { warn: jest.fn(), error });
  index.onTopic(() => {
    throw new Error('boom');
  });
  index.add({}, [topic('logs:x')]);
  expect(error).toHaveBeenCalledTimes(1);
  expect(index.topics()).toEqual(['logs:x']);
});
