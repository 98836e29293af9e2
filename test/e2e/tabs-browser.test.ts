/// <reference lib="dom" />
import type { SseEvent, SseGateway } from '../../src';
import { chromiumForSuite, contextForEachTest } from '../helpers/browser';
import { closeAll, eventually, startGateway } from '../helpers/gateway';
import { openTab, serveTabPages, type Tab } from '../helpers/tab-pages';

// Cross-tab sharing in Debian's Chromium: pages of one origin in one browser context share Web Locks and
// BroadcastChannel, as the tabs of one browser profile do, and over HTTP/1.1 they share six connections
// per host. The client is the built bundle (dist/client/index.mjs), served by the gateway's own app.
const browser = chromiumForSuite();
const context = contextForEachTest(browser);
afterEach(closeAll);

const OPTIONS = { channels: ['logs'], authentication: () => ({ id: 'alice' }) };

const topics = (gateway: SseGateway) => gateway.activeTopics().sort().join();

/** Poll the tabs until `check` holds for what they recorded (each poll is a round trip to every page). */
async function untilTabs(tabs: readonly Tab[], check: (records: Awaited<ReturnType<Tab['record']>>[]) => boolean) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const records = await Promise.all(tabs.map((t) => t.record()));
    if (check(records)) return records;
    if (Date.now() > deadline)
      throw new Error(`tabs never got there: ${JSON.stringify(records.map((r) => r.statuses))}`);
  }
}

it('eight tabs of one origin over HTTP/1.1 all get their events over ONE server stream', async () => {
  const { gateway, url } = await startGateway(OPTIONS, { before: serveTabPages });
  const tabs: Tab[] = [];
  for (let i = 0; i < 8; i++) tabs.push(await openTab(context(), url));
  for (const [i, tab] of tabs.entries()) {
    await tab.start();
    await tab.sub(`logs:tab${i}`);
    await tab.sub('logs:all');
  }
  await Promise.all(tabs.map((tab, i) => tab.waitForSubscribed(`logs:tab${i}`)));
  await Promise.all(tabs.map((tab) => tab.waitForSubscribed('logs:all')));
  expect(gateway.stats().connections).toBe(1);
  expect(gateway.activeTopics().sort()).toEqual([...tabs.map((_, i) => `logs:tab${i}`), 'logs:all'].sort());

  const all = await gateway.publish('logs:all', 'to everyone');
  const own: SseEvent[] = [];
  for (let i = 0; i < 8; i++) own.push(await gateway.publish(`logs:tab${i}`, `to tab ${i}`));
  const end = await gateway.publish('logs:all', 'end');
  await Promise.all(tabs.map((tab) => tab.waitForData('end')));
  for (const [i, tab] of tabs.entries()) {
    const { received, statuses } = await tab.record();
    expect(received.map(({ id, channel, data }) => ({ id, channel, data }))).toEqual([
      { id: all.id, channel: 'logs:all', data: 'to everyone' },
      { id: own[i]?.id, channel: `logs:tab${i}`, data: `to tab ${i}` },
      { id: end.id, channel: 'logs:all', data: 'end' },
    ]);
    expect(statuses.at(-1)).toBe('open');
  }
  expect(gateway.stats().connections).toBe(1);
}, 60_000);

it('without sharing, the seventh tab stalls: six streams per host, the seventh waits for one to close', async () => {
  const { gateway, url } = await startGateway(OPTIONS, { before: serveTabPages });
  // Every page is loaded first: with six streams open, not even a page could load from this host.
  const tabs: Tab[] = [];
  for (let i = 0; i < 7; i++) tabs.push(await openTab(context(), url));
  for (const tab of tabs) {
    await tab.start({ shareAcrossTabs: false });
    await tab.sub('logs:x');
  }
  await eventually(() => gateway.stats().connections === 6, 10_000, 'six streams');
  await gateway.publish('logs:x', 'ping');
  const records = await untilTabs(tabs, (rs) => rs.filter((r) => r.received.length === 1).length === 6);
  const stalled = records.findIndex((r) => r.received.length === 0);
  expect(await tabs[stalled]?.status()).toBe('connecting');
  expect(gateway.stats().connections).toBe(6);

  // It was queued behind the others, not broken: one tab closes and the seventh connects.
  await tabs[(stalled + 1) % 7]?.page.close();
  await tabs[stalled]?.waitForStatus('open');
}, 60_000);

it('the leader tab closes, then the next one crashes, while events flow: no tab loses or repeats one', async () => {
  const { gateway, url } = await startGateway(OPTIONS, { before: serveTabPages });
  const tabs: Tab[] = [];
  for (let i = 0; i < 4; i++) tabs.push(await openTab(context(), url));
  // Started one after the other, so the first leads and the others queue for the lock in order.
  for (const tab of tabs) {
    await tab.start();
    await tab.sub('logs:feed');
    await tab.waitForSubscribed('logs:feed');
  }
  // A channel of the last tab alone: each new leader must open its stream with it, not learn of it later.
  await tabs[3]?.sub('logs:tail');
  await tabs[3]?.waitForSubscribed('logs:tail');
  expect(gateway.stats().connections).toBe(1);

  let n = 0;
  const published: Promise<SseEvent>[] = [];
  const sentAt = new Map<number, number>();
  const timer = setInterval(() => {
    sentAt.set(++n, performance.timeOrigin + performance.now());
    published.push(gateway.publish(n % 2 === 0 ? 'logs:tail' : 'logs:feed', n));
  }, 10);
  let closedAt = 0;
  let crashedAt = 0;
  try {
    const [, second, , fourth] = tabs as [Tab, Tab, Tab, Tab];
    await fourth.waitForData(20);

    closedAt = n;
    await tabs[0]?.page.close();
    await fourth.waitForData(closedAt + 20);

    // A crash: the renderer dies without running a line of the page's code.
    crashedAt = n;
    const cdp = await context().newCDPSession(second.page);
    const crashed = new Promise((resolve) => second.page.once('crash', resolve));
    cdp.send('Page.crash').catch(() => {});
    await crashed;
    await fourth.waitForData(crashedAt + 20);
  } finally {
    clearInterval(timer);
  }
  // The longest an event waited around each takeover (published at 100/s), for the report.
  const { received: seen } = await (tabs[3] as Tab).record();
  const wait = (from: number) =>
    Math.max(
      ...seen
        .filter((e) => Math.abs(Number(e.data) - from) <= 20)
        .map((e) => e.at - (sentAt.get(Number(e.data)) ?? e.at)),
    );
  const waits = seen.map((e) => e.at - (sentAt.get(Number(e.data)) ?? e.at)).sort((a, b) => a - b);
  console.log(
    `event waits: median ${waits[waits.length >> 1]?.toFixed(1)} ms; longest ${wait(closedAt).toFixed(0)} ms around the close, ${wait(crashedAt).toFixed(0)} ms around the crash`,
  );
  const events = await Promise.all(published);
  events.push(await gateway.publish('logs:feed', 'end'));
  const [third, fourth] = tabs.slice(2) as [Tab, Tab];
  for (const [tab, expected] of [
    [third, events.filter((e) => e.channel === 'logs:feed')],
    [fourth, events],
  ] as const) {
    await tab.waitForData('end');
    const { received } = await tab.record();
    expect(received.map((e) => e.data)).toEqual(expected.map((e) => e.data));
    expect(received.map((e) => e.id)).toEqual(expected.map((e) => e.id));
  }
  await eventually(() => gateway.stats().connections === 1, 10_000, 'one stream left');
}, 90_000);

it("followers' subscriptions change the leader's stream; a crashed follower's channels leave it", async () => {
  const { gateway, url } = await startGateway(OPTIONS, { before: serveTabPages });
  const [leader, follower, doomed] = [
    await openTab(context(), url),
    await openTab(context(), url),
    await openTab(context(), url),
  ];
  await leader.start();
  await leader.sub('logs:a');
  await leader.waitForSubscribed('logs:a');
  await follower.start();
  await doomed.start();

  await follower.sub('logs:b');
  await follower.waitForSubscribed('logs:b');
  expect(topics(gateway)).toBe('logs:a,logs:b');
  await gateway.publish('logs:b', 'b1');
  await follower.waitForData('b1');

  await follower.unsub('logs:b');
  // The leader changes its stream over the subscription route (or by reconnecting where there is none).
  await eventually(() => topics(gateway) === 'logs:a', 10_000, 'logs:b to leave the stream');

  await doomed.sub('logs:c:*');
  await doomed.waitForSubscribed('logs:c:*');
  expect(topics(gateway)).toBe('logs:a,logs:c:*');
  // The follower's own lock comes free when its renderer dies: the leader drops its channels.
  const cdp = await context().newCDPSession(doomed.page);
  const crashed = new Promise((resolve) => doomed.page.once('crash', resolve));
  cdp.send('Page.crash').catch(() => {});
  await crashed;
  await eventually(() => topics(gateway) === 'logs:a', 10_000, 'logs:c:* to leave the stream');

  // close() on a follower takes its channels off the stream.
  await follower.sub('logs:d');
  await follower.waitForSubscribed('logs:d');
  await follower.close();
  await eventually(() => topics(gateway) === 'logs:a', 10_000, 'logs:d to leave the stream');

  await gateway.publish('logs:a', 'a1');
  await leader.waitForData('a1');
  expect((await follower.record()).received.map((e) => e.data)).toEqual(['b1']);
  expect(await follower.status()).toBe('closed');
  expect(gateway.stats().connections).toBe(1);
}, 60_000);

it("a channel refused to a follower fails that follower's subscription alone; the leader's close() hands over", async () => {
  const { gateway, url } = await startGateway(
    { ...OPTIONS, authorize: (_principal, channel) => channel !== 'logs:secret' },
    { before: serveTabPages },
  );
  const [leader, follower] = [await openTab(context(), url), await openTab(context(), url)];
  await leader.start();
  await leader.sub('logs:a');
  await leader.waitForSubscribed('logs:a');
  await follower.start();
  await follower.sub('logs:b');
  await follower.waitForSubscribed('logs:b');
  await follower.sub('logs:secret');
  await follower.page.waitForFunction(
    () => (window as unknown as { tab: { record: { errors: unknown[] } } }).tab.record.errors.length === 1,
  );
  expect((await follower.record()).errors).toEqual([{ channel: 'logs:secret', code: 'ERR_SSE_FORBIDDEN_CHANNEL' }]);
  await eventually(() => topics(gateway) === 'logs:a,logs:b', 10_000, 'the stream without logs:secret');
  await gateway.publish('logs:a', 'a1');
  await gateway.publish('logs:b', 'b1');
  await leader.waitForData('a1');
  await follower.waitForData('b1');
  expect((await leader.record()).errors).toEqual([]);
  expect(await follower.status()).toBe('open');

  // close() on the leader: the follower takes the stream over at once, with its channel and nothing lost.
  await leader.close();
  await gateway.publish('logs:b', 'b2');
  await follower.waitForData('b2');
  await eventually(() => topics(gateway) === 'logs:b' && gateway.stats().connections === 1, 10_000, 'the new stream');
  expect((await follower.record()).received.map((e) => e.data)).toEqual(['b1', 'b2']);
  expect(await leader.status()).toBe('closed');
}, 60_000);

it('401 stops every tab with ERR_SSE_UNAUTHENTICATED; a new subscription in a follower starts the stream over', async () => {
  let signedIn = true;
  const { gateway, url } = await startGateway(
    { ...OPTIONS, authentication: () => (signedIn ? { id: 'alice' } : null) },
    { before: serveTabPages },
  );
  const [leader, follower] = [await openTab(context(), url), await openTab(context(), url)];
  await leader.start();
  await leader.sub('logs:a');
  await leader.waitForSubscribed('logs:a');
  await follower.start();
  await follower.sub('logs:b');
  await follower.waitForSubscribed('logs:b');

  signedIn = false;
  gateway.disconnect('alice');
  await Promise.all([leader.waitForStatus('closed'), follower.waitForStatus('closed')]);
  for (const tab of [leader, follower]) expect((await tab.record()).statusErrors).toContain('ERR_SSE_UNAUTHENTICATED');
  expect(gateway.stats().connections).toBe(0);

  signedIn = true;
  await follower.sub('logs:c');
  await Promise.all([leader.waitForStatus('open'), follower.waitForStatus('open')]);
  await follower.waitForSubscribed('logs:c');
  await gateway.publish('logs:a', 'a1');
  await gateway.publish('logs:c', 'c1');
  await leader.waitForData('a1');
  await follower.waitForData('c1');
  expect(gateway.stats().connections).toBe(1);
}, 60_000);

it('a leader whose page is freezing hands the stream over at once; the stale post of a leader is dropped', async () => {
  // Headless Chromium does not freeze a visible page (CDP Page.setWebLifecycleState leaves it running),
  // so the page is told it freezes by the lifecycle events themselves; its stream must move to another tab.
  const resumedFrom: (string | undefined)[] = [];
  const { gateway, url } = await startGateway(OPTIONS, {
    before: (app) => {
      serveTabPages(app);
      app.get('/events', (req, _res, next) => {
        resumedFrom.push(req.query.lastEventId as string | undefined);
        next();
      });
    },
  });
  const tabs: Tab[] = [];
  for (let i = 0; i < 3; i++) tabs.push(await openTab(context(), url));
  for (const tab of tabs) {
    await tab.start();
    await tab.sub('logs:feed');
    await tab.waitForSubscribed('logs:feed');
  }
  expect(resumedFrom).toEqual([undefined]);
  const [first, , last] = tabs as [Tab, Tab, Tab];
  let n = 0;
  const published: Promise<SseEvent>[] = [];
  const timer = setInterval(() => published.push(gateway.publish('logs:feed', ++n)), 10);
  try {
    await last.waitForData(10);
    await first.page.evaluate(() => document.dispatchEvent(new Event('freeze')));
    await eventually(() => resumedFrom.length === 2, 10_000, 'a second stream');
    await last.waitForData(n + 20);
    await first.page.evaluate(() => document.dispatchEvent(new Event('resume')));
  } finally {
    clearInterval(timer);
  }
  expect(resumedFrom[1]).toMatch(/^[a-z0-9]+-\d+$/);
  const events = await Promise.all(published);
  events.push(await gateway.publish('logs:feed', 'end'));
  for (const tab of tabs) {
    await tab.waitForData('end');
    expect((await tab.record()).received.map((e) => e.id)).toEqual(events.map((e) => e.id));
  }
  expect(gateway.stats().connections).toBe(1);
  expect(resumedFrom).toHaveLength(2);

  // A late post of a replaced leader (here forged by a page) repeats an old event: no tab takes it again.
  const stale = { ...(await last.record()).received[0] };
  const marker = { id: `${String(events[0]?.id).split('-')[0]}-999999999`, channel: 'logs:feed', data: 'marker' };
  await last.page.evaluate(
    ([a, b]) => {
      const channel = new BroadcastChannel(`sse-gateway:v2:${location.origin}/events`);
      for (const event of [a, b]) channel.postMessage({ t: 'event', event: { ...event, namespace: 'logs' } });
      channel.close();
    },
    [stale, marker] as const,
  );
  for (const tab of tabs) {
    await tab.waitForData('marker');
    expect((await tab.record()).received.map((e) => e.data)).toEqual([...events.map((e) => e.data), 'marker']);
  }
}, 60_000);

it('a page put in the back-forward cache leaves (its stream moves on); restored, it joins again and catches up', async () => {
  const { gateway, url } = await startGateway(OPTIONS, { before: serveTabPages });
  const [cached, other] = [await openTab(context(), url), await openTab(context(), url)];
  for (const tab of [cached, other]) {
    await tab.start();
    await tab.sub('logs:a');
    await tab.waitForSubscribed('logs:a');
  }
  await gateway.publish('logs:a', 'before');
  await cached.waitForData('before');
  // Headless Chromium keeps pages with locks out of its cache, so the page is told by the events themselves.
  await cached.page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true })));
  await gateway.publish('logs:a', 'away');
  await other.waitForData('away');
  await eventually(() => gateway.stats().connections === 1, 10_000, 'the stream in the other tab');
  // Restored, it asks the leader (now the other tab) for the events of its time away.
  await cached.page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true })));
  await cached.waitForData('away');
  await gateway.publish('logs:a', 'back');
  await Promise.all([cached.waitForData('back'), other.waitForData('back')]);
  const record = await cached.record();
  expect(record.resets).toEqual([]);
  expect(record.received.map((e) => e.data)).toEqual(['before', 'away', 'back']);
  expect((await other.record()).received.map((e) => e.data)).toEqual(['before', 'away', 'back']);
  expect(gateway.stats().connections).toBe(1);
}, 60_000);
