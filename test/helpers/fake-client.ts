import type { ClientEvent, ClientStatus, SseClient, SseClientError, SubscriptionHandlers } from '../../src/client';

/** One `subscribe()` call the fake client received. */
interface Subscribed {
  readonly channel: string;
  readonly listener: (event: ClientEvent) => void;
  readonly handlers: SubscriptionHandlers;
  active: boolean;
}

/**
 * An in-memory `SseClient` for the React store's unit tests in Node: it records subscriptions and lets a
 * test deliver events and status changes synchronously, as a real client does from its stream's task.
 */
export class FakeClient implements SseClient {
  readonly subscriptions: Subscribed[] = [];
  status: ClientStatus = 'idle';
  lastEventId: string | undefined;
  closed = 0;
  private readonly statusListeners = new Set<(status: ClientStatus, error?: SseClientError) => void>();
  private seq = 0;

  subscribe(channel: string, listener: (event: ClientEvent) => void, handlers: SubscriptionHandlers = {}): () => void {
    const subscription: Subscribed = { channel, listener, handlers, active: true };
    this.subscriptions.push(subscription);
    return () => {
      subscription.active = false;
    };
  }

  onStatus(listener: (status: ClientStatus, error?: SseClientError) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  close(): void {
    this.closed++;
  }

  /** Channels with at least one active subscription. */
  active(): string[] {
    return [...new Set(this.subscriptions.filter((s) => s.active).map((s) => s.channel))].sort();
  }

  /** Deliver one event to every active subscription whose channel or pattern matches, as the client does. */
  emit(channel: string, data: unknown): ClientEvent {
    const event: ClientEvent = { id: `e${++this.seq}`, channel, namespace: channel.split(':')[0] ?? '', data };
    this.lastEventId = event.id;
    for (const s of this.subscriptions) {
      const matches = s.channel.endsWith(':*') ? channel.startsWith(s.channel.slice(0, -1)) : s.channel === channel;
      if (s.active && matches) s.listener(event);
    }
    return event;
  }

  /** Refuse `channel` for its subscriptions. */
  refuse(channel: string, error: SseClientError): void {
    for (const s of this.subscriptions) if (s.active && s.channel === channel) s.handlers.onError?.(error);
  }

  setStatus(status: ClientStatus, error?: SseClientError): void {
    this.status = status;
    for (const listener of this.statusListeners) listener(status, error);
  }
}
