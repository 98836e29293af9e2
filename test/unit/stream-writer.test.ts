import { encodeFrame } from '../../src/bus/event';
import { StreamWriter, WriteBatch } from '../../src/server/stream-writer';
import { FakeResponse } from '../helpers/fake-response';

const frame = (n: number) => encodeFrame(`data: ${n}\n\n`);

test('while the client does not read, frames wait in the outbox in order and leave on drain', () => {
  const res = new FakeResponse(15);
  const backlog = jest.fn();
  const writer = new StreamWriter(res.asResponse(), new WriteBatch(), { overLimit: backlog });
  writer.write(frame(1));
  writer.write(frame(2));
  expect(writer.congested).toBe(true);
  writer.write(frame(3));
  writer.write(frame(4));
  expect(res.chunks).toEqual(['data: 1\n\n', 'data: 2\n\n']);
  expect(writer.bufferedBytes).toBe(res.writableLength + 2 * frame(3).frame.length);
  expect(backlog).toHaveBeenCalledTimes(3);
  res.drain();
  expect(res.chunks).toEqual(['data: 1\n\n', 'data: 2\n\n', 'data: 3\n\n', 'data: 4\n\n']);
  expect(writer.congested).toBe(true);
  res.drain();
  expect(writer.congested).toBe(false);
  expect(writer.bufferedBytes).toBe(0);
});

test('after dispose nothing is written and the drain listener is gone', () => {
  const res = new FakeResponse(5);
  const writer = new StreamWriter(res.asResponse(), new WriteBatch(), { overLimit: () => false });
  writer.write(frame(1));
  writer.write(frame(2));
  writer.dispose();
  expect(res.listenerCount('drain')).toBe(0);
  writer.write(frame(3));
  res.drain();
  expect(res.chunks).toEqual(['data: 1\n\n']);
});

test('the batch is on from the second event of a tick and off in the next', async () => {
  const batch = new WriteBatch();
  batch.noteEvent();
  expect(batch.batching).toBe(false);
  batch.noteEvent();
  expect(batch.batching).toBe(true);
  await new Promise((resolve) => process.nextTick(resolve));
  expect(batch.batching).toBe(false);
});
