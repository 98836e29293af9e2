/// <reference lib="dom" />
import type { SseEvent } from '../../src';
import { chromiumForSuite, contextForEachTest } from '../helpers/browser';
import { closeAll, startGateway } from '../helpers/gateway';
import { openTab, serveTabPages } from '../helpers/tab-pages';

// A tab that joins a shared stream with a kept id (a reload with persistLastEventId, or a client created
// with lastEventId) while another tab leads: the leader serves it the events after that id on its channels
// from its recent events, or tells it to reset. In Debian's Chromium, with the built client.
const browser = chromiumForSuite();
const context = contextForEachTest(browser);
afterEach(closeAll);

const OPTIONS = { channels: ['logs'], authentication: () => ({ id: 'alice' }) };

it('a follower that reloads while events flow at 50/s gets every event once, in order, across the reload', async () => {
  const { gateway, url } = await startGateway(OPTIONS, { before: serveTabPages });
  const [leader, follower] = [await openTab(context(), url), await openTab(context(), url)];
  await leader.start();
  await leader.sub('logs:feed');
  await leader.waitForSubscribed('logs:feed');
  const subscribe = async () => {
    await follower.start({ persistLastEventId: true });
    // logs:feed is the leader's too; logs:mine is the follower's alone (it stays on the stream a while
    // after the page was hidden, so the reloaded page finds it there). Both in one task, as the components
    // of a page's first render subscribe: those channels catch up, as a stream's first connect replays.
    await follower.sub('logs:feed', 'logs:mine');
  };
  await subscribe();
  await follower.waitForSubscribed('logs:mine');

  let n = 0;
  const published: Promise<SseEvent>[] = [];
  const sentAt = new Map<number, number>();
  const timer = setInterval(() => {
    sentAt.set(++n, performance.timeOrigin + performance.now());
    published.push(gateway.publish(n % 2 === 0 ? 'logs:mine' : 'logs:feed', n));
  }, 20);
  const reloads: number[] = [];
  try {
    await follower.waitForData(10);
    for (let i = 0; i < 2; i++) {
      reloads.push(n);
      await follower.reload();
      await subscribe();
      // Well past the reload: the gap is behind, live events flow again.
      await follower.waitForData(n + 10);
    }
  } finally {
    clearInterval(timer);
  }
  const events = await Promise.all(published);
  events.push(await gateway.publish('logs:mine', 'end'));
  await follower.waitForData('end');
  const { received, resets, loads } = await follower.record();
  const waits = reloads.map((from) =>
    Math.max(
      ...received
        .filter((e) => Number(e.data) > from && Number(e.data) <= from + 25)
        .map((e) => e.at - (sentAt.get(Number(e.data)) ?? e.at)),
    ),
  );
  console.log(
    `reloads at events ${reloads.join(', ')}; the longest an event waited around each: ${waits.map((w) => w.toFixed(0)).join(', ')} ms`,
  );
  expect(loads).toBe(3);
  expect(resets).toEqual([]);
  expect(received.map((e) => e.id)).toEqual(events.map((e) => e.id));
  expect(received.map((e) => e.data)).toEqual(events.map((e) => e.data));
  const feed = events.filter((e) => e.channel === 'logs:feed');
  await leader.waitForData(feed.at(-1)?.data);
  expect((await leader.record()).received.map((e) => e.id)).toEqual(feed.map((e) => e.id));
  expect(gateway.stats().connections).toBe(1);
}, 90_000);

it('a tab joining with an id the leader no longer holds is told to reset; one inside its recent events catches up', async () => {
  const { gateway, url } = await startGateway(OPTIONS, { before: serveTabPages });
  const [leader, late, recent] = [
    await openTab(context(), url),
    await openTab(context(), url),
    await openTab(context(), url),
  ];
  await leader.start();
  await leader.sub('logs:feed');
  await leader.waitForSubscribed('logs:feed');
  const first = await gateway.publish('logs:feed', 'first');
  // More than the leader keeps (1,000 events): the first one is gone from its recent events.
  const burst: SseEvent[] = [];
  for (let i = 1; i <= 1100; i++) burst.push(await gateway.publish('logs:feed', i));
  await leader.waitForData(1100, 20_000);

  await late.start({ lastEventId: first.id });
  await late.sub('logs:feed');
  await late.page.waitForFunction(
    () => (window as unknown as { tab: { record: { resets: string[] } } }).tab.record.resets.length === 1,
  );
  const from = burst[1049] as SseEvent;
  await recent.start({ lastEventId: from.id });
  await recent.sub('logs:feed');
  await recent.waitForData(1100);

  const live = await gateway.publish('logs:feed', 'live');
  await Promise.all([late.waitForData('live'), recent.waitForData('live')]);
  const lateRecord = await late.record();
  expect(lateRecord.resets).toEqual(['logs:feed expired']);
  // Never a partial replay: after the reset, live events only.
  expect(lateRecord.received.map((e) => e.data)).toEqual(['live']);
  const recentRecord = await recent.record();
  expect(recentRecord.resets).toEqual([]);
  expect(recentRecord.received.map((e) => e.id)).toEqual([...burst.slice(1050), live].map((e) => e.id));
  expect(gateway.stats().connections).toBe(1);
}, 90_000);
