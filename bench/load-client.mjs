// The load client: raw `net` sockets, one per subscriber, driven over IPC by bench/run.mjs.
// It does the least it can per byte: native Buffer#indexOf for `\n\n` frame ends and for the `"ts":` stamp,
// one clock read per socket read, a fixed-bucket histogram. Chunked transfer framing (`<hex>\r\n … \r\n`)
// never contains `\n\n`, and every server here writes a frame in one write, so the frame count is exact.
import net from 'node:net';

const LFLF = Buffer.from('\n\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const TS = Buffer.from('"ts":');
const BUCKET_US = 10;
const BUCKETS = 500_000; // 10 µs buckets up to 5 s; beyond that is clamped into the last one (max is exact)

const nowMicros = () => Number(process.hrtime.bigint() / 1000n);

const sockets = [];
let frames = 0;
let dataFrames = 0;
let parseStamps = false;
let recordLatency = false;
let hist = new Uint32Array(BUCKETS);
let latCount = 0;
let latMax = 0;
let target = null; // { frames, resolve }

function checkTarget() {
  if (target !== null && frames >= target.frames) {
    const t = target;
    target = null;
    t.resolve({ reached: true, at: nowMicros(), frames });
  }
}

function onFrames(state, chunk) {
  const buf = state.pending === null ? chunk : Buffer.concat([state.pending, chunk]);
  state.pending = null;
  let pos = 0;
  if (!state.open) {
    const end = buf.indexOf(HEAD_END);
    if (end === -1) {
      state.pending = Buffer.from(buf);
      return;
    }
    state.status = Number(buf.toString('latin1', 9, 12));
    state.open = true;
    pos = end + 4;
    state.onOpen?.(state.status);
    if (state.status !== 200) {
      state.socket.destroy();
      return;
    }
  }
  const now = parseStamps ? nowMicros() : 0;
  let n = 0;
  for (;;) {
    const end = buf.indexOf(LFLF, pos);
    if (end === -1) break;
    if (parseStamps) {
      const m = buf.indexOf(TS, pos);
      if (m !== -1 && m < end) {
        dataFrames++;
        state.data++;
        if (recordLatency) {
          let v = 0;
          for (let i = m + 5; i < end; i++) {
            const c = buf[i];
            if (c < 48 || c > 57) break;
            v = v * 10 + (c - 48);
          }
          if (v > 0) {
            const lat = now - v;
            latCount++;
            if (lat > latMax) latMax = lat;
            const b = lat <= 0 ? 0 : Math.floor(lat / BUCKET_US);
            hist[b < BUCKETS ? b : BUCKETS - 1]++;
          }
        }
      }
    }
    n++;
    pos = end + 2;
  }
  // What follows the last frame end is usually just the chunk trailer `\r\n`; keep only real leftovers.
  if (pos < buf.length && !(buf.length - pos === 2 && buf[pos] === 13)) state.pending = Buffer.from(buf.subarray(pos));
  frames += n;
  state.frames += n;
  if (n > 0) {
    state.onFrames?.(state);
    checkTarget();
  }
}

/** Open one subscriber; resolves with its state once the response head arrived (or it failed). */
function openSocket(port, path, keep = true) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const state = { socket, pending: null, open: false, status: 0, frames: 0, data: 0, onOpen: null, onFrames: null };
    let settled = false;
    const settle = (ok, why) => {
      if (settled) return;
      settled = true;
      resolve({ ok, why, state });
    };
    state.onOpen = (status) => settle(status === 200, `HTTP ${status}`);
    socket.setNoDelay(true);
    socket.on('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
    });
    socket.on('data', (chunk) => onFrames(state, chunk));
    socket.on('error', (e) => settle(false, e.code ?? e.message));
    socket.on('close', () => {
      settle(false, 'closed');
      const at = sockets.indexOf(state);
      if (at !== -1 && !state.closing) sockets.splice(at, 1);
    });
    if (keep) sockets.push(state);
  });
}

/** Open `count` sockets with at most `concurrency` handshakes in flight (the accept queue is finite). */
async function connect({ port, path, count, concurrency = 200 }) {
  let next = 0;
  let ok = 0;
  const failures = {};
  const worker = async () => {
    while (next < count) {
      next++;
      const r = await openSocket(port, path);
      if (r.ok) ok++;
      else failures[r.why] = (failures[r.why] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { ok, failures, open: sockets.length };
}

/** Close the newest `count` sockets (all when omitted) with RST, so no TIME_WAIT eats ephemeral ports. */
function close({ count }) {
  const n = count === undefined ? sockets.length : Math.min(count, sockets.length);
  const victims = sockets.splice(sockets.length - n, n);
  for (const s of victims) {
    s.closing = true;
    if (typeof s.socket.resetAndDestroy === 'function') s.socket.resetAndDestroy();
    else s.socket.destroy();
  }
  return { closed: n, open: sockets.length };
}

/** One fresh subscriber that must receive `expect` data frames: the replay measurement. */
async function replay({ port, path, expect, timeoutMs }) {
  const was = parseStamps;
  parseStamps = true;
  const t0 = nowMicros();
  let firstAt = 0;
  const result = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ done: false }), timeoutMs);
    openSocket(port, path, false).then(({ ok, why, state }) => {
      if (!ok) {
        clearTimeout(timer);
        resolve({ done: false, why });
        return;
      }
      const check = (s) => {
        if (firstAt === 0 && s.data > 0) firstAt = nowMicros();
        if (s.data >= expect) {
          clearTimeout(timer);
          resolve({ done: true, at: nowMicros(), state: s });
        }
      };
      state.onFrames = check;
      check(state);
    });
  });
  parseStamps = was;
  const state = result.state;
  state?.socket.destroy();
  return {
    done: result.done,
    why: result.why,
    ms: result.done ? (result.at - t0) / 1000 : null,
    firstMs: firstAt ? (firstAt - t0) / 1000 : null,
    data: state?.data ?? 0,
  };
}

function stats() {
  const cpu = process.cpuUsage();
  const buckets = [];
  if (latCount > 0) for (let i = 0; i < BUCKETS; i++) if (hist[i] !== 0) buckets.push(i, hist[i]);
  return {
    frames,
    dataFrames,
    open: sockets.length,
    cpuUs: cpu.user + cpu.system,
    latency: { bucketUs: BUCKET_US, count: latCount, maxUs: latMax, buckets },
  };
}

const handlers = {
  exit() {
    setTimeout(() => process.exit(0), 50);
    return true;
  },
  connect,
  close,
  replay,
  stats: () => stats(),
  mode({ stamps, latency }) {
    parseStamps = Boolean(stamps);
    recordLatency = Boolean(latency);
    hist = new Uint32Array(BUCKETS);
    latCount = 0;
    latMax = 0;
    return true;
  },
  /** Resolve when the total frame count reaches `frames`, or after `timeoutMs` with what arrived. */
  waitFrames({ frames: want, timeoutMs }) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        target = null;
        resolve({ reached: false, at: nowMicros(), frames });
      }, timeoutMs);
      target = {
        frames: want,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      checkTarget();
    });
  },
};

process.on('message', async (msg) => {
  const { id, cmd } = msg;
  try {
    const value = await handlers[cmd](msg);
    process.send({ id, value });
  } catch (e) {
    process.send({ id, error: String(e?.stack ?? e) });
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true, pid: process.pid });
