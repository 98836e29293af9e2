#!/usr/bin/env node
// React bench (`node scripts/build.mjs && node bench/react/run.mjs`): 2,000 events/s spread over 10 mounted
// components in Debian's Chromium, for the bindings and for a hand-written single EventSource + useState
// baseline in the same run: renders per second, main-thread and script time per event (CDP TaskDuration,
// ScriptDuration).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import express from 'express';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { createMemoryBus, sseMiddleware } = require(join(here, '../../dist/index.js'));
const RATE = Number(process.env.RATE ?? 2000);
const SECONDS = Number(process.env.SECONDS ?? 5);

const script = (
  await build({
    entryPoints: [join(here, 'pages.jsx')],
    bundle: true,
    write: false,
    minify: true,
    format: 'iife',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  })
).outputFiles[0].text;

const app = express();
const gateway = sseMiddleware({ channels: ['logs'], authentication: () => ({ id: 'bench' }), bus: createMemoryBus() });
app.use(gateway);
app.get('/', (_req, res) =>
  res.type('html').send('<!doctype html><div id="root"></div><script src="/app.js"></script>'),
);
app.get('/app.js', (_req, res) => res.type('js').send(script));
const server = await new Promise((resolve) => {
  const s = app.listen(0, '127.0.0.1', () => resolve(s));
});
const url = `http://127.0.0.1:${server.address().port}/`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
});

async function measure(pageName) {
  const page = await browser.newPage();
  await page.goto(`${url}?page=${pageName}`);
  await page.waitForFunction(() => document.querySelectorAll('ol').length === 10);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const metrics = async () => {
    const all = (await cdp.send('Performance.getMetrics')).metrics;
    const value = (name) => all.find((m) => m.name === name).value;
    return { task: value('TaskDuration'), script: value('ScriptDuration') };
  };
  const start = { ...(await metrics()), ...(await page.evaluate(() => ({ ...window.bench }))) };
  // 10 ms batches of RATE/100 events, round-robin over the channels.
  let n = 0;
  const began = Date.now();
  while (Date.now() - began < SECONDS * 1000) {
    for (let i = 0; i < RATE / 100; i++, n++) gateway.publish(`logs:bench:c${n % 10}`, { n });
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const elapsed = (Date.now() - began) / 1000;
  await page.waitForFunction((total) => window.bench.events >= total, n + start.events, { timeout: 30_000 });
  const end = { ...(await metrics()), ...(await page.evaluate(() => ({ ...window.bench }))) };
  await page.close();
  const events = end.events - start.events;
  return {
    page: pageName,
    published: n,
    eventsPerSecond: Math.round(events / elapsed),
    rendersPerSecond: Math.round((end.renders - start.renders) / elapsed),
    mainThreadMsPerEvent: Number((((end.task - start.task) * 1000) / events).toFixed(4)),
    scriptMsPerEvent: Number((((end.script - start.script) * 1000) / events).toFixed(4)),
    mainThreadShare: Number(((end.task - start.task) / elapsed).toFixed(3)),
  };
}

const results = [];
for (const name of ['baseline', 'bindings', 'baseline', 'bindings']) results.push(await measure(name));
console.table(results);
await browser.close();
await gateway.close();
server.close();
