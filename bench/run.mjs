#!/usr/bin/env node
// Orchestrator of `npm run bench`: starts each server and the load clients as child processes, runs the
// scenarios over IPC, prints a markdown table with ratios to the raw floor, writes bench/results/*.json.
// Exit status: 0 when the harness worked (a server that fails a scenario is reported, not fatal),
// 1 on harness failure, 130 on SIGINT.
import { execFileSync, fork, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const option = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];

if (flag('help')) {
  console.log(`usage: node bench/run.mjs [--quick] [--only=better-sse,gateway,gateway-filter,gateway-ops,gateway-redis,raw-express,raw-socket]
  --quick      smaller counts, fewer scenarios (about a minute)
  --only=…     run only these servers (raw is always added: every ratio is to raw);
               raw-socket is a diagnostic server that runs only when named here
  --latency-rate=N  open-loop rate of the latency scenario (default: 200/s full, 100/s quick,
               lowered to 40% of raw's measured capacity when the machine cannot carry that)
  --dist=DIR   benchmark the library build in DIR instead of ./dist (must lie inside this repo, so
               its requires resolve against node_modules)
  --no-json    do not write bench/results/
  --no-browser do not run the Chromium benches after the table (browser-client, browser-tabs, react/run)
env BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" adds node flags to every server and client.`);
  process.exit(0);
}

const QUICK = flag('quick');
const P = QUICK
  ? {
      warmSubs: 100,
      warmEvents: 100,
      memLevels: [1000],
      soloN: 10000,
      soloRepeats: 3,
      unrelated: 1000,
      thr: [{ subs: 1000, events: 200 }],
      thrRepeats: 1,
      latency: { subs: 1000, rate: 100, seconds: 2 },
      replay: 1000,
      waitMs: 30000,
    }
  : {
      warmSubs: 200,
      warmEvents: 300,
      memLevels: [1000, 5000, 10000],
      soloN: 30000,
      soloRepeats: 5,
      unrelated: 10000,
      thr: [
        { subs: 1000, events: 500 },
        { subs: 5000, events: 100 },
      ],
      thrRepeats: 3,
      latency: { subs: 1000, rate: 200, seconds: 10 },
      replay: 1000,
      waitMs: 120000,
    };
// For testing the harness itself with tiny counts: BENCH_PARAMS='{"memLevels":[300,600],"unrelated":600}'.
if (process.env.BENCH_PARAMS) Object.assign(P, JSON.parse(process.env.BENCH_PARAMS));
// The solo scenario runs with the largest memory level still open: make sure that is the unrelated count.
if (!P.memLevels.includes(P.unrelated)) P.memLevels.push(P.unrelated);

const ROOM = 'bench:room1';
const FIVE = 'bench:room1,bench:a,bench:b,bench:c,bench:d';
const nowMicros = () => Number(process.hrtime.bigint() / 1000n);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error('[bench]', ...a);

// ---------------------------------------------------------------------------------------------------
// Child processes: every one is tracked and killed on exit, error or signal.

const children = new Set();
let cleaningUp = false;

function killAll(signal = 'SIGKILL') {
  for (const child of children) {
    try {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    } catch {}
  }
}

function track(child, label) {
  children.add(child);
  child.label = label;
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (!cleaningUp && child.expectExit !== true) child.onUnexpectedExit?.(code, signal);
  });
  return child;
}

/** A forked child speaking `{ id, cmd, … } → { id, value | error }`. */
class Peer {
  constructor(file, args, label, env = {}) {
    this.label = label;
    this.pending = new Map();
    this.seq = 0;
    this.child = track(
      fork(file, args, {
        execArgv: ['--expose-gc', ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [])],
        env: { ...process.env, ...env },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
      label,
    );
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label} did not start within 20 s`)), 20000);
      this.child.on('message', (msg) => {
        if (msg.ready) {
          clearTimeout(timer);
          this.port = msg.port;
          resolve(this);
          return;
        }
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        if (msg.error) p.reject(new Error(`${label}: ${msg.error}`));
        else p.resolve(msg.value);
      });
      this.child.onUnexpectedExit = (code, signal) => {
        clearTimeout(timer);
        const e = new Error(`${label} exited unexpectedly (code ${code}, signal ${signal})`);
        reject(e);
        for (const p of this.pending.values()) {
          clearTimeout(p.timer);
          p.reject(e);
        }
        this.pending.clear();
        this.dead = e;
      };
    });
  }

  request(cmd, args = {}, timeoutMs = 30000) {
    if (this.dead) return Promise.reject(this.dead);
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.label}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.child.send({ id, cmd, ...args });
    });
  }

  async stop() {
    this.child.expectExit = true;
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    try {
      await this.request('close', {}, 5000);
    } catch {}
    await Promise.race([exited, sleep(3000)]);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------------------------------------------
// Redis for (e): a private redis-server on a free port, no persistence.

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function redisPing(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.on('error', () => done(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

async function startRedis() {
  const bin = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));
  if (!bin) return { error: 'redis-server not found' };
  const port = await freePort();
  const child = track(
    spawn(
      bin,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
        '--loglevel',
        'warning',
      ],
      {
        stdio: 'ignore',
      },
    ),
    'redis-server',
  );
  for (let i = 0; i < 100; i++) {
    if (await redisPing(port)) return { url: `redis://127.0.0.1:${port}`, child };
    await sleep(50);
  }
  child.kill('SIGKILL');
  return { error: 'redis-server did not answer PING within 5 s' };
}

// ---------------------------------------------------------------------------------------------------
// What can run.

const requireDist = createRequire(join(root, 'package.json'));
// `--dist=<dir>` benchmarks another build of the library (e.g. a before/after pair); default ./dist.
const DIST = option('dist') ? join(process.cwd(), option('dist')) : join(root, 'dist');
function libraryExports() {
  try {
    return requireDist(join(DIST, 'index.js'));
  } catch (e) {
    return { error: e.message };
  }
}

const SERVERS = [
  { key: 'raw', title: '(a) raw node:http', file: 'raw.mjs', args: [], channels: ROOM, replay: false },
  // The raw loop behind Express 5: splits Express's own per-request cost from the gateway's.
  {
    key: 'raw-express',
    title: '(a′) raw loop in Express',
    file: 'raw.mjs',
    args: ['--express'],
    channels: ROOM,
    replay: false,
  },
  {
    key: 'raw-socket',
    title: '(a″) raw, pre-framed chunk to socket',
    file: 'raw.mjs',
    args: ['--socket'],
    channels: ROOM,
    replay: false,
    diagnostic: true,
  },
  { key: 'better-sse', title: '(b) better-sse', file: 'better-sse.mjs', args: [], channels: ROOM, replay: false },
  {
    key: 'gateway',
    title: '(c) gateway, memory bus',
    file: 'gateway.mjs',
    args: [],
    channels: ROOM,
    replay: true,
    needs: ['sseMiddleware'],
  },
  {
    key: 'gateway-filter',
    title: '(d) gateway + filter, 5 ch/conn',
    file: 'gateway.mjs',
    args: ['--filter'],
    channels: FIVE,
    replay: true,
    needs: ['sseMiddleware'],
  },
  {
    key: 'gateway-ops',
    title: '(f) gateway + metrics + audit',
    file: 'gateway.mjs',
    args: ['--ops'],
    channels: ROOM,
    replay: true,
    needs: ['sseMiddleware'],
  },
  {
    key: 'gateway-redis',
    title: '(e) gateway ×2, Redis bus',
    file: 'gateway.mjs',
    args: [],
    channels: ROOM,
    replay: true,
    needs: ['sseMiddleware', 'createRedisBus'],
    instances: 2,
    redis: true,
  },
];

// ---------------------------------------------------------------------------------------------------
// A target: one server (or two, for Redis) behind one interface.

class Target {
  constructor(def, peers) {
    this.def = def;
    this.peers = peers;
    this.ports = peers.map((p) => p.port);
  }
  async conns() {
    let n = 0;
    for (const p of this.peers) n += await p.request('conns');
    return n;
  }
  async mem() {
    const sum = { rss: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
    for (const p of this.peers) {
      const m = await p.request('mem');
      for (const k of Object.keys(sum)) sum[k] += m[k];
    }
    return sum;
  }
  async cpuUs() {
    let us = 0;
    for (const p of this.peers) {
      const c = await p.request('cpu');
      us += c.user + c.system;
    }
    return us;
  }
  publish(args, timeoutMs) {
    return this.peers[0].request('publish', args, timeoutMs);
  }
  async waitConns(expected, timeoutMs = 30000) {
    const deadline = Date.now() + timeoutMs;
    let n;
    for (;;) {
      n = await this.conns();
      if (n === expected) return;
      if (Date.now() > deadline) throw new Error(`${this.def.key}: ${n} connections open, expected ${expected}`);
      await sleep(25);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Load clients: two processes, so one JS thread never has to read 5k+ sockets alone.

const CLIENTS = 2;
let clients = [];

/** Subscriber bookkeeping per client: how many room subscribers each holds, and the solo one. */
const book = { room: new Array(CLIENTS).fill(0), solo: 0 };

async function openRoom(target, count) {
  if (count <= 0) return;
  const path = `/events?channels=${target.def.channels}`;
  const cells = [];
  for (let c = 0; c < CLIENTS; c++) for (const port of target.ports) cells.push({ c, port });
  const jobs = cells.map((cell, i) => {
    const n = Math.floor(count / cells.length) + (i < count % cells.length ? 1 : 0);
    if (n === 0) return null;
    book.room[cell.c] += n;
    return clients[cell.c].request('connect', { port: cell.port, path, count: n }, 120000).then((r) => {
      if (r.ok !== n)
        throw new Error(
          `${target.def.key}: ${n - r.ok} of ${n} subscribers failed to connect: ${JSON.stringify(r.failures)}`,
        );
    });
  });
  await Promise.all(jobs);
  await target.waitConns(book.room.reduce((a, b) => a + b, 0) + book.solo);
}

/** Close the newest room subscribers (the solo one, opened first, is never among them). */
async function closeRoom(target, count) {
  const total = book.room.reduce((a, b) => a + b, 0);
  count = Math.min(count, total);
  let left = count;
  for (let c = 0; c < CLIENTS && left > 0; c++) {
    const n = c === CLIENTS - 1 ? left : Math.min(book.room[c], Math.round((count * book.room[c]) / total));
    if (n <= 0) continue;
    await clients[c].request('close', { count: n });
    book.room[c] -= n;
    left -= n;
  }
  await target.waitConns(book.room.reduce((a, b) => a + b, 0) + book.solo);
}

async function closeEverything(target) {
  for (const c of clients) await c.request('close', {});
  book.room.fill(0);
  book.solo = 0;
  await target.waitConns(0);
}

async function setMode(mode) {
  await Promise.all(clients.map((c) => c.request('mode', mode)));
}

/**
 * Publish on the first instance and wait until every client has its share of frames.
 * @returns wall time from the publish command to the last client's last frame, and CPU figures.
 */
async function deliver(target, { n, rate = 0, channel = ROOM, yieldEvery = 1, perClient }) {
  const before = await Promise.all(clients.map((c) => c.request('stats')));
  const serverCpu0 = await target.cpuUs();
  const t0 = nowMicros();
  const waits = clients.map((c, i) =>
    perClient[i] === 0
      ? Promise.resolve({ reached: true, at: t0, frames: before[i].frames })
      : c.request('waitFrames', { frames: before[i].frames + perClient[i] * n, timeoutMs: P.waitMs }, P.waitMs + 5000),
  );
  const published = await target.publish({ n, rate, channel, yieldEvery }, P.waitMs + 60000);
  const arrived = await Promise.all(waits);
  const end = Math.max(...arrived.map((a) => a.at));
  const wallUs = Math.max(1, end - t0);
  const serverCpuUs = (await target.cpuUs()) - serverCpu0;
  const after = await Promise.all(clients.map((c) => c.request('stats')));
  const clientCpuUs = after.reduce((s, a, i) => s + a.cpuUs - before[i].cpuUs, 0);
  const delivered = arrived.reduce((s, a, i) => s + a.frames - before[i].frames, 0);
  const expected = perClient.reduce((s, k) => s + k * n, 0);
  return {
    delivered,
    expected,
    complete: delivered >= expected,
    wallMs: wallUs / 1000,
    publishMs: published.publishUs / 1000,
    publishErrors: published.errors,
    publishError: published.firstError,
    serverCpuPct: (100 * serverCpuUs) / wallUs,
    clientCpuPct: (100 * clientCpuUs) / wallUs,
    serverCpuUs,
    after,
  };
}

function percentile(buckets, bucketUs, count, q) {
  const want = Math.ceil(q * count);
  let seen = 0;
  for (let i = 0; i < buckets.length; i += 2) {
    seen += buckets[i + 1];
    if (seen >= want) return ((buckets[i] + 0.5) * bucketUs) / 1000;
  }
  return null;
}

function mergeHistograms(list) {
  const map = new Map();
  let count = 0;
  let maxUs = 0;
  for (const h of list) {
    count += h.count;
    maxUs = Math.max(maxUs, h.maxUs);
    for (let i = 0; i < h.buckets.length; i += 2)
      map.set(h.buckets[i], (map.get(h.buckets[i]) ?? 0) + h.buckets[i + 1]);
  }
  const buckets = [...map.entries()].sort((a, b) => a[0] - b[0]).flat();
  return { count, maxUs, buckets, bucketUs: list[0]?.bucketUs ?? 10 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---------------------------------------------------------------------------------------------------
// Scenarios.

async function runSolo(target, label) {
  // One subscriber on its own channel; publishes yield every 100 so a run is publish cost, not a backlog.
  const perClient = new Array(CLIENTS).fill(0);
  perClient[0] = 1;
  const runs = [];
  // One discarded full-length run first: the first publishes pay for JIT and lazy setup, and right after
  // thousands of connections were opened, for the garbage collection that their setup left behind.
  await deliver(target, { n: P.soloN, channel: 'bench:solo', yieldEvery: 100, perClient });
  for (let r = 0; r < P.soloRepeats; r++) {
    const d = await deliver(target, { n: P.soloN, channel: 'bench:solo', yieldEvery: 100, perClient });
    runs.push(d);
  }
  const pick = median(runs.map((d) => d.wallMs));
  const d = runs.find((x) => x.wallMs === pick);
  log(
    `  solo (${label} unrelated): ${((1000 * d.wallMs) / P.soloN).toFixed(2)} µs/publish${d.complete ? '' : ' INCOMPLETE'}`,
  );
  return {
    unrelated: label,
    publishes: P.soloN,
    usPerPublish: (1000 * d.wallMs) / P.soloN,
    serverCpuUsPerPublish: d.serverCpuUs / P.soloN,
    complete: runs.every((x) => x.complete),
    runsUs: runs.map((x) => (1000 * x.wallMs) / P.soloN),
  };
}

async function runThroughput(target, subs, events) {
  await setMode({});
  // Median of P.thrRepeats runs by deliveries/s: one run on a shared machine can lose half its CPU.
  const runs = [];
  for (let r = 0; r < P.thrRepeats; r++) {
    const x = await deliver(target, { n: events, perClient: book.room });
    runs.push({ ...x, perSec: x.delivered / (x.wallMs / 1000) });
  }
  const d = [...runs].sort((a, b) => a.perSec - b.perSec)[Math.floor(runs.length / 2)];
  const perSec = d.perSec;
  log(
    `  throughput ${subs} subs × ${events}: ${Math.round(perSec)} deliveries/s (server CPU ${d.serverCpuPct.toFixed(0)}%, clients ${d.clientCpuPct.toFixed(0)}%)${d.complete ? '' : ` INCOMPLETE ${d.delivered}/${d.expected}`}`,
  );
  return {
    subs,
    events,
    deliveries: d.delivered,
    expected: d.expected,
    complete: d.complete,
    wallMs: d.wallMs,
    perSec,
    serverCpuPct: d.serverCpuPct,
    serverCpuNsPerDelivery: (1000 * d.serverCpuUs) / Math.max(1, d.delivered),
    clientCpuPct: d.clientCpuPct,
    publishErrors: d.publishErrors,
    publishError: d.publishError,
    runsPerSec: runs.map((x) => Math.round(x.perSec)),
  };
}

/**
 * The open-loop rate must stay well under what the floor can deliver, or every server's latency is just
 * its queue growing. So the configured rate is lowered to 40% of raw's measured 1k capacity when that is
 * less; the same rate then holds for every server of the run. `--latency-rate=N` pins it.
 */
function latencyRate(results) {
  const pinned = Number(option('latency-rate'));
  if (pinned > 0) return pinned;
  const raw = results.servers.raw?.throughput?.[P.latency.subs]?.perSec;
  if (!raw) return P.latency.rate;
  const cap = Math.max(5, Math.floor((0.4 * raw) / P.latency.subs / 5) * 5);
  if (cap < P.latency.rate) {
    results.notes.push(
      `latency rate lowered from ${P.latency.rate}/s to ${cap}/s: 40% of raw's ${Math.round(raw)} deliveries/s at ${P.latency.subs} subscribers on this machine`,
    );
    P.latency.rate = cap;
  }
  return P.latency.rate;
}

async function runLatency(target) {
  const { rate, seconds, subs } = P.latency;
  const n = rate * seconds;
  await setMode({ stamps: true, latency: true });
  const d = await deliver(target, { n, rate, perClient: book.room });
  const h = mergeHistograms(d.after.map((a) => a.latency));
  await setMode({});
  const fig = {
    subs,
    rate,
    events: n,
    samples: h.count,
    expected: d.expected,
    complete: d.complete,
    p50Ms: percentile(h.buckets, h.bucketUs, h.count, 0.5),
    p99Ms: percentile(h.buckets, h.bucketUs, h.count, 0.99),
    maxMs: h.maxUs / 1000,
    serverCpuPct: d.serverCpuPct,
    clientCpuPct: d.clientCpuPct,
  };
  log(
    `  latency ${subs} subs @ ${rate}/s: p50 ${fig.p50Ms?.toFixed(2)} ms, p99 ${fig.p99Ms?.toFixed(2)} ms, max ${fig.maxMs.toFixed(2)} ms`,
  );
  return fig;
}

async function runReplay(target) {
  const from = await target.peers[0].request('prepareReplay', { n: P.replay }, 60000);
  if (from === null) return null;
  // Reconnect on the last instance: for Redis that is the one that did not publish.
  const port = target.ports[target.ports.length - 1];
  const path = `/events?channels=${target.def.channels}&lastEventId=${encodeURIComponent(from)}`;
  const r = await clients[0].request('replay', { port, path, expect: P.replay, timeoutMs: 30000 }, 40000);
  log(
    `  replay ${P.replay}: ${r.done ? `${r.ms.toFixed(1)} ms` : `FAILED (${r.data} received${r.why ? `, ${r.why}` : ''})`}`,
  );
  return { events: P.replay, ms: r.ms, firstMs: r.firstMs, received: r.data, complete: r.done };
}

async function startTarget(def, redisUrl, distDir) {
  const env = distDir ? { BENCH_DIST: join(distDir, 'index.js') } : {};
  const args = [...def.args, ...(def.redis ? [`--redis=${redisUrl}`] : [])];
  const peers = [];
  for (let i = 0; i < (def.instances ?? 1); i++) {
    peers.push(await new Peer(join(here, 'servers', def.file), args, `${def.key}#${i}`, env).ready);
  }
  return new Target(def, peers);
}

async function benchServer(def, ctx) {
  const fig = { title: def.title };
  const target = await startTarget(def, ctx.redisUrl, ctx.distDir);
  fig.pids = target.peers.map((p) => p.child.pid);
  try {
    log(`${def.title}: warm-up`);
    await openRoom(target, P.warmSubs);
    await deliver(target, { n: P.warmEvents, perClient: book.room });
    await closeEverything(target);

    // The solo subscriber first, so its run also fills any replay history: the memory baseline then
    // holds a steady-state server, and the per-connection figures hold connections only.
    await clients[0].request('connect', {
      port: target.ports[target.ports.length - 1],
      path: '/events?channels=bench:solo',
      count: 1,
    });
    book.solo = 1;
    await target.waitConns(1);
    fig.solo = { 0: await runSolo(target, 0) };

    const base = await target.mem();
    fig.memory = { base, perConnection: {} };
    for (const level of [...P.memLevels].sort((a, b) => a - b)) {
      await openRoom(target, level - book.room.reduce((a, b) => a + b, 0));
      await sleep(200);
      const m = await target.mem();
      fig.memory.perConnection[level] = {
        rssBytes: (m.rss - base.rss) / level,
        heapBytes: (m.heapUsed - base.heapUsed) / level,
        externalBytes: (m.external - base.external) / level,
      };
      log(
        `  memory @ ${level}: ${Math.round((m.rss - base.rss) / level)} B RSS, ${Math.round((m.heapUsed - base.heapUsed) / level)} B heap per connection`,
      );
    }
    const open = book.room.reduce((a, b) => a + b, 0);
    fig.solo[open] = await runSolo(target, open);
    // Bracket the loaded run with a second unloaded one: JIT and heap drift between the first solo run
    // and the loaded one would otherwise count as the unrelated connections' cost.
    await closeRoom(target, open);
    fig.solo.after = await runSolo(target, 'again 0');
    const unloaded = (fig.solo[0].usPerPublish + fig.solo.after.usPerPublish) / 2;
    fig.solo.ratio = fig.solo[open].usPerPublish / unloaded;

    fig.throughput = {};
    const first = P.thr[0];
    await openRoom(target, first.subs);
    fig.throughput[first.subs] = await runThroughput(target, first.subs, first.events);
    if (def.key === 'raw') ctx.results.servers.raw = fig;
    latencyRate(ctx.results);
    fig.latency = await runLatency(target);
    for (const t of P.thr.slice(1)) {
      await openRoom(target, t.subs - book.room.reduce((a, b) => a + b, 0));
      fig.throughput[t.subs] = await runThroughput(target, t.subs, t.events);
    }

    await closeEverything(target);
    fig.replay = def.replay ? await runReplay(target) : null;
  } catch (e) {
    fig.error = String(e?.message ?? e);
    log(`  ${def.key} FAILED: ${fig.error}`);
    if (clients.some((c) => c.dead)) throw e;
    try {
      for (const c of clients) await c.request('close', {});
    } catch {}
    book.room.fill(0);
    book.solo = 0;
  } finally {
    await Promise.all(target.peers.map((p) => p.stop()));
  }
  return fig;
}

// ---------------------------------------------------------------------------------------------------
// Report.

const fmtInt = (v) => (v == null ? 'n/a' : Math.round(v).toLocaleString('en-US'));
const fmt = (v, d = 2) => (v == null ? 'n/a' : v.toFixed(d));

/** Every figure, its getter, its format and which direction is better (for the ratio). */
function figureRows() {
  const rows = [];
  for (const t of P.thr) {
    rows.push({
      name: `deliveries/s @ ${t.subs} subs`,
      get: (f) => f.throughput?.[t.subs]?.perSec,
      f: fmtInt,
      ok: (f) => f.throughput?.[t.subs]?.complete,
    });
    rows.push({
      name: `  server ns CPU/delivery @ ${t.subs}`,
      get: (f) => f.throughput?.[t.subs]?.serverCpuNsPerDelivery,
      f: (v) => fmt(v, 0),
    });
    rows.push({
      name: `  load-client CPU % @ ${t.subs}`,
      get: (f) => f.throughput?.[t.subs]?.clientCpuPct,
      f: (v) => fmt(v, 0),
      noRatio: true,
    });
  }
  const L = P.latency;
  rows.push({
    name: `p50 latency ms @ ${L.subs} subs, ${L.rate}/s`,
    get: (f) => f.latency?.p50Ms,
    f: fmt,
    ok: (f) => f.latency?.complete,
  });
  rows.push({
    name: `p99 latency ms @ ${L.subs} subs, ${L.rate}/s`,
    get: (f) => f.latency?.p99Ms,
    f: fmt,
    ok: (f) => f.latency?.complete,
  });
  rows.push({
    name: `max latency ms @ ${L.subs} subs, ${L.rate}/s`,
    get: (f) => f.latency?.maxMs,
    f: fmt,
    ok: (f) => f.latency?.complete,
  });
  rows.push({
    name: `  load-client CPU % (latency)`,
    get: (f) => f.latency?.clientCpuPct,
    f: (v) => fmt(v, 0),
    noRatio: true,
  });
  for (const level of [...P.memLevels].sort((a, b) => a - b)) {
    rows.push({ name: `RSS B/idle conn @ ${level}`, get: (f) => f.memory?.perConnection[level]?.rssBytes, f: fmtInt });
    rows.push({
      name: `heap B/idle conn @ ${level}`,
      get: (f) => f.memory?.perConnection[level]?.heapBytes,
      f: fmtInt,
    });
  }
  rows.push({
    name: '1-sub publish µs, 0 unrelated (before and after)',
    get: (f) => (f.solo?.after ? (f.solo[0].usPerPublish + f.solo.after.usPerPublish) / 2 : f.solo?.[0]?.usPerPublish),
    f: fmt,
    ok: (f) => f.solo?.[0]?.complete && f.solo?.after?.complete !== false,
  });
  rows.push({
    name: `1-sub publish µs, ${P.unrelated} unrelated`,
    get: (f) => f.solo?.[P.unrelated]?.usPerPublish,
    f: fmt,
    ok: (f) => f.solo?.[P.unrelated]?.complete,
  });
  rows.push({
    name: `  ${P.unrelated} / 0 unrelated`,
    get: (f) => f.solo?.ratio,
    f: (v) => (v == null ? 'n/a' : `${v.toFixed(2)}×`),
    noRatio: true,
  });
  rows.push({
    name: `replay ${P.replay} missed events, ms`,
    get: (f) => (f.replay?.complete ? f.replay.ms : null),
    f: (v) => fmt(v, 1),
    noRatio: true,
  });
  return rows;
}

function buildTable(results) {
  const keys = Object.keys(results.servers);
  const raw = results.servers.raw;
  const head = `| figure | ${keys.map((k) => results.servers[k].title).join(' | ')} |`;
  const sep = `|---|${keys.map(() => '---:').join('|')}|`;
  const lines = [head, sep];
  results.ratios = {};
  for (const row of figureRows()) {
    const cells = keys.map((k) => {
      const f = results.servers[k];
      if (f.skipped) return '—';
      const v = row.get(f);
      if (v == null) return f.error ? 'error' : 'n/a';
      let cell = row.f(v);
      if (row.ok && row.ok(f) === false) cell += ' ⚠incomplete';
      const base = raw && !raw.skipped ? row.get(raw) : null;
      if (!row.noRatio && k !== 'raw' && base) {
        const r = v / base;
        results.ratios[k] ??= {};
        results.ratios[k][row.name.trim()] = r;
        cell += ` (${r.toFixed(2)}×)`;
      }
      return cell;
    });
    lines.push(`| ${row.name.replace(/^ {2}/, '↳ ')} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function targets(results) {
  const s = results.servers;
  const g = s.gateway;
  const out = [];
  const check = (name, value, ok, detail) => out.push({ name, value, met: value == null ? null : ok(value), detail });
  if (!g || g.skipped || g.error) return out;
  for (const t of P.thr) {
    const v = g.throughput?.[t.subs]?.perSec;
    check(`deliveries/s @ ${t.subs} ≥ 0.9× raw`, v / s.raw?.throughput?.[t.subs]?.perSec, (r) => r >= 0.9);
    if (s['better-sse']?.throughput)
      check(`deliveries/s @ ${t.subs} ≥ 2× better-sse`, v / s['better-sse'].throughput[t.subs]?.perSec, (r) => r >= 2);
  }
  check('p99 latency ≤ 1.2× raw', g.latency?.p99Ms / s.raw?.latency?.p99Ms, (r) => r <= 1.2);
  const top = Math.max(...P.memLevels);
  check(
    `RSS per idle conn @ ${top} ≤ 1.3× raw`,
    g.memory?.perConnection[top]?.rssBytes / s.raw?.memory?.perConnection[top]?.rssBytes,
    (r) => r <= 1.3,
  );
  check(
    `heap per idle conn @ ${top} ≤ 1.3× raw`,
    g.memory?.perConnection[top]?.heapBytes / s.raw?.memory?.perConnection[top]?.heapBytes,
    (r) => r <= 1.3,
  );
  const ex = s['raw-express']?.memory?.perConnection[top];
  if (ex) {
    // Express gives every request its own object shapes; this is the gateway's own share on top of that.
    check(
      `RSS per idle conn @ ${top} ≤ 1.3× raw in Express`,
      g.memory?.perConnection[top]?.rssBytes / ex.rssBytes,
      (r) => r <= 1.3,
    );
    check(
      `heap per idle conn @ ${top} ≤ 1.3× raw in Express`,
      g.memory?.perConnection[top]?.heapBytes / ex.heapBytes,
      (r) => r <= 1.3,
    );
  }
  check(`1-sub publish, ${P.unrelated} vs 0 unrelated ≤ 1.1×`, g.solo?.ratio, (r) => r <= 1.1);
  const f = s['gateway-filter'];
  if (f?.throughput) {
    const first = P.thr[0].subs;
    check(
      `filter + 5 ch cost ≤ 15% of deliveries/s @ ${first}`,
      1 - f.throughput[first]?.perSec / g.throughput[first]?.perSec,
      (r) => r <= 0.15,
    );
    // The load client runs near 100 % CPU at these rates, so deliveries/s partly measures the client;
    // the server's CPU per delivery is the gateway's own cost.
    for (const t of P.thr)
      check(
        `filter + 5 ch: server CPU per delivery @ ${t.subs} ≤ 1.15× unfiltered`,
        f.throughput[t.subs]?.serverCpuNsPerDelivery / g.throughput[t.subs]?.serverCpuNsPerDelivery,
        (r) => r <= 1.15,
      );
  }
  for (const t of out) if (Number.isNaN(t.value)) t.value = null;
  return out;
}

function targetTable(list) {
  const lines = ['| target | measured | met |', '|---|---:|:---:|'];
  for (const t of list) {
    const v =
      t.value == null ? 'n/a' : t.name.includes('% of') ? `${(100 * t.value).toFixed(1)}%` : `${t.value.toFixed(2)}×`;
    lines.push(`| ${t.name} | ${v} | ${t.met == null ? '?' : t.met ? 'yes' : 'no'} |`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------

async function main() {
  const only = option('only')?.split(',');
  const startedAt = new Date();
  const results = {
    date: startedAt.toISOString(),
    quick: QUICK,
    params: P,
    machine: {
      node: process.version,
      nproc: os.availableParallelism?.() ?? os.cpus().length,
      cpu: os.cpus()[0]?.model,
      memTotalGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
      loadavgAtStart: os.loadavg().map((x) => +x.toFixed(2)),
      platform: `${os.platform()} ${os.release()}`,
    },
    commit: (() => {
      try {
        return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
      } catch {
        return null;
      }
    })(),
    servers: {},
    notes: [],
  };

  // A private copy of dist/: other work in the tree may rebuild (and first delete) dist/ mid-run.
  const lib = libraryExports();
  let distDir = null;
  if (!lib.error) {
    distDir = join(here, 'results', `.dist-${process.pid}`);
    mkdirSync(join(here, 'results'), { recursive: true });
    cpSync(DIST, distDir, { recursive: true });
    results.dist = DIST;
  }

  let redis = null;
  const cleanup = async () => {
    cleaningUp = true;
    // Wait for the exits, so every child is reaped by us rather than left as a zombie.
    const exits = [...children].map(
      (c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', r))),
    );
    killAll();
    await Promise.race([Promise.all(exits), sleep(3000)]);
    if (distDir) rmSync(distDir, { recursive: true, force: true });
  };
  process.on('exit', () => {
    cleaningUp = true;
    killAll();
    if (distDir) rmSync(distDir, { recursive: true, force: true });
  });
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, async () => {
      log(`${sig}: stopping every child process`);
      await cleanup();
      process.exit(130);
    });
  }

  try {
    clients = [];
    for (let i = 0; i < CLIENTS; i++)
      clients.push(await new Peer(join(here, 'load-client.mjs'), [], `load-client#${i}`).ready);
    for (const c of clients) c.child.on('exit', () => (c.dead ??= new Error(`${c.label} died`)));

    for (const def of SERVERS) {
      if (only && def.key !== 'raw' && !only.includes(def.key)) continue;
      if (def.diagnostic && !only?.includes(def.key)) continue;
      const missing = (def.needs ?? []).filter((n) => typeof lib[n] !== 'function');
      if (missing.length > 0) {
        const why = lib.error
          ? `dist/ not loadable (${lib.error.split('\n')[0]}); run npm run build`
          : `dist/ does not export ${missing.join(', ')} yet`;
        results.servers[def.key] = { title: def.title, skipped: why };
        results.notes.push(`${def.title}: skipped, ${why}`);
        log(`${def.title}: SKIPPED, ${why}`);
        continue;
      }
      let ctx = { distDir, results };
      if (def.redis) {
        redis ??= await startRedis();
        if (redis.error) {
          results.servers[def.key] = { title: def.title, skipped: redis.error };
          results.notes.push(`${def.title}: skipped, ${redis.error}`);
          log(`${def.title}: SKIPPED, ${redis.error}`);
          continue;
        }
        ctx = { ...ctx, redisUrl: redis.url };
      }
      results.servers[def.key] = await benchServer(def, ctx);
    }
  } catch (e) {
    log(`harness failure: ${e?.stack ?? e}`);
    await cleanup();
    process.exit(1);
  }

  results.machine.loadavgAtEnd = os.loadavg().map((x) => +x.toFixed(2));
  results.durationS = +((Date.now() - startedAt.getTime()) / 1000).toFixed(1);
  const table = buildTable(results);
  results.targets = targets(results);
  results.table = table;
  for (const f of Object.values(results.servers)) if (f.error) results.notes.push(`${f.title}: ${f.error}`);

  const L = P.latency;
  console.log(`\n## sse-gateway bench — ${results.date}${QUICK ? ' (--quick)' : ''}\n`);
  console.log(
    `node ${results.machine.node}, ${results.machine.nproc} cores (${results.machine.cpu}), load avg at start ${results.machine.loadavgAtStart.join(' ')}, at end ${results.machine.loadavgAtEnd.join(' ')}; ${results.durationS} s\n`,
  );
  console.log(table);
  console.log(
    `\nRatios in parentheses are to (a) raw from this run. Latency: open loop at ${L.rate} events/s for ${L.seconds} s, stamped with the intended send time. Memory: after GC, minus the same server with 0 idle connections.`,
  );
  if (results.targets.length > 0)
    console.log(`\n### Targets (gateway on the memory bus)\n\n${targetTable(results.targets)}`);
  if (results.notes.length > 0) console.log(`\nNotes:\n${results.notes.map((n) => `- ${n}`).join('\n')}`);

  if (!flag('no-json')) {
    const dir = join(here, 'results');
    mkdirSync(dir, { recursive: true });
    const body = `${JSON.stringify(results, null, 2)}\n`;
    const file = join(dir, `${results.date.replace(/[:.]/g, '-')}${QUICK ? '-quick' : ''}.json`);
    writeFileSync(file, body);
    writeFileSync(join(dir, 'latest.json'), body);
    log(`wrote ${file} and bench/results/latest.json`);
  }

  // In Chromium, after the server table (each its own process and browser): the client with 50
  // subscriptions against a bare EventSource, cross-tab sharing, and the React bindings against useState.
  if (!flag('no-browser') && !only) {
    for (const script of ['browser-client.mjs', 'browser-tabs.mjs', 'react/run.mjs']) {
      try {
        execFileSync(process.execPath, [join(here, script), ...(QUICK ? ['--quick'] : [])], { stdio: 'inherit' });
      } catch (e) {
        log(`${script} failed: ${e?.message ?? e}`);
      }
    }
  }

  // A clean exit lets `BENCH_NODE_ARGS=--cpu-prof` write the clients' profiles too.
  await Promise.all(clients.map((c) => c.request('exit', {}, 3000).catch(() => {})));
  await sleep(300);
  await cleanup();
  process.exit(0);
}

main().catch(async (e) => {
  log(`harness failure: ${e?.stack ?? e}`);
  cleaningUp = true;
  killAll();
  await sleep(200);
  process.exit(1);
});
