import fc from 'fast-check';
import { isChannel, matchChannel, parseTopic, patternKeysOf } from '../../src/protocol/channels';
import { formatEventId, parseEventId } from '../../src/protocol/event-id';

describe('channel grammar', () => {
  it.each(['logs', 'logs:ws123:wf456', 'a.b-c_d:E9', `logs:${'x'.repeat(128)}`])('accepts %s', (name) => {
    expect(parseTopic(name)).toMatchObject({ name, pattern: false });
  });

  it.each([
    '',
    ':',
    'logs:',
    ':logs',
    'logs::a',
    'logs:a b',
    'logs:a\n',
    'logs:é',
    `logs:${'x'.repeat(129)}`,
    'logs:*',
    'logs:a/b',
  ])('rejects %j as a channel', (name) => {
    expect(parseTopic(name)).toBeNull();
  });

  it('isChannel (the publish-time check) agrees with parseTopic on any string', () => {
    const alphabet = fc.constantFrom('a', 'Z', '9', '_', '.', '-', ':', '*', ' ', '\n', 'é', '/');
    const near = fc.array(alphabet, { maxLength: 40 }).map((chars) => chars.join(''));
    const long = fc.integer({ min: 120, max: 140 }).map((n) => `logs:${'x'.repeat(n)}`);
    fc.assert(
      fc.property(fc.oneof(near, long, fc.string()), (name) => {
        expect(isChannel(name)).toBe(parseTopic(name) !== null);
      }),
      { numRuns: 3000 },
    );
    expect(isChannel(`a${':b'.repeat(3000)}`)).toBe(false);
  });

  it('accepts a trailing * only as a pattern, after at least one segment', () => {
    expect(parseTopic('dashboards:*', true)).toMatchObject({
      key: 'dashboards',
      pattern: true,
      namespace: 'dashboards',
    });
    expect(parseTopic('logs:ws1:*', true)).toMatchObject({ key: 'logs:ws1', pattern: true });
    for (const bad of ['*', 'logs:*:a', 'logs:**', 'logs:a*', 'logs:*:*']) expect(parseTopic(bad, true)).toBeNull();
  });

  it('a pattern matches one or more further segments under its prefix, never the prefix or a sibling', () => {
    const topic = parseTopic('logs:ws1:*', true);
    if (topic === null) throw new Error('unreachable');
    expect(matchChannel(topic, 'logs:ws1:wf1')).toBe(true);
    expect(matchChannel(topic, 'logs:ws1:wf1:step')).toBe(true);
    expect(matchChannel(topic, 'logs:ws1')).toBe(false);
    expect(matchChannel(topic, 'logs:ws10:wf1')).toBe(false);
  });

  it('patternKeysOf lists exactly the keys under which matching patterns are indexed', () => {
    expect(patternKeysOf('a:b:c')).toEqual(['a', 'a:b']);
    expect(patternKeysOf('a')).toEqual([]);
    const segment = fc.stringMatching(/^[a-z0-9]{1,4}$/);
    fc.assert(
      fc.property(
        fc.array(segment, { minLength: 1, maxLength: 5 }),
        fc.array(segment, { minLength: 1, maxLength: 5 }),
        (p, c) => {
          const pattern = parseTopic(`${p.join(':')}:*`, true);
          const channel = c.join(':');
          if (pattern === null) throw new Error('unreachable');
          expect(matchChannel(pattern, channel)).toBe(patternKeysOf(channel).includes(pattern.key));
        },
      ),
    );
  });
});

describe('event ids', () => {
  it('round-trips epoch and sequence', () => {
    expect(parseEventId(formatEventId('abc123', 42))).toEqual({ epoch: 'abc123', seq: 42 });
  });

  it.each(['', '42', 'abc-', '-1', 'abc-1-2', 'ABC-1', 'abc-1\n', 'abc-99999999999999999', `${'a'.repeat(33)}-1`])(
    'rejects %j',
    (id) => {
      expect(parseEventId(id)).toBeNull();
    },
  );
});
