// What one dead-peer scan costs with many open sockets: read /proc/net/tcp{,6} and find the retransmitting ones.
// Opens N loopback connections (the clients in a child process; both ends are in the tables, so 2N lines), then
// times the read, the parse, and DeadPeerScanner.scan() with N watched streams; also the parse of a synthetic
// table where all N sockets retransmit (every line decoded: the worst case). Linux only; needs the build (dist/).
// Usage: npm run -s build && (ulimit -n 65536; node bench/dead-peer-scan.mjs [N=10000])
import { fork } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { endianness } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

const require = createRequire(import.meta.url);
const { DeadPeerScanner } = require('../dist/server/dead-peer.js');
const { retransmittingSockets, socketKey } = require('../dist/server/tcp-table.js');

if (process.argv[2] === 'clients') {
  const [port, count] = process.argv.slice(3).map(Number);
  const { connect } = await import('node:net');
  // In batches, so the server's accept queue never overflows (an overflowed handshake waits for SYN-ACK retries).
  for (let i = 0; i < count; i += 250) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + 250); j++) {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', (error) => {
        console.error(error.message);
        process.exit(1);
      });
      batch.push(new Promise((resolve) => socket.once('connect', resolve)));
    }
    await Promise.all(batch);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  process.send('open');
} else {
  const count = Number(process.argv[2] ?? 10_000);
  const sockets = [];
  const server = createServer((socket) => sockets.push(socket));
  await new Promise((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
  const child = fork(new URL(import.meta.url).pathname, ['clients', String(server.address().port), String(count)]);
  await new Promise((resolve, reject) => {
    child.on('message', resolve);
    child.on('exit', (code) => reject(new Error(`clients exited with ${code}`)));
  });
  while (sockets.length < count) await new Promise((resolve) => setTimeout(resolve, 10));

  const order = endianness();
  const read = () => Promise.all([readFile('/proc/net/tcp', 'latin1'), readFile('/proc/net/tcp6', 'latin1')]);
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const time = async (fn, runs = 21) => {
    const took = [];
    for (let i = 0; i < runs; i++) {
      const start = performance.now();
      await fn();
      took.push(performance.now() - start);
    }
    return median(took).toFixed(2);
  };

  const tables = await read();
  const lines = tables.reduce((n, t) => n + t.split('\n').length - 2, 0);
  const scanner = new DeadPeerScanner(read, order);
  const logger = { warn: console.warn, error: console.error };
  for (const socket of sockets) {
    scanner.watch(
      socket,
      socketKey(socket.localPort, socket.remoteAddress, socket.remotePort),
      60_000,
      () => {},
      logger,
    );
  }
  // Every line as the kernel prints a socket in retransmission: each one's addresses decoded.
  const worst = tables[0].replace(/ 0[0-9A-F]:[0-9A-F]{8} [0-9A-F]{8} /g, ' 01:00000020 00000003 ');

  // How long the event loop is held at most: the kernel's work happens in libuv's threadpool, the parse does not.
  const loopHeld = async (fn) => {
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const ms = await time(fn);
    delay.disable();
    return [ms, (delay.max / 1e6).toFixed(2)];
  };
  const [, readLoopMaxMs] = await loopHeld(read);
  const [scanMs, scanLoopMaxMs] = await loopHeld(() => scanner.scan());
  const results = {
    sockets: count,
    tableLines: lines,
    readMs: await time(read),
    parseMs: await time(() => {
      for (const table of tables) retransmittingSockets(table, order);
    }),
    scanMs,
    readLoopMaxMs,
    scanLoopMaxMs,
    parseAllRetransmittingMs: await time(() => retransmittingSockets(worst, order)),
    retransmittingInWorst: retransmittingSockets(worst, order).size,
  };
  console.log(JSON.stringify(results));
  child.kill();
  for (const socket of sockets) socket.destroy();
  server.close();
  process.exit(0);
}
