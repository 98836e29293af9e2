#!/usr/bin/env node
// The browser client's cost in Debian's Chromium: one tab, one client with 50 subscriptions (one per
// channel), events published open-loop round-robin over the 50 channels at rising rates. For each rate:
// what the page received per second, publish → listener latency p50/p99, and the page's event-loop delay
// p99 (a 10 ms interval timer's lateness: how busy the main thread is). The same page with a bare
// EventSource (JSON.parse per event, no routing) is the floor, so "client" minus "raw" is what the client
// adds. The gateway runs in this process from dist/, so the highest rates also measure the publisher.
//
// usage: node bench/browser-client.mjs [--quick] [--json=FILE]      (needs `npm run build` first)
// Each page first takes one second at 1000 events/s that is not counted.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const require = createRequire(import.meta.url);
const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const jsonFile = argv.find((a) => a.startsWith('--json='))?.slice('--json='.length);
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const log = (...a) => console.error('[bench:client]', ...a);

const CHANNELS = Array.from({ length: 50 }, (_, i) => `bench:c${i}`);
const P = QUICK ? { rates: [1000, 4000], seconds: 2 } : { rates: [1000, 2000, 4000, 8000, 16000], seconds: 4 };

const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
import { createSseClient } from '/client/index.mjs';
const channels = ${JSON.stringify(CHANNELS)};
window.lags = [];
window.loopDelays = [];
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  window.loopDelays.push(now - last - 10);
  last = now;
}, 10);
const arrive = (data) => window.lags.push(performance.timeOrigin + performance.now() - data.t);
window.reset = () => {
  window.lags = [];
  window.loopDelays = [];
};
window.start = (mode) => {
  if (mode === 'raw') {
    const source = new EventSource('/events?channels=' + channels.join(','));
    source.addEventListener('bench', (e) => arrive(JSON.parse(e.data).data));
    return new Promise((resolve) => source.addEventListener('sse:ready', () => resolve()));
  }
  const client = createSseClient({ url: '/events', shareAcrossTabs: false });
  return Promise.all(
    channels.map((channel) => new Promise((resolve) => client.subscribe(channel, (e) => arrive(e.data), { onSubscribed: resolve }))),
  );
};
window.ready = true;
</script>`;

function quantile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
const p = (values, q) =>
  +quantile(
    [...values].sort((a, b) => a - b),
    q,
  ).toFixed(1);

async function publishOpenLoop(gateway, rate, seconds) {
  const total = rate * seconds;
  const t0 = performance.now();
  let n = 0;
  while (n < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
    for (; n < due; n++) {
      // Stamped with the intended send time: a stall of the publisher counts against the events that waited.
      const t = performance.timeOrigin + t0 + (n * 1000) / rate;
      gateway.publish(CHANNELS[n % CHANNELS.length], { n, t, pad: 'x'.repeat(120) });
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return total;
}

async function runMode(browser, url, gateway, mode) {
  const context = await browser.newContext();
  const rows = [];
  try {
    const page = await context.newPage();
    await page.goto(`${url}/tab`);
    await page.waitForFunction(() => window.ready === true);
    await page.evaluate((m) => window.start(m), mode);
    // Warm-up (JIT, buffers), not counted.
    const warm = await publishOpenLoop(gateway, 1000, 1);
    await page.waitForFunction((count) => window.lags.length >= count, warm, { timeout: 60_000, polling: 50 });
    for (const rate of P.rates) {
      await page.evaluate(() => window.reset());
      const started = performance.now();
      const total = await publishOpenLoop(gateway, rate, P.seconds);
      const done = await page
        .waitForFunction((count) => window.lags.length >= count, total, { timeout: 60_000, polling: 50 })
        .then(() => true)
        .catch(() => false);
      const elapsed = (performance.now() - started) / 1000;
      const { lags, loopDelays } = await page.evaluate(() => ({ lags: window.lags, loopDelays: window.loopDelays }));
      rows.push({
        mode,
        rate,
        received: lags.length,
        perSecond: Math.round(lags.length / elapsed),
        complete: done,
        lagP50: p(lags, 0.5),
        lagP99: p(lags, 0.99),
        loopP99: p(loopDelays, 0.99),
      });
      log(JSON.stringify(rows.at(-1)));
    }
  } finally {
    await context.close();
  }
  return rows;
}

async function main() {
  if (!existsSync(CHROMIUM)) {
    log(`skipped: no Chromium at ${CHROMIUM}`);
    return;
  }
  if (!existsSync(join(root, 'dist/client/index.mjs'))) throw new Error('dist/client/index.mjs missing: npm run build');
  const { chromium } = require('playwright-core');
  const express = require('express');
  const { createMemoryBus, sseMiddleware } = require(join(root, 'dist/index.js'));
  const gateway = sseMiddleware({
    channels: ['bench'],
    bus: createMemoryBus(),
    limits: { maxBufferedBytes: 64 << 20 },
  });
  const app = express();
  app.get('/tab', (_req, res) => res.type('html').send(PAGE));
  app.use('/client', express.static(join(root, 'dist/client')));
  app.use(gateway);
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${server.address().port}`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  const rows = [];
  try {
    for (const mode of ['raw', 'client']) rows.push(...(await runMode(browser, url, gateway, mode)));
  } finally {
    await browser.close();
    await gateway.close();
    server.closeAllConnections?.();
    await new Promise((resolve) => server.close(resolve));
  }
  console.log(`\n### The browser client in Chromium: one tab, 50 subscriptions (${P.seconds} s per rate)\n`);
  console.log(
    '| offered events/s | page | received/s | all arrived | publish → listener p50 / p99 (ms) | event-loop delay p99 (ms) |',
  );
  console.log('| ---: | :--- | ---: | :---: | ---: | ---: |');
  for (const rate of P.rates) {
    for (const r of rows.filter((row) => row.rate === rate)) {
      console.log(
        `| ${rate} | ${r.mode === 'raw' ? 'bare EventSource' : 'client'} | ${r.perSecond} | ${r.complete ? 'yes' : 'no'} | ${r.lagP50} / ${r.lagP99} | ${r.loopP99} |`,
      );
    }
  }
  const out = jsonFile ?? join(here, 'results', 'browser-client.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), quick: QUICK, params: P, rows }, null, 2)}\n`);
  log(`wrote ${out}`);
}

main().then(
  () => process.exit(0),
  (error) => {
    log(`failed: ${error?.stack ?? error}`);
    process.exit(1);
  },
);
