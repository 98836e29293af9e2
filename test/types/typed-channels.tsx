// Type tests, compiled by `npm run typecheck` (tsc on tsconfig.json): every line marked @ts-expect-error
// must fail to compile, and everything else must compile, with no cast in the "user code" below.
import { Component } from 'react';
import type { SseClient } from '../../src/client';
import { createTypedSSE, type SSESubscriptionResult } from '../../src/react';

/** Exact type equality, so a payload widened to `unknown` or `any` fails. */
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function expectType<A, B>(_proof: Equal<A, B>): void {}

interface LogLine {
  line: string;
  level: 'info' | 'error';
}
type Channels = { logs: LogLine; metrics: { value: number }; alerts: { text: string } };

const { useSSESubscription, withSSE, typed } = createTypedSSE<Channels>();

export function Logs() {
  const logs = useSSESubscription('logs:ws1:*');
  expectType<typeof logs.data, readonly LogLine[]>(true);
  expectType<typeof logs.lastMessage, LogLine | undefined>(true);

  const metric = useSSESubscription('metrics:ws1', { accumulate: false });
  expectType<typeof metric.lastMessage, { value: number } | undefined>(true);

  // Several channels: a union of their payloads.
  const mixed = useSSESubscription(['metrics:ws1', 'alerts:u1']);
  expectType<typeof mixed.data, readonly ({ value: number } | { text: string })[]>(true);

  // transform sees the typed payload and decides `data`'s type.
  const lines = useSSESubscription('logs:ws1:wf2', { transform: (log) => log.line.toUpperCase() });
  expectType<typeof lines.data, readonly string[]>(true);

  // @ts-expect-error an unknown namespace
  useSSESubscription('billing:ws1');
  // @ts-expect-error the payload has no `value`
  useSSESubscription('logs:ws1:*', { transform: (log) => log.value });
  // @ts-expect-error an unknown option
  useSSESubscription('logs:ws1:*', { maxitems: 5 });
  return null;
}

export function subscribeDirectly(client: SseClient): () => void {
  const channels = typed(client);
  const off = channels.subscribe('alerts:u1', (event) => {
    expectType<typeof event.data, { text: string }>(true);
  });
  channels.subscribe('logs:ws1:*', (event) => {
    expectType<typeof event.data, LogLine>(true);
    expectType<typeof event.channel, `logs:ws1:${string}`>(true);
  });
  // @ts-expect-error an unknown namespace
  channels.subscribe('billing:x', () => {});
  // @ts-expect-error `text` is not a metric's field
  channels.subscribe('metrics:ws1', (event) => event.data.text);
  return off;
}

class AlertList extends Component<{ user: string; sseData: SSESubscriptionResult<{ text: string }> }> {
  override render() {
    return this.props.sseData.data.map((alert) => alert.text).join(', ');
  }
}
export const LiveAlerts = withSSE(AlertList, (props) => ({ channels: `alerts:${props.user}` as const }));
export const element = <LiveAlerts user="u1" />;
// @ts-expect-error the metrics payload is not what AlertList's sseData holds
export const Wrong = withSSE(AlertList, { channels: 'metrics:ws1' });
export const Mapped = withSSE(AlertList, {
  channels: 'metrics:ws1',
  transform: (metric) => ({ text: String(metric.value) }),
});
