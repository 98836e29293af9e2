#!/usr/bin/env node
// Cross-tab sharing in Debian's Chromium: what a follower tab adds over the leader tab that holds the
// stream (BroadcastChannel hop and the follower's routing), per event, p50/p99. The gateway (from dist/)
// serves a page that loads dist/client/index.mjs; every tab subscribes to one channel; events are
// published open-loop at a fixed rate and every tab stamps each arrival with performance.timeOrigin +
// performance.now() (one clock for every page of the browser, and for this process).
//
// usage: node bench/browser-tabs.mjs [--quick] [--json=FILE]
// Run by `npm run bench` after the server table (skip there with --no-browser).
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
const log = (...a) => console.error('[bench:tabs]', ...a);

// Tab counts and the open-loop rate; the first second of each run is warm-up and not counted.
const P = QUICK ? { tabs: [2, 8], rate: 100, seconds: 3 } : { tabs: [2, 4, 8], rate: 200, seconds: 10 };

const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
import { createSseClient } from '/client/index.mjs';
window.arrivals = [];
window.start = () => {
  window.client = createSseClient({ url: '/events' });
  return new Promise((resolve) => {
    window.client.subscribe('bench:room', (e) => window.arrivals.push([e.data.n, performance.timeOrigin + performance.now()]), {
      onSubscribed: resolve,
    });
  });
};
window.ready = true;
</script>`;

function quantile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const summary = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return { n: sorted.length, p50: +quantile(sorted, 0.5).toFixed(2), p99: +quantile(sorted, 0.99).toFixed(2) };
};

async function runOnce(browser, url, gateway, tabs) {
  const context = await browser.newContext();
  try {
    const pages = [];
    for (let i = 0; i < tabs; i++) {
      const page = await context.newPage();
      await page.goto(`${url}/tab`);
      await page.waitForFunction(() => window.ready === true);
      pages.push(page);
    }
    // One after the other: the first page takes the lock and leads; the others follow.
    for (const page of pages) await page.evaluate(() => window.start());
    if (gateway.stats().connections !== 1) throw new Error(`expected one stream, got ${gateway.stats().connections}`);

    const sentAt = new Map();
    const total = P.rate * P.seconds;
    const warmup = P.rate;
    const t0 = performance.now();
    for (let n = 1; n <= total; n++) {
      const due = t0 + (n * 1000) / P.rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      // Open loop: stamped with the intended send time, so a stall counts against the event that waited.
      sentAt.set(n, performance.timeOrigin + due);
      gateway.publish('bench:room', { n, pad: 'x'.repeat(160) });
    }
    for (const page of pages)
      await page.waitForFunction((last) => window.arrivals.at(-1)?.[0] === last, total, { timeout: 30_000 });
    const arrivals = await Promise.all(pages.map((page) => page.evaluate(() => window.arrivals)));
    const leaderAt = new Map(arrivals[0]);
    const endToEnd = (list) => list.filter(([n]) => n > warmup).map(([n, at]) => at - sentAt.get(n));
    const added = arrivals
      .slice(1)
      .flatMap((list) => list.filter(([n]) => n > warmup).map(([n, at]) => at - leaderAt.get(n)));
    return {
      tabs,
      leader: summary(endToEnd(arrivals[0])),
      followers: summary(arrivals.slice(1).flatMap(endToEnd)),
      added: summary(added),
    };
  } finally {
    await context.close();
  }
}

async function main() {
  if (!existsSync(CHROMIUM)) {
    log(`skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`);
    return;
  }
  if (!existsSync(join(root, 'dist/client/index.mjs'))) throw new Error('dist/client/index.mjs missing: npm run build');
  const { chromium } = require('playwright-core');
  const express = require('express');
  const { createMemoryBus, sseMiddleware } = require(join(root, 'dist/index.js'));
  const gateway = sseMiddleware({ channels: ['bench'], bus: createMemoryBus(), heartbeatMs: 25_000 });
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
  const runs = [];
  try {
    for (const tabs of P.tabs) {
      log(`${tabs} tabs, ${P.rate} events/s for ${P.seconds} s`);
      runs.push(await runOnce(browser, url, gateway, tabs));
    }
  } finally {
    await browser.close();
    await gateway.close();
    server.closeAllConnections?.();
    await new Promise((resolve) => server.close(resolve));
  }
  console.log(`\n### Cross-tab sharing in Chromium (${P.rate} events/s, ${P.seconds} s, first second not counted)\n`);
  console.log(
    '| tabs | publish → leader p50 / p99 (ms) | publish → follower p50 / p99 (ms) | follower − leader p50 / p99 (ms) |',
  );
  console.log('| ---: | ---: | ---: | ---: |');
  for (const r of runs)
    console.log(
      `| ${r.tabs} | ${r.leader.p50} / ${r.leader.p99} | ${r.followers.p50} / ${r.followers.p99} | ${r.added.p50} / ${r.added.p99} |`,
    );
  const out = jsonFile ?? join(here, 'results', 'browser-tabs.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), quick: QUICK, params: P, runs }, null, 2)}\n`);
  log(`wrote ${out}`);
}

main().then(
  () => process.exit(0),
  (error) => {
    log(`failed: ${error?.stack ?? error}`);
    process.exit(1);
  },
);
