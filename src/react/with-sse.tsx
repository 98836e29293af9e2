/**
 * `withSSE`: `useSSESubscription` for class components, as a prop.
 */
import type { ComponentType, ReactNode } from 'react';
import { useSSESubscription } from './hooks';
import type { SSESubscriptionOptions, SSESubscriptionResult } from './types';

/** `withSSE`'s options: the channels plus the hook's options. */
export type WithSSEOptions<T> = SSESubscriptionOptions<T> & { channels: string | readonly string[] };

/** The payload type a component's `sseData` prop asks for. */
type DataOf<P> = P extends { sseData: SSESubscriptionResult<infer T> } ? T : unknown;

/**
 * Wrap a component (class or function) so it receives the subscription's result as the prop `sseData`.
 *
 * @param Component - takes `sseData: SSESubscriptionResult<T>` among its props.
 * @param options - the channels and options, or a function of the outer props that returns them.
 * @example
 * ```tsx
 * class Alerts extends React.Component<{ user: string; sseData: SSESubscriptionResult<Alert> }> { … }
 * const LiveAlerts = withSSE(Alerts, (props) => ({ channels: `alerts:${props.user}`, maxItems: 20 }));
 * ```
 */
export function withSSE<P extends { sseData: SSESubscriptionResult<DataOf<P>> }>(
  Component: ComponentType<P>,
  options: WithSSEOptions<DataOf<P>> | ((props: Omit<P, 'sseData'>) => WithSSEOptions<DataOf<P>>),
): ComponentType<Omit<P, 'sseData'>> {
  function WithSSE(props: Omit<P, 'sseData'>): ReactNode {
    const { channels, ...rest } = typeof options === 'function' ? options(props) : options;
    const sseData = useSSESubscription<DataOf<P>>(channels, rest);
    return <Component {...(props as P)} sseData={sseData} />;
  }
  WithSSE.displayName = `withSSE(${Component.displayName ?? Component.name ?? 'Component'})`;
  return WithSSE;
}
