/// <reference lib="dom" />
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express from 'express';
import type { BrowserContext, Page } from 'playwright-core';

// Pages that load the built browser client (dist/client/index.mjs) from the test gateway's own origin and
// expose a small driver on `window.tab`, so a test can subscribe, unsubscribe and read what a tab received.
// A page keeps its record in sessionStorage when hidden and takes it back when loaded again, so what a tab
// received is read across a reload.
const clientDir = join(__dirname, '../../dist/client');

/** What a tab page records. */
export interface TabRecord {
  /** The events, in arrival order; `at` is when (ms since the epoch, sub-millisecond). */
  received: { id: string; channel: string; data: unknown; at: number }[];
  statuses: string[];
  /** Codes of the errors that came with a status change. */
  statusErrors: string[];
  errors: { channel: string; code: string }[];
  /** `channel reason` per onReset. */
  resets: string[];
  subscribed: string[];
  /** How many times the page was loaded (1, plus one per reload). */
  loads: number;
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>tab</title><script type="module">
import { createSseClient } from '/client/index.mjs';
const kept = sessionStorage.getItem('tab-record');
const record = kept ? JSON.parse(kept) : { received: [], statuses: [], statusErrors: [], errors: [], resets: [], subscribed: [], loads: 0 };
record.loads += 1;
// Registered before any client's own pagehide listener: nothing is delivered between the two.
addEventListener('pagehide', () => sessionStorage.setItem('tab-record', JSON.stringify(record)));
const offs = new Map();
window.tab = {
  record,
  client: undefined,
  start(options) {
    this.client = createSseClient({ url: '/events', ...options });
    this.client.onStatus((status, error) => {
      record.statuses.push(status);
      if (error) record.statusErrors.push(error.code);
    });
  },
  sub(...channels) {
    for (const channel of channels) {
      const off = this.client.subscribe(channel, (e) =>
        record.received.push({ id: e.id, channel: e.channel, data: e.data, at: performance.timeOrigin + performance.now() }), {
        onSubscribed: () => record.subscribed.push(channel),
        onError: (error) => record.errors.push({ channel, code: error.code }),
        onReset: (reason) => record.resets.push(channel + ' ' + reason),
      });
      offs.set(channel, off);
    }
  },
  unsub(channel) {
    offs.get(channel)?.();
    offs.delete(channel);
  },
  status() {
    return this.client.status;
  },
  close() {
    this.client.close();
  },
};
window.tabReady = true;
</script>`;

/** Serve the tab page at `/tab` and the built client at `/client/`; pass as `startGateway`'s `before`. */
export function serveTabPages(app: express.Express): void {
  if (!existsSync(join(clientDir, 'index.mjs')))
    throw new Error('dist/client/index.mjs is missing: run `node scripts/build.mjs` first (npm test does).');
  app.get('/tab', (_req, res) => {
    res.type('html').send(PAGE);
  });
  app.use('/client', express.static(clientDir));
}

/** The driver a tab page exposes. */
interface TabDriver {
  record: TabRecord;
  start(options: Record<string, unknown>): void;
  sub(...channels: string[]): void;
  unsub(channel: string): void;
  status(): string;
  close(): void;
}

/** One tab, driven from the test. */
export class Tab {
  constructor(readonly page: Page) {}

  /** Create the tab's client with `options` (added to `{ url: '/events' }`). */
  start(options: Record<string, unknown> = {}): Promise<void> {
    return this.page.evaluate((o) => (window as unknown as { tab: TabDriver }).tab.start(o), options);
  }

  /** Subscribe to `channels`, all in one task (as the components of one render would). */
  sub(...channels: string[]): Promise<void> {
    return this.page.evaluate((cs) => (window as unknown as { tab: TabDriver }).tab.sub(...cs), channels);
  }

  unsub(channel: string): Promise<void> {
    return this.page.evaluate((c) => (window as unknown as { tab: TabDriver }).tab.unsub(c), channel);
  }

  close(): Promise<void> {
    return this.page.evaluate(() => (window as unknown as { tab: TabDriver }).tab.close());
  }

  record(): Promise<TabRecord> {
    return this.page.evaluate(() => (window as unknown as { tab: TabDriver }).tab.record);
  }

  status(): Promise<string> {
    return this.page.evaluate(() => (window as unknown as { tab: TabDriver }).tab.status());
  }

  /** Reload the page (its record is kept; the test starts a client again). */
  async reload(): Promise<void> {
    await this.page.reload();
    await this.page.waitForFunction(() => (window as unknown as { tabReady?: boolean }).tabReady === true);
  }

  /** Wait until the client's status is `status`. */
  async waitForStatus(status: string, timeout = 10_000): Promise<void> {
    await this.page.waitForFunction((s) => (window as unknown as { tab: TabDriver }).tab.status() === s, status, {
      timeout,
    });
  }

  /** Wait until an event with `data` arrived. */
  async waitForData(data: unknown, timeout = 10_000): Promise<void> {
    await this.page.waitForFunction(
      (d) => (window as unknown as { tab: TabDriver }).tab.record.received.some((e) => e.data === d),
      data,
      { timeout, polling: 20 },
    );
  }

  /** Wait until `channel` was confirmed `count` times (onSubscribed). */
  async waitForSubscribed(channel: string, count = 1, timeout = 10_000): Promise<void> {
    await this.page.waitForFunction(
      ([c, n]) =>
        (window as unknown as { tab: TabDriver }).tab.record.subscribed.filter((s) => s === c).length >= (n as number),
      [channel, count] as const,
      { timeout },
    );
  }
}

/** Open a tab page of `url` in `context` (its script loaded, no client yet). */
export async function openTab(context: BrowserContext, url: string): Promise<Tab> {
  const page = await context.newPage();
  await page.goto(`${url}/tab`);
  await page.waitForFunction(() => (window as unknown as { tabReady?: boolean }).tabReady === true);
  return new Tab(page);
}
