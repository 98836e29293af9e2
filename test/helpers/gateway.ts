import express from 'express';
import type { Principal, SseGateway, SseOptions } from '../../src';
import { createMemoryBus, sseMiddleware } from '../../src';
import { startServer, type TestServer } from './server';
import { type OpenOptions, openStream, type SseStream } from './sse-client';

/** A gateway mounted on a real Express app on a free port. */
export interface GatewayHarness {
  readonly gateway: SseGateway;
  readonly server: TestServer;
  readonly url: string;
  /** Open `{url}/events?{query}` and wait for `sse:ready` (200) or the error body. */
  open(query: string, options?: OpenOptions): Promise<SseStream>;
}

const open: (() => Promise<void>)[] = [];

/** Close everything the test opened; call from afterEach. */
export async function closeAll(): Promise<void> {
  const closers = open.splice(0);
  await Promise.all(closers.map((close) => close()));
}

/** Register something to close after the test. */
export function onCleanup(close: () => Promise<void> | void): void {
  open.push(async () => {
    await close();
  });
}

/** Options of {@link startGateway}. */
export interface HarnessOptions {
  /** Runs before the gateway is mounted (auth middleware, compression, …). */
  before?: (app: express.Express) => void;
  /** The express module to use (express 4 or 5). */
  express?: typeof express;
}

/**
 * Start `sseMiddleware(options)` on a real app. A fresh memory bus is used unless `options` has a `bus`
 * key (even `undefined`, which selects the process-wide default).
 */
export async function startGateway(options: SseOptions, harness: HarnessOptions = {}): Promise<GatewayHarness> {
  const app = (harness.express ?? express)();
  harness.before?.(app);
  const gateway = sseMiddleware('bus' in options ? options : { ...options, bus: createMemoryBus() });
  app.use(gateway);
  const server = await startServer(app);
  onCleanup(async () => {
    await gateway.close();
    await server.close();
  });
  const base = `${server.url}${options.path ?? '/events'}`;
  return {
    gateway,
    server,
    url: server.url,
    async open(query, openOptions) {
      const stream = await openStream(`${base}?${query}`, openOptions);
      onCleanup(() => stream.close());
      return stream;
    },
  };
}

/** `authentication` that takes the principal id from the `x-user` header (none: anonymous, so 401). */
export function byHeader(req: express.Request): Principal | null {
  const id = req.get('x-user');
  return id ? { id } : null;
}

/** A logger that records instead of printing. */
export function recordingLogger(): { warn: jest.Mock; error: jest.Mock } {
  return { warn: jest.fn(), error: jest.fn() };
}

/** Resolve when `check()` is true, polling on the event loop (for server-side counters). */
export async function eventually(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
