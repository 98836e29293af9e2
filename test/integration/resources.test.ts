import { connect, type Socket } from 'node:net';
import type { AuditEntry } from '../../src/types';
import { customBus } from '../helpers/bus';
import { closeAll, eventually, recordingLogger, startGateway } from '../helpers/gateway';
import { dataEvents } from '../helpers/sse-client';

afterEach(closeAll);

/** A raw socket that sends the GET and resolves once `sse:ready` arrived. */
function rawStream(port: number, path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
    });
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (head.includes('event: sse:ready')) {
        socket.off('data', onData);
        resolve(socket);
      }
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

describe('resources', () => {
  it('500 connect/disconnect cycles (graceful end and reset) leave no connection, index entry or timer', async () => {
    const { server, gateway } = await startGateway({ channels: ['logs', 'dashboards'], heartbeatMs: 1000 });
    for (let batch = 0; batch < 10; batch++) {
      const sockets = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          rawStream(server.port, `/events?channels=logs:ws${i % 7}:wf${batch},dashboards:*,logs:ws${i}:*`),
        ),
      );
      expect(gateway.stats().connections).toBe(50);
      expect(gateway.stats().timers).toBe(1);
      sockets.forEach((socket, i) => {
        if (i % 2 === 0) socket.end();
        else socket.resetAndDestroy();
      });
      await eventually(() => gateway.stats().connections === 0, 5000, 'all streams to close');
    }
    expect(gateway.stats()).toMatchObject({
      connections: 0,
      users: 0,
      channels: 0,
      subscriptions: 0,
      timers: 0,
      bufferedBytes: 0,
    });
    expect(gateway.stats().bus.listeners).toBe(1);
  });

  it('closes a client that stops reading at maxBufferedBytes while its neighbour receives every event', async () => {
    const logger = recordingLogger();
    const cap = 1 << 20;
    const { server, gateway, open } = await startGateway({
      channels: ['logs'],
      logger,
      limits: { maxBufferedBytes: cap },
    });
    const slow = await rawStream(server.port, '/events?channels=logs:burst');
    slow.pause();
    const normal = await open('channels=logs:burst');
    const payload = 'x'.repeat(16 * 1024);
    let maxBuffered = 0;
    // Publish until the slow client is closed: how much the kernel's socket buffers absorb first depends on
    // the machine (loopback receive buffers may grow to tens of MB), so a fixed count would prove nothing.
    let total = 0;
    while (gateway.stats().slowClosed === 0) {
      if (total >= 6000) throw new Error(`the slow client was not closed after ${total} events of 16 KB`);
      await gateway.publish('logs:burst', { i: total, payload });
      total++;
      if (total % 16 === 0) {
        maxBuffered = Math.max(maxBuffered, gateway.stats().bufferedBytes);
        // A publisher doing real work yields to I/O between batches; the normal client drains meanwhile.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    for (let k = 0; k < 16; k++) await gateway.publish('logs:burst', { i: total++, payload });
    const received = dataEvents(await normal.take(total, 30_000)).map((e) => (e.data as { i: number }).i);
    expect(received).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(gateway.stats().connections).toBe(1);
    // Memory stays bounded: never much more than the two connections' caps, whatever was published.
    expect(maxBuffered).toBeLessThan(2 * cap + 64 * 1024);
    expect(logger.warn).toHaveBeenCalledWith(expect.stringMatching(/more than 1048576 bytes waiting/));
    slow.destroy();
  });

  it('limits.maxConnectionAgeMs ends old streams (90-100 % of the age); the reconnect misses nothing', async () => {
    const audit: AuditEntry[] = [];
    const { open, gateway } = await startGateway({
      channels: ['logs'],
      limits: { maxConnectionAgeMs: 400 },
      audit: (entry) => audit.push(entry),
    });
    const opened = Date.now();
    const stream = await open('channels=logs:a');
    const before = await gateway.publish('logs:a', 'before');
    expect(dataEvents(await stream.take(1)).map((e) => e.data)).toEqual(['before']);
    expect(gateway.stats().timers).toBe(2);
    await stream.ended;
    const age = Date.now() - opened;
    expect(age).toBeGreaterThanOrEqual(350);
    expect(age).toBeLessThan(2000);
    expect(gateway.stats()).toMatchObject({ connections: 0, expired: 1, timers: 0 });
    expect(audit.find((entry) => entry.type === 'disconnect')?.reason).toBe('max-age');
    const away = await gateway.publish('logs:a', 'while away');
    const resumed = await open(`channels=logs:a&lastEventId=${encodeURIComponent(before.id)}`);
    expect(dataEvents(await resumed.take(1)).map((e) => e.id)).toEqual([away.id]);
    await expect(startGateway({ channels: ['logs'], limits: { maxConnectionAgeMs: 10 } })).rejects.toThrow(
      /maxConnectionAgeMs/,
    );
  });

  it('live events held during a slow replay count toward maxBufferedBytes: over it, the stream is closed', async () => {
    let releaseReplay: () => void = () => {};
    let replayStarted: () => void = () => {};
    const started = new Promise<void>((resolve) => {
      replayStarted = resolve;
    });
    const bus = customBus((inner) => ({
      async replay(id, query) {
        replayStarted();
        await new Promise<void>((resolve) => {
          releaseReplay = resolve;
        });
        return inner.replay(id, query);
      },
    }));
    const logger = recordingLogger();
    const audit: AuditEntry[] = [];
    const { open, gateway } = await startGateway({
      channels: ['logs'],
      bus,
      logger,
      limits: { maxBufferedBytes: 4096 },
      audit: (entry) => audit.push(entry),
    });
    const first = await gateway.publish('logs:a', 'first');
    const stream = await open(`channels=logs:a&lastEventId=${encodeURIComponent(first.id)}`, { ready: false });
    await started;
    for (let i = 0; i < 40; i++) await gateway.publish('logs:a', 'x'.repeat(200));
    await stream.ended;
    expect(gateway.stats()).toMatchObject({ connections: 0, slowClosed: 1 });
    expect(audit.find((entry) => entry.type === 'disconnect')?.reason).toBe('slow-consumer');
    releaseReplay();
  });
});
