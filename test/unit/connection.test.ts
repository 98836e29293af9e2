import { createEvent, encodeEvent } from '../../src/bus/event';
import { formatEventId } from '../../src/protocol/event-id';
import type { Gate } from '../../src/server/connection';
import { Connection } from '../../src/server/connection';
import { WriteBatch } from '../../src/server/stream-writer';
import type { SseEvent } from '../../src/types';
import { FakeResponse } from '../helpers/fake-response';
import { parseAll } from '../helpers/sse-client';

const event = (seq: number, channel = 'logs:a'): SseEvent =>
  createEvent(formatEventId('e1', seq), channel, JSON.stringify({ seq }), Date.now());

function setup(gate: Gate = () => true, maxBufferedBytes = 1 << 20, highWaterMark?: number) {
  const res = new FakeResponse(highWaterMark);
  const host = { gate, maxBufferedBytes, batch: new WriteBatch(), delivered: jest.fn(), overflowed: jest.fn() };
  const connection = new Connection('c1', { id: 'u1' }, res.asResponse(), host);
  const offer = (e: SseEvent) => connection.offer(e, encodeEvent(e));
  const seqs = () => parseAll(res.text).map((e) => (e.id ? Number(e.id.split('-')[1]) : e.event));
  return { res, host, connection, offer, seqs };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('async filter verdicts that resolve out of order still write in publish order', async () => {
  const verdicts = new Map<number, { promise: Promise<boolean>; resolve: (ok: boolean) => void }>();
  for (let seq = 1; seq <= 5; seq++) {
    let resolve: (ok: boolean) => void = () => {};
    const promise = new Promise<boolean>((r) => {
      resolve = r;
    });
    verdicts.set(seq, { promise, resolve });
  }
  const { offer, seqs } = setup((_c, e) => verdicts.get((e.data as { seq: number }).seq)?.promise ?? false);
  for (let seq = 1; seq <= 5; seq++) offer(event(seq));
  for (const seq of [5, 4, 3]) verdicts.get(seq)?.resolve(true);
  verdicts.get(2)?.resolve(false);
  await tick();
  expect(seqs()).toEqual([]);
  verdicts.get(1)?.resolve(true);
  for (let i = 0; i < 10 && seqs().length < 4; i++) await tick();
  expect(seqs()).toEqual([1, 3, 4, 5]);
});

test('the same event offered twice (two matching topics) is written once', () => {
  const { offer, seqs } = setup();
  const e = event(1);
  offer(e);
  offer(e);
  expect(seqs()).toEqual([1]);
});

test('hold/release: replayed events first, held duplicates of the replay dropped, later held events kept', () => {
  const { connection, offer, seqs } = setup();
  connection.hold();
  offer(event(4));
  offer(event(5));
  offer(event(6));
  expect(seqs()).toEqual([]);
  connection.release([event(2), event(3), event(4)], formatEventId('e1', 5));
  expect(seqs()).toEqual([2, 3, 4, 6]);
});

test('release keeps held events of channels the replay did not read, whatever their sequence', () => {
  const { connection, offer, seqs } = setup();
  connection.hold();
  offer(event(3, 'metrics:x'));
  offer(event(4, 'logs:a'));
  connection.release([event(2, 'logs:a')], formatEventId('e1', 4), (channel) => channel === 'logs:a');
  expect(seqs()).toEqual([2, 3]);
});

test('forget drops queued and held events of channels no longer wanted', async () => {
  let release: (ok: boolean) => void = () => {};
  const gate: Gate = (_c, e) =>
    (e.data as { seq: number }).seq === 1 ? new Promise<boolean>((resolve) => (release = resolve)) : true;
  const { connection, offer, seqs } = setup(gate);
  offer(event(1, 'logs:a'));
  offer(event(2, 'metrics:x'));
  offer(event(3, 'logs:a'));
  connection.forget((channel) => channel !== 'metrics:x');
  connection.writeInOrder('event: sse:subscribed\ndata: {}\n\n');
  release(true);
  await tick();
  await tick();
  expect(seqs()).toEqual([1, 3, 'sse:subscribed']);
});

test('forget: the event awaiting its verdict when its channel is removed is not written after the change', async () => {
  let release: (ok: boolean) => void = () => {};
  const gate: Gate = (_c, e) =>
    (e.data as { seq: number }).seq === 1 ? new Promise<boolean>((resolve) => (release = resolve)) : true;
  const { connection, offer, seqs } = setup(gate);
  offer(event(1, 'metrics:x'));
  offer(event(2, 'logs:a'));
  connection.forget((channel) => channel !== 'metrics:x');
  connection.writeInOrder('event: sse:subscribed\ndata: {}\n\n');
  release(true);
  await tick();
  await tick();
  expect(seqs()).toEqual([2, 'sse:subscribed']);
});

test('a control frame written in order waits behind an event awaiting its verdict', async () => {
  let release: (ok: boolean) => void = () => {};
  const { connection, offer, seqs } = setup(() => new Promise<boolean>((resolve) => (release = resolve)));
  offer(event(1));
  connection.writeInOrder('event: sse:subscribed\ndata: {}\n\n');
  expect(seqs()).toEqual([]);
  release(true);
  await tick();
  expect(seqs()).toEqual([1, 'sse:subscribed']);
});

test('a client that stops reading is closed once its backlog passes maxBufferedBytes', () => {
  const { res, host, connection, offer } = setup(() => true, 2048, 100);
  for (let seq = 1; seq <= 200 && !connection.isClosed; seq++) offer(event(seq));
  expect(connection.isClosed).toBe(true);
  expect(res.destroyed).toBe(true);
  expect(host.overflowed).toHaveBeenCalledTimes(1);
});

test('held events count toward the limit: a replay under a burst closes the stream instead of growing', () => {
  const { res, connection, offer } = setup(() => true, 1024);
  connection.hold();
  for (let seq = 1; seq <= 100 && !connection.isClosed; seq++) offer(event(seq));
  expect(res.destroyed).toBe(true);
});
