import { closeAll, onCleanup, startGateway } from '../helpers/gateway';
import { startNginx } from '../helpers/nginx';
import { openStream } from '../helpers/sse-client';

// The production numbers, unscaled: 90 s of silence on a stream through the shipped nginx.conf (read timeout
// 60 s) with the gateway's default 25 s heartbeat. Slow on purpose, so it has a file of its own and runs in
// parallel with the rest; test/deploy/nginx.test.ts has the fast negative control (a timeout below the heartbeat).
jest.setTimeout(150_000);
afterEach(closeAll);

it('a stream survives 90 s of silence through nginx: 25 s heartbeats against a 60 s read timeout', async () => {
  const { gateway, url } = await startGateway({ channels: ['logs'] }); // heartbeatMs defaults to 25000
  const nginx = await startNginx({ upstreams: [Number(new URL(url).port)] });
  onCleanup(() => nginx.stop());
  const stream = await openStream(`${nginx.url}/events?channels=logs:a`);
  onCleanup(() => stream.close());
  const opened = Date.now();
  // Three heartbeats are 75 s; nothing else is published, so the stream is silent but for them.
  await stream.until((s) => s.comments.length >= 3 || s.isEnded, 100_000);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, 90_000 - (Date.now() - opened))));
  expect(stream.isEnded).toBe(false);
  expect(stream.comments.length).toBe(3);
  await gateway.publish('logs:a', 'after 90 s');
  const event = await stream.waitFor((e) => e.event === 'logs', 1_000);
  expect(JSON.parse(event.data).data).toBe('after 90 s');
  expect(stream.events.filter((e) => e.event === 'sse:ready')).toHaveLength(1);
});
