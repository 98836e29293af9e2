/**
 * One stream in this context: the client without tab sharing. It owns the status machine, the channel
 * set, the current transport and the newest event id; subscription changes go over the live route when
 * the stream offers one and by reconnecting otherwise (the server replays from the last event id, so the
 * channels that stay lose nothing either way).
 */
import { namespaceOf, parseTopic } from '../protocol/channels';
import {
  ControlEvent,
  type Envelope,
  type ReadyPayload,
  type ResetPayload,
  type SubscribedPayload,
  type UpstreamErrorPayload,
} from '../protocol/wire';
import { type Backoff, createBackoff } from './backoff';
import { newRequestId, postChange } from './changes';
import { ChannelSet, type Subscription } from './channel-set';
import { diagnose, type Failure } from './diagnose';
import { decideFailure, upstreamFailure } from './failure-policy';
import { LastEventId } from './last-event-id';
import { type ClientConfig, parseClientOptions } from './options';
import { watchPageWake } from './page-wake';
import { parseJson, reportListenerError } from './report';
import { createStatusMachine, type StatusMachine } from './status';
import { openTransport, type Transport } from './transport';
import type {
  ClientEvent,
  ClientStatus,
  SseClient,
  SseClientError,
  SseClientOptions,
  SubscriptionHandlers,
} from './types';
import { resolveUrl, streamUrl, subscriptionsUrl } from './urls';

/** Options of {@link createStreamClient}: the client's, plus the id a stream taken over resumes from. */
export interface StreamClientOptions extends SseClientOptions {
  /** Resume from this event id on the first connect (a tab taking over a shared stream). */
  lastEventId?: string;
}

/** The current stream: one transport and what the server said about it. */
interface Stream {
  readonly transport: Transport;
  /** Set by `sse:ready`. */
  ready?: ReadyPayload;
  /** The channels the server has on this stream (from `sse:ready`, then each `sse:subscribed`). */
  server: Set<string>;
}

/**
 * The subscription change in flight. It settles when both halves are in: the POST's answer (with its
 * refusals) and the stream's `sse:subscribed` (which may come first); until then no other change starts,
 * so a refused channel is never asked for twice.
 */
interface InFlight {
  readonly requestId: string;
  readonly add: readonly string[];
  answered: boolean;
  /** The stream's channels as `sse:subscribed` listed them, once it came. */
  confirmed?: readonly string[];
  timer?: ReturnType<typeof setTimeout>;
}

class StreamClient implements SseClient {
  private readonly config: ClientConfig;
  private readonly machine: StatusMachine = createStatusMachine(reportListenerError);
  private readonly channels = new ChannelSet(reportListenerError);
  private readonly backoff: Backoff;
  private readonly last: LastEventId;
  private stream: Stream | undefined;
  private inFlight: InFlight | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped whenever the stream is replaced or dropped: late answers of older attempts are ignored. */
  private generation = 0;
  private flushQueued = false;
  /** The gateway answered that it has no subscription route: change by reconnecting. */
  private liveRouteMissing = false;
  /** An upstream `sse:error` that means "stop": when the stream ends, close instead of reconnecting. */
  private upstreamStop: SseClientError | undefined;
  /** `close()` was called: nothing starts again. */
  private disposed = false;
  /** Stopped by an answer (401, …): only a new subscription starts again. */
  private halted = false;
  /** Removes the page listeners that cut a retry's wait short; set while waiting. */
  private stopWatchingPage: (() => void) | undefined;

  constructor(options: StreamClientOptions) {
    this.config = parseClientOptions(options);
    this.backoff = createBackoff(this.config);
    this.last = new LastEventId(this.config.lastEventId, this.config.persistKey);
  }

  get status(): ClientStatus {
    return this.machine.status;
  }

  get lastEventId(): string | undefined {
    return this.last.value;
  }

  onStatus(listener: (status: ClientStatus, error?: SseClientError) => void): () => void {
    return this.machine.listen(listener);
  }

  subscribe(channel: string, listener: (event: ClientEvent) => void, handlers: SubscriptionHandlers = {}): () => void {
    if (typeof listener !== 'function')
      throw new TypeError('subscribe(channel, listener): listener must be a function.');
    const topic = typeof channel === 'string' ? parseTopic(channel, true) : null;
    if (this.disposed || topic === null) {
      const error: SseClientError = this.disposed
        ? { code: 'ERR_SSE_CLIENT_CLOSED', message: 'This client was closed; create a new one.' }
        : { code: 'ERR_SSE_INVALID_CHANNEL', status: 400, message: `Malformed channel ${JSON.stringify(channel)}.` };
      queueMicrotask(() => this.channels.call(() => handlers.onError?.(error)));
      return () => {};
    }
    const subscription: Subscription = { topic, listener, handlers, subscribed: false, active: true };
    const { entry, added } = this.channels.add(subscription);
    this.halted = false;
    if (entry.live) queueMicrotask(() => this.channels.confirm(subscription));
    if (added) this.stream?.transport.listen(topic.namespace);
    this.scheduleFlush();
    return () => {
      if (!subscription.active) return;
      subscription.active = false;
      if (this.channels.remove(subscription)) this.scheduleFlush();
    };
  }

  close(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.channels.clear();
    this.stop();
    this.last.dispose();
    this.machine.to('closed');
  }

  /** Changes made in one tick become one request (or one reconnect). */
  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  /** Bring the stream in line with the channel set. */
  private flush(): void {
    if (this.disposed) return;
    if (this.channels.size === 0) {
      if (this.status !== 'idle' && this.status !== 'closed') {
        this.stop();
        this.machine.to('idle');
      }
      return;
    }
    if (this.stream === undefined) {
      // Waiting for a retry: it will connect with the channels of that moment.
      if (this.retryTimer === undefined && !this.halted) this.connectNow();
      return;
    }
    const { ready, server } = this.stream;
    if (ready === undefined || this.inFlight !== undefined) return;
    const add = this.channels.names().filter((name) => !server.has(name));
    const remove = [...server].filter((name) => this.channels.get(name) === undefined);
    if (add.length === 0 && remove.length === 0) return;
    if (ready.subscriptionToken === undefined || this.liveRouteMissing) this.reconnect();
    else void this.change(ready.connectionId, ready.subscriptionToken, add, remove);
  }

  /** Change the open stream's subscriptions over the live route. */
  private async change(connectionId: string, token: string, add: string[], remove: string[]): Promise<void> {
    const requestId = newRequestId();
    const inFlight: InFlight = { requestId, add, answered: false };
    this.inFlight = inFlight;
    const generation = this.generation;
    const request = { connectionId, subscriptionToken: token, requestId, add, remove };
    const url = subscriptionsUrl(resolveUrl(this.config.url));
    const answer = await postChange(this.config.fetch ?? globalThis.fetch, url, this.config.credentials, request);
    if (answer.kind === 'accepted') {
      // Refusals hold whatever became of the stream meanwhile: the ACL said no to these channels.
      for (const { channel, code, status, message } of answer.response.refused) {
        this.channels.fail(channel, { code, status, message });
      }
    }
    if (generation !== this.generation || this.inFlight !== inFlight) return;
    if (answer.kind !== 'accepted') {
      if (answer.kind === 'unsupported') this.liveRouteMissing = true;
      this.reconnect();
      return;
    }
    inFlight.answered = true;
    const { accepted, removed } = answer.response;
    if (inFlight.confirmed !== undefined || (accepted.length === 0 && removed.length === 0)) {
      this.settle();
      return;
    }
    inFlight.timer = setTimeout(() => {
      if (this.inFlight === inFlight) this.reconnect();
    }, this.config.changeTimeoutMs);
  }

  /** The change in flight is complete: the next one may start. */
  private settle(): void {
    const inFlight = this.inFlight;
    if (inFlight === undefined) return;
    clearTimeout(inFlight.timer);
    this.inFlight = undefined;
    // A channel asked for that is neither live nor refused (the stream's instance dropped it) must not be
    // asked for again and again.
    const live = inFlight.confirmed;
    for (const name of live === undefined ? [] : inFlight.add) {
      if (!live?.includes(name) && this.channels.get(name) !== undefined) {
        this.channels.fail(name, { code: 'ERR_SSE_SUBSCRIPTION_FAILED', message: `The stream did not take ${name}.` });
      }
    }
    this.scheduleFlush();
  }

  /** Close the current stream and any pending retry, without a status change. */
  private stop(): void {
    this.generation++;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    clearTimeout(this.inFlight?.timer);
    this.inFlight = undefined;
    this.stream?.transport.close();
    this.stream = undefined;
    this.channels.markLive(new Set());
    this.unwatchPage();
  }

  /** Change channels by reconnecting now, resuming from the last event id. */
  private reconnect(): void {
    this.stop();
    this.machine.to(this.status === 'connecting' ? 'connecting' : 'reconnecting');
    this.connectNow();
  }

  private scheduleRetry(delayMs: number, error?: SseClientError): void {
    this.stop();
    this.machine.to('reconnecting', error);
    // Come back at once when the network returns or the tab is shown again.
    this.stopWatchingPage = watchPageWake(() => {
      if (this.retryTimer === undefined) return;
      this.backoff.reset();
      this.connectNow();
    });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connectNow();
    }, delayMs);
  }

  private halt(error: SseClientError): void {
    this.stop();
    this.halted = true;
    this.machine.to('closed', error);
  }

  private connectNow(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.disposed || this.channels.size === 0) return;
    const EventSource =
      this.config.EventSource ?? (globalThis as Partial<Pick<ClientConfig, 'EventSource'>>).EventSource;
    let url: string;
    try {
      url = streamUrl(resolveUrl(this.config.url), this.channels.names(), this.last.value);
    } catch {
      this.halt({ code: 'ERR_SSE_INVALID_OPTION', message: `Cannot resolve the url ${this.config.url}.` });
      return;
    }
    if (EventSource === undefined) {
      this.halt({ code: 'ERR_SSE_UNSUPPORTED', message: 'No EventSource here: pass the `EventSource` option.' });
      return;
    }
    this.generation++;
    this.upstreamStop = undefined;
    const generation = this.generation;
    const namespaces = new Set(this.channels.names().map(namespaceOf));
    const transport = openTransport(EventSource, url, this.config.withCredentials, namespaces, {
      onOpen: () => {},
      onMessage: (type, data, id) => {
        if (generation === this.generation) this.onMessage(type, data, id);
      },
      onError: (status) => {
        if (generation === this.generation) void this.onStreamError(url, status);
      },
    });
    this.stream = { transport, server: new Set() };
    const status = this.status;
    if (status === 'idle' || status === 'closed') this.machine.to('connecting');
    else if (status === 'open') this.machine.to('reconnecting');
  }

  private onMessage(type: string, data: string, id: string): void {
    switch (type) {
      case ControlEvent.ready:
        // A fresh stream's sse:ready carries the bus's newest id: a resume point before the first event.
        if (id !== '') this.last.accept(id);
        this.onReady(parseJson<ReadyPayload>(data));
        break;
      case ControlEvent.subscribed:
        this.onSubscribed(parseJson<SubscribedPayload>(data));
        break;
      case ControlEvent.reset:
        this.onReset(parseJson<ResetPayload>(data));
        break;
      case ControlEvent.error:
        this.onUpstreamError(parseJson<UpstreamErrorPayload>(data));
        break;
      default:
        this.onData(parseJson<Envelope>(data), id);
    }
  }

  private onData(envelope: Envelope | undefined, id: string): void {
    if (typeof envelope?.channel !== 'string' || !this.last.accept(id)) return;
    const { channel, data } = envelope;
    this.channels.deliver({ id, channel, namespace: namespaceOf(channel), data });
  }

  private onReady(payload: ReadyPayload | undefined): void {
    const stream = this.stream;
    if (stream === undefined || payload === undefined || typeof payload.connectionId !== 'string') return;
    stream.ready = payload;
    this.backoff.reset();
    this.unwatchPage();
    this.machine.to('open');
    this.markLive(Array.isArray(payload.channels) ? payload.channels : []);
    this.scheduleFlush();
  }

  private onSubscribed(payload: SubscribedPayload | undefined): void {
    if (this.stream === undefined || payload === undefined || !Array.isArray(payload.channels)) return;
    this.markLive(payload.channels);
    const inFlight = this.inFlight;
    if (inFlight?.requestId !== payload.requestId) return;
    for (const { channel, code, status, message } of Array.isArray(payload.refused) ? payload.refused : []) {
      this.channels.fail(channel, { code, status, message });
    }
    inFlight.confirmed = payload.channels;
    if (inFlight.answered) this.settle();
  }

  /** The server has exactly `channels` on the stream now. */
  private markLive(channels: readonly string[]): void {
    if (this.stream === undefined) return;
    this.stream.server = new Set(channels);
    this.channels.markLive(this.stream.server);
  }

  private onReset(payload: ResetPayload | undefined): void {
    const reason = typeof payload?.reason === 'string' ? payload.reason : 'unknown';
    this.channels.reset(reason, Array.isArray(payload?.channels) ? payload.channels : undefined);
  }

  private onUpstreamError(payload: UpstreamErrorPayload | undefined): void {
    const { error, stop } = upstreamFailure(payload);
    if (stop) this.upstreamStop = error;
    this.machine.report(error);
  }

  private async onStreamError(url: string, status: number | undefined): Promise<void> {
    const stream = this.stream;
    if (stream === undefined) return;
    if (this.upstreamStop !== undefined) {
      this.halt(this.upstreamStop);
      return;
    }
    if (stream.ready !== undefined) {
      this.scheduleRetry(this.backoff.next());
      return;
    }
    // Failed before it opened: find out why before deciding how to come back.
    stream.transport.close();
    const generation = this.generation;
    const failure =
      status === 401
        ? { status, code: 'ERR_SSE_UNAUTHENTICATED', message: 'Sign in again.' }
        : await diagnose(this.config.fetch ?? globalThis.fetch, url, this.config.credentials, status);
    if (generation === this.generation) this.onFailure(failure);
  }

  private onFailure(failure: Failure): void {
    const action = decideFailure(failure);
    if (action.kind === 'halt') {
      this.halt(action.error);
    } else if (action.kind === 'retry') {
      const { retryAfterMs } = action;
      this.scheduleRetry(
        retryAfterMs === undefined ? this.backoff.next() : this.backoff.after(retryAfterMs),
        action.error,
      );
    } else {
      for (const name of action.channels) this.channels.fail(name, action.error);
      this.stop();
      if (this.channels.size === 0) {
        this.machine.to('idle', action.error);
        return;
      }
      this.machine.to('reconnecting', action.error);
      this.connectNow();
    }
  }

  private unwatchPage(): void {
    this.stopWatchingPage?.();
    this.stopWatchingPage = undefined;
  }
}

/**
 * A client with its own stream (no sharing across tabs).
 *
 * @param options - the client's options, plus the event id to resume from.
 * @throws OptionError for an unknown or wrong option.
 * @example
 * ```ts
 * const client = createStreamClient({ url: '/events', lastEventId: handedOverId });
 * ```
 */
export function createStreamClient(options: StreamClientOptions): SseClient {
  return new StreamClient(options);
}
