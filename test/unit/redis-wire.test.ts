/**
 * The Redis bus's wire codec and script arguments, without Redis: the bytes of an event message (the
 * publish script's half is reproduced exactly as the Lua concatenates it), pings, the inbound union and
 * the positional KEYS/ARGV the typed builders produce.
 */
import { decodeFetchReply, decodePublishReply, fetchCall, pingCall, publishCall } from '../../src/bus/redis/scripts';
import {
  classify,
  decodeMessage,
  decodePing,
  encodeHeaderTail,
  escapeGlob,
  redisNames,
} from '../../src/bus/redis/wire';

const names = redisNames('sse', 'bus-1');

/** What the publish script sends: `'{"id":"' .. epoch .. '-' .. id .. '",' .. ARGV[4] .. '\n' .. ARGV[5]`. */
function scriptMessage(epoch: string, seq: number, headerTail: string, dataJson: string): string {
  return `{"id":"${epoch}-${seq}",${headerTail}\n${dataJson}`;
}

describe('event messages', () => {
  it('are byte for byte what the bus has always published', () => {
    const tail = encodeHeaderTail('logs:w1', 1700000000000, 'bus-1');
    expect(scriptMessage('e1', 7, tail, '{"line":"x"}')).toBe(
      '{"id":"e1-7","channel":"logs:w1","time":1700000000000,"origin":"bus-1"}\n{"line":"x"}',
    );
    const withUsers = encodeHeaderTail('alerts:u1', 1, 'bus-2', ['u1', 'u2']);
    expect(withUsers).toBe('"channel":"alerts:u1","time":1,"origin":"bus-2","users":["u1","u2"]}');
  });

  it('round-trip through decodeMessage, the payload staying JSON text', () => {
    const message = scriptMessage('e1', 42, encodeHeaderTail('logs:a', 5, 'o', ['u']), '{"n":[1,"\\n"]}');
    expect(decodeMessage(message)).toEqual({
      header: { id: 'e1-42', channel: 'logs:a', time: 5, origin: 'o', users: ['u'] },
      epoch: 'e1',
      seq: 42,
      dataJson: '{"n":[1,"\\n"]}',
    });
  });

  it.each([
    ['no newline', '{"id":"e1-1","channel":"a"}'],
    ['a header that is not JSON', '{"id":\n1'],
    ['a malformed id', '{"id":"nope","channel":"a","time":1,"origin":"o"}\n1'],
    ['no channel', '{"id":"e1-1","time":1,"origin":"o"}\n1'],
  ])('decode to null when there is %s', (_what, message) => {
    expect(decodeMessage(message)).toBeNull();
  });
});

describe('pings and the inbound union', () => {
  it('decode a ping with its head, or with none while Redis has no history', () => {
    expect(decodePing('tok\ne1\n12')).toEqual({ token: 'tok', head: { epoch: 'e1', seq: 12 } });
    expect(decodePing('barrier\n\n0')).toEqual({ token: 'barrier', head: null });
    expect(decodePing('tok\ne1\nx')).toEqual({ token: 'tok', head: null });
  });

  it('sorts messages by channel: signal, ping or event (no in-band tagging)', () => {
    expect(classify(names.signalChannel, '{"type":"disconnect"}', names)).toEqual({
      kind: 'signal',
      message: '{"type":"disconnect"}',
    });
    expect(classify(names.controlChannel, 't\ne1\n3', names)).toEqual({
      kind: 'ping',
      ping: { token: 't', head: { epoch: 'e1', seq: 3 } },
    });
    // A message starting with NUL is an ordinary (malformed) event, not a control message in disguise.
    expect(classify(`${names.channelPrefix}logs`, '\0t\ne1\n3', names)).toEqual({
      kind: 'event',
      message: '\0t\ne1\n3',
    });
  });
});

describe('names', () => {
  it('carry the hash tag on every key and channel', () => {
    expect(names).toEqual({
      epochKey: '{sse}:epoch',
      seqKey: '{sse}:seq',
      historyKey: '{sse}:history',
      channelPrefix: '{sse}:ch:',
      patternPrefix: '{sse}:pt:',
      idempotencyPrefix: '{sse}:idem:',
      controlChannel: '{sse}:ctl:bus-1',
      signalChannel: '{sse}:signal',
    });
  });

  it('escape glob metacharacters for PSUBSCRIBE', () => {
    expect(escapeGlob('{a}:ch:x*?[y]\\')).toBe('{a}:ch:x\\*\\?\\[y\\]\\\\');
  });
});

describe('script arguments', () => {
  const publish = {
    freshEpoch: 'new',
    historySize: 10_000,
    historyTtlMs: 600_000,
    channel: 'logs:w1',
    headerTail: '"channel":"logs:w1"}',
    dataJson: '1',
    time: 99,
    command: 'SPUBLISH' as const,
    alsoTo: ['{sse}:pt:logs'],
  };

  it('publish: KEYS epoch, seq, history; ARGV 1-8 in the script order, then further channels', () => {
    const call = publishCall(names, publish);
    expect(call.keys).toEqual(['{sse}:epoch', '{sse}:seq', '{sse}:history']);
    expect(call.args).toEqual([
      'new',
      10_000,
      '{sse}:ch:logs:w1',
      '"channel":"logs:w1"}',
      '1',
      600_000,
      'SPUBLISH',
      '99\nlogs:w1',
      '{sse}:pt:logs',
    ]);
    expect(call.script.sha).toMatch(/^[0-9a-f]{40}$/);
  });

  it('publish with an idempotency key adds it as KEYS[4]', () => {
    expect(publishCall(names, { ...publish, idempotencyKey: 'job-7' }).keys[3]).toBe('{sse}:idem:job-7');
  });

  it('fetch and ping', () => {
    expect(fetchCall(names, 'e1', 5, 100, 'recover')).toMatchObject({
      keys: ['{sse}:epoch', '{sse}:seq', '{sse}:history'],
      args: ['e1', 5, 100, 'recover'],
    });
    expect(pingCall(names, 'tok', 'PUBLISH')).toMatchObject({
      keys: ['{sse}:epoch', '{sse}:seq', '{sse}:history'],
      args: ['{sse}:ctl:bus-1', 'tok', 'PUBLISH'],
    });
  });

  it('decode the publish reply: a new id, or the first publish under the key', () => {
    expect(decodePublishReply(['e1', 4])).toEqual({ kind: 'published', epoch: 'e1', seq: 4 });
    expect(decodePublishReply(['', 0, 'e1\n3\n1700\nlogs:a'])).toEqual({
      kind: 'repeated',
      epoch: 'e1',
      seq: 3,
      time: 1700,
      channel: 'logs:a',
    });
  });

  it('decode the fetch reply, also the null range of COUNT 0', () => {
    expect(
      decodeFetchReply([
        'e1',
        9,
        [
          ['8-0', ['m', 'msg8']],
          ['9-0', []],
        ],
      ]),
    ).toEqual({
      epoch: 'e1',
      head: 9,
      entries: [
        { seq: 8, message: 'msg8' },
        { seq: 9, message: undefined },
      ],
    });
    expect(decodeFetchReply(['e1', 9, null])).toEqual({ epoch: 'e1', head: 9, entries: [] });
  });
});
