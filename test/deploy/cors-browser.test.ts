/// <reference lib="dom" />
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RequestHandler } from 'express';
import express from 'express';
import type { Page } from 'playwright-core';
import { chromiumForSuite } from '../helpers/browser';
import { closeAll, onCleanup, startGateway } from '../helpers/gateway';
import { startServer } from '../helpers/server';

// Micro frontends on other origins: the shipped examples/deploy/cors.js (the `cors` package) in front of the
// gateway, the client from dist/client/index.mjs with `withCredentials`, in Debian's Chromium. The gateway is on
// 127.0.0.1:G; the allowed page on 127.0.0.1:A (another origin, the same site, so its SameSite=Lax session cookie
// goes along), the disallowed page on localhost:B.
const { corsForGateway } = require('../../examples/deploy/cors.js') as {
  corsForGateway: (origins: string[]) => RequestHandler;
};
const CLIENT = readFileSync(join(__dirname, '../../dist/client/index.mjs'), 'utf8');

const browser = chromiumForSuite();
afterEach(closeAll);

/** A page server: `/` loads the client from `/client.mjs` and hands `createSseClient` to the test. */
async function pageServer() {
  const script =
    "import { createSseClient } from '/client.mjs'; window.createSseClient = createSseClient; window.ready = true;";
  const app = express();
  app.get('/client.mjs', (_req, res) => {
    res.type('text/javascript').send(CLIENT);
  });
  app.get('/', (_req, res) => {
    res.type('html').send(`<!doctype html><meta charset="utf-8"><script type="module">${script}</script>`);
  });
  const server = await startServer(app);
  onCleanup(() => server.close());
  return Number(new URL(server.url).port);
}

async function setup() {
  const pagePort = await pageServer();
  const otherPort = await pageServer();
  const allowed = `http://127.0.0.1:${pagePort}`;
  const disallowed = `http://localhost:${otherPort}`;
  const preflights: string[] = [];
  const harness = await startGateway(
    { channels: ['logs'], authentication: true },
    {
      before: (app) => {
        app.use((req, _res, next) => {
          if (req.method === 'OPTIONS') preflights.push(`${req.path} ${req.get('access-control-request-headers')}`);
          next();
        });
        app.use(corsForGateway([allowed]));
        // The BFF's session: a cookie names the user.
        app.use((req, _res, next) => {
          const user = /(?:^|;\s*)session=(\w+)/.exec(req.headers.cookie ?? '')?.[1];
          (req as unknown as { user?: { id: string } }).user = user ? { id: user } : undefined;
          next();
        });
      },
    },
  );
  return { ...harness, allowed, disallowed, preflights, events: `${harness.url}/events` };
}

async function openPage(origin: string): Promise<Page> {
  const context = await browser().newContext();
  onCleanup(() => context.close());
  await context.addCookies([{ name: 'session', value: 'alice', url: 'http://127.0.0.1/', sameSite: 'Lax' }]);
  const page = await context.newPage();
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => (window as unknown as { ready: boolean }).ready);
  return page;
}

type ClientState = { received: string[]; errors: string[]; subscribed: number };

it('an allowed origin streams with withCredentials, changes its subscriptions (preflighted) and keeps receiving', async () => {
  const { gateway, allowed, preflights, events } = await setup();
  const page = await openPage(allowed);
  await page.evaluate((url) => {
    const w = window as unknown as ClientState & {
      client: unknown;
      createSseClient(options: object): { subscribe(c: string, l: (e: { data: string }) => void, h: object): void };
    };
    const { createSseClient } = w;
    w.received = [];
    w.errors = [];
    w.subscribed = 0;
    const client = createSseClient({ url, withCredentials: true, shareAcrossTabs: false });
    const handlers = {
      onSubscribed: () => w.subscribed++,
      onError: (error: { code: string }) => w.errors.push(error.code),
    };
    client.subscribe('logs:a', (e: { data: string }) => w.received.push(e.data), handlers);
    w.client = client;
  }, events);
  await page.waitForFunction(() => (window as unknown as ClientState).subscribed === 1);
  await gateway.publish('logs:a', 'a1');
  await page.waitForFunction(() => (window as unknown as ClientState).received.length === 1);

  // A second channel on the open stream: POST {path}/subscriptions with JSON and credentials, preflighted.
  await page.evaluate(() => {
    const w = window as unknown as ClientState & {
      client: { subscribe(c: string, l: (e: { data: string }) => void, h: object): void };
    };
    w.client.subscribe('logs:b', (e) => w.received.push(e.data), { onSubscribed: () => w.subscribed++ });
  });
  await page.waitForFunction(() => (window as unknown as ClientState).subscribed === 2);
  await gateway.publish('logs:b', 'b1');
  await gateway.publish('logs:a', 'a2');
  await page.waitForFunction(() => (window as unknown as ClientState).received.length === 3);
  const state = await page.evaluate(() => {
    const { received, errors } = window as unknown as ClientState;
    return { received, errors };
  });
  expect(state.received).toEqual(['a1', 'b1', 'a2']);
  expect(state.errors).toEqual([]);
  expect(gateway.stats().connections).toBe(1); // the change went over the open stream, no reconnect
  expect(preflights).toEqual(['/events/subscriptions content-type']);
});

it('a disallowed origin gets no Access-Control-Allow-* header and its page can read nothing', async () => {
  const { allowed, disallowed, events } = await setup();
  // The headers, as any client sees them.
  const answers = await Promise.all(
    [allowed, disallowed].map(async (origin) => {
      const preflight = await fetch(`${events}/subscriptions`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type,last-event-id',
        },
      });
      return [...preflight.headers.keys()].filter((name) => name.startsWith('access-control-')).sort();
    }),
  );
  expect(answers[0]).toEqual([
    'access-control-allow-credentials',
    'access-control-allow-headers',
    'access-control-allow-methods',
    'access-control-allow-origin',
    'access-control-max-age',
  ]);
  expect(answers[1]).toEqual([]);
  const allowedPreflight = await fetch(`${events}/subscriptions`, {
    method: 'OPTIONS',
    headers: { origin: allowed, 'access-control-request-method': 'POST' },
  });
  expect(allowedPreflight.headers.get('access-control-allow-origin')).toBe(allowed);
  expect(allowedPreflight.headers.get('access-control-allow-headers')).toBe('Content-Type,Last-Event-ID');

  const page = await openPage(disallowed);
  const outcome = await page.evaluate(async (url) => {
    const source = new EventSource(`${url}?channels=logs:a`, { withCredentials: true });
    const messages: string[] = [];
    source.addEventListener('sse:ready', (e) => messages.push((e as MessageEvent).data));
    const stream = await new Promise<string>((resolve) => {
      source.onerror = () => resolve(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
      source.onopen = () => resolve('open');
    });
    source.close();
    const read = await fetch(`${url}?channels=logs:a`, { credentials: 'include' }).then(
      (response) => `read ${response.status}`,
      (error: Error) => error.name,
    );
    return { stream, messages, read };
  }, events);
  expect(outcome).toEqual({ stream: 'closed', messages: [], read: 'TypeError' });
});
