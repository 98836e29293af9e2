#!/usr/bin/env node
// Events/s into a gateway: `gateway.publish()` in-process, against `POST {path}/publish` one event per request
// and 100 per request (a batch), all on the built package (run `node scripts/build.mjs` first). The HTTP
// scenarios run their client in this process and the gateway in a child, so each has a core of its own.
// Usage: node bench/publish-api.mjs [--events=N]
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const TOKEN = 'bench-publisher-token-0123456789';
const N = Number(process.argv.find((a) => a.startsWith('--events='))?.split('=')[1] ?? 20_000);

function gatewayOptions(lib) {
  return {
    channels: ['logs'],
    bus: lib.createMemoryBus(),
    publishers: { bench: { token: TOKEN, channels: ['logs:*'] } },
  };
}

if (process.argv[2] === '--serve') {
  const express = require('express');
  const lib = require(join(here, '..', 'dist', 'index.js'));
  const app = express();
  app.use(lib.sseMiddleware(gatewayOptions(lib)));
  const server = app.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
} else {
  const rate = (count, ms) => Math.round((count / ms) * 1000);
  const lib = require(join(here, '..', 'dist', 'index.js'));
  const gateway = lib.sseMiddleware(gatewayOptions(lib));
  let start = performance.now();
  for (let i = 0; i < N; i++) await gateway.publish('logs:bench', { i });
  const inProcess = rate(N, performance.now() - start);
  await gateway.close();

  const child = fork(join(here, 'publish-api.mjs'), ['--serve']);
  const { port } = await new Promise((resolve) => child.once('message', resolve));
  const url = `http://127.0.0.1:${port}/events/publish`;
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  const post = async (body) => {
    const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
    if (res.status !== 201) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
  };
  const run = async (requests, concurrency, body) => {
    let next = 0;
    const worker = async () => {
      while (next < requests) {
        next++;
        await post(body(next));
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  };
  const singles = Math.min(N, 5000);
  await run(200, 8, (i) => ({ channel: 'logs:bench', data: { i } })); // warm-up
  start = performance.now();
  await run(singles, 8, (i) => ({ channel: 'logs:bench', data: { i } }));
  const single = rate(singles, performance.now() - start);
  const batch = { events: Array.from({ length: 100 }, (_, i) => ({ channel: 'logs:bench', data: { i } })) };
  start = performance.now();
  await run(N / 100, 4, () => batch);
  const batched = rate(N, performance.now() - start);
  child.kill();
  console.log('| path | events/s |\n|---|---|');
  console.log(`| gateway.publish() in-process | ${inProcess} |`);
  console.log(`| POST {path}/publish, 1 event per request (8 concurrent) | ${single} |`);
  console.log(`| POST {path}/publish, 100 per request (4 concurrent) | ${batched} |`);
}
