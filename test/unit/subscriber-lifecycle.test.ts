/**
 * The Redis subscriber's lifecycle: one status, moved only along the transition table.
 */
import {
  SUBSCRIBER_TRANSITIONS,
  SubscriberLifecycle,
  type SubscriberState,
  type SubscriberStatus,
} from '../../src/bus/redis/subscriber';

const STATUSES = Object.keys(SUBSCRIBER_TRANSITIONS) as SubscriberStatus[];

function stateOf(status: SubscriberStatus): SubscriberState {
  if (status === 'live') return { status, ping: undefined };
  if (status === 'closed') return { status };
  return { status, buffer: [] };
}

/** A lifecycle walked to `status` along legal transitions. */
function at(status: SubscriberStatus): SubscriberLifecycle {
  const paths: Record<SubscriberStatus, SubscriberStatus[]> = {
    connecting: [],
    recovering: ['recovering'],
    live: ['recovering', 'live'],
    down: ['recovering', 'live', 'down'],
    closed: ['closed'],
  };
  const lifecycle = new SubscriberLifecycle('test');
  for (const step of paths[status]) lifecycle.moveTo(stateOf(step), 'test');
  expect(lifecycle.status).toBe(status);
  return lifecycle;
}

describe('subscriber transition table', () => {
  it('starts connecting, with a buffer', () => {
    const lifecycle = new SubscriberLifecycle('test');
    expect(lifecycle.state).toEqual({ status: 'connecting', buffer: [] });
  });

  it('is the lifecycle of a reconnecting link', () => {
    const lifecycle = new SubscriberLifecycle('test');
    const walk: SubscriberStatus[] = [
      'recovering',
      'live',
      'down',
      'recovering',
      'down',
      'recovering',
      'live',
      'closed',
    ];
    for (const status of walk) lifecycle.moveTo(stateOf(status), 'walk');
    expect(lifecycle.status).toBe('closed');
  });

  const pairs = STATUSES.flatMap((from) => STATUSES.map((to) => [from, to] as const));
  const legal = pairs.filter(([from, to]) => SUBSCRIBER_TRANSITIONS[from].includes(to));
  const illegal = pairs.filter(([from, to]) => !SUBSCRIBER_TRANSITIONS[from].includes(to));

  it.each(legal)('allows %s → %s', (from, to) => {
    const lifecycle = at(from);
    lifecycle.moveTo(stateOf(to), 'legal');
    expect(lifecycle.status).toBe(to);
  });

  it.each(illegal)('rejects %s → %s and stays put', (from, to) => {
    const lifecycle = at(from);
    const before = lifecycle.state;
    expect(() => lifecycle.moveTo(stateOf(to), 'illegal')).toThrow(`illegal transition ${from} → ${to}`);
    expect(lifecycle.state).toBe(before);
  });

  it('never goes live without a recovery, and closed is final', () => {
    expect(SUBSCRIBER_TRANSITIONS.connecting).not.toContain('live');
    expect(SUBSCRIBER_TRANSITIONS.down).not.toContain('live');
    expect(SUBSCRIBER_TRANSITIONS.closed).toEqual([]);
    for (const status of STATUSES) if (status !== 'closed') expect(SUBSCRIBER_TRANSITIONS[status]).toContain('closed');
  });

  it('replaces the state object on every transition, so a recovery can tell it was superseded', () => {
    const lifecycle = at('recovering');
    const recovery = lifecycle.state;
    lifecycle.moveTo(stateOf('down'), 'link closed');
    lifecycle.moveTo(stateOf('recovering'), 'ready');
    expect(lifecycle.status).toBe('recovering');
    expect(lifecycle.state).not.toBe(recovery);
  });
});
