// Shared by every bench server: the payload, the clock, the publish loop and the IPC control protocol.
// All servers run as forked children of bench/run.mjs and are driven only over IPC, so control traffic
// never shares the sockets or the HTTP stack being measured.
import { setImmediate as yieldToLoop } from 'node:timers/promises';

/**
 * Microseconds on CLOCK_MONOTONIC. process.hrtime is system-wide on Linux, so a stamp taken here can be
 * compared with one taken in the load client without any clock sync.
 */
export function nowMicros() {
  return Number(process.hrtime.bigint() / 1000n);
}

const PAD = 'x'.repeat(138);

/** ~200 B of JSON; `ts` first so the client finds it early in the frame. */
export function makePayload(seq, ts) {
  return { ts, seq, src: 'bench', kind: 'tick', pad: PAD };
}

/** Events of this channel are what the subscribers count. */
export const ROOM = 'bench:room1';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Publish `n` events. `rate > 0` is open loop: event i is stamped with its *intended* time, so a server that
 * stalls is charged for the delay (no coordinated omission). `rate === 0` publishes as fast as the server
 * takes them, yielding to the event loop every `yieldEvery` events and keeping at most `window` async
 * publishes in flight.
 */
export async function publishLoop({ n, rate = 0, channel = ROOM, yieldEvery = 1, window = 64 }, publish) {
  const start = nowMicros();
  const cpu0 = process.cpuUsage();
  let inflight = 0;
  let errors = 0;
  let firstError;
  let wake = null;
  const settle = () => {
    inflight--;
    if (wake) {
      const w = wake;
      wake = null;
      w();
    }
  };
  const onError = (e) => {
    errors++;
    firstError ??= String(e?.message ?? e);
  };
  const one = (i, ts) => {
    let r;
    try {
      r = publish(channel, makePayload(i, ts));
    } catch (e) {
      onError(e);
      return;
    }
    if (r && typeof r.then === 'function') {
      inflight++;
      r.then(settle, (e) => {
        onError(e);
        settle();
      });
    }
  };
  const waitBelow = async (limit) => {
    while (inflight > limit) await new Promise((r) => (wake = r));
  };

  if (rate > 0) {
    const step = 1e6 / rate;
    let i = 0;
    while (i < n) {
      const now = nowMicros();
      const due = start + i * step;
      if (now < due) {
        await sleep(Math.max(1, Math.floor((due - now) / 1000)));
        continue;
      }
      while (i < n && start + i * step <= now) {
        one(i, Math.round(start + i * step));
        i++;
      }
      await waitBelow(window);
    }
  } else {
    for (let i = 0; i < n; i++) {
      one(i, nowMicros());
      if (inflight >= window) await waitBelow(window - 1);
      if ((i + 1) % yieldEvery === 0) await yieldToLoop();
    }
  }
  await waitBelow(0);
  const cpu = process.cpuUsage(cpu0);
  return { publishUs: nowMicros() - start, cpuUs: cpu.user + cpu.system, errors, firstError };
}

async function collectGarbage() {
  // Two passes with a turn of the loop between: the first frees objects whose finalizers/weak refs
  // the second then reclaims.
  for (let i = 0; i < 3; i++) {
    global.gc?.();
    await yieldToLoop();
  }
}

/**
 * Wire `impl` to the orchestrator. `impl` provides:
 *   port, connections(), publish(channel, payload) → void|Promise, close(), and optionally
 *   prepareReplay(n) → Promise<string|null> (the id to resume after; null when unsupported).
 */
export function serve(impl) {
  if (typeof global.gc !== 'function') {
    console.error('bench server: start me with --expose-gc');
  }
  const reply = (id, body) => process.send?.({ id, ...body });
  process.on('message', async (msg) => {
    const { id, cmd } = msg;
    try {
      switch (cmd) {
        case 'conns':
          return reply(id, { value: impl.connections() });
        case 'mem': {
          await collectGarbage();
          const m = process.memoryUsage();
          return reply(id, {
            value: { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers },
          });
        }
        case 'cpu':
          return reply(id, { value: process.cpuUsage() });
        case 'publish':
          return reply(id, { value: await publishLoop(msg, impl.publish) });
        case 'prepareReplay':
          return reply(id, { value: impl.prepareReplay ? await impl.prepareReplay(msg.n) : null });
        case 'close':
          await impl.close?.();
          reply(id, { value: true });
          return setTimeout(() => process.exit(0), 20);
        default:
          return reply(id, { error: `unknown command ${cmd}` });
      }
    } catch (e) {
      reply(id, { error: String(e?.stack ?? e) });
    }
  });
  // The orchestrator going away must never leave a server behind.
  process.on('disconnect', () => process.exit(0));
  process.send?.({ ready: true, port: impl.port, pid: process.pid });
}

/** Parse `?channels=a,b` the way every server here does. */
export function channelsOf(url) {
  const q = url.indexOf('?');
  const params = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
  return (params.get('channels') ?? '').split(',').filter(Boolean);
}

export function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // A deep backlog: the load client opens thousands of sockets in bursts.
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => resolve(server.address().port));
  });
}
