/**
 * The embedded bus: eventemitter3 fan-out inside one process, with a history bounded by count, bytes and
 * age for Last-Event-ID replay (memory-history.ts).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import { LRUCache } from 'lru-cache';
import { SseError } from '../protocol/errors';
import { formatEventId, parseEventId } from '../protocol/event-id';
import type {
  Bus,
  BusListener,
  BusPublishOptions,
  BusSignal,
  BusSignalListener,
  BusStatus,
  MemoryBusOptions,
  ReplayQuery,
  ReplayResult,
  SseEvent,
} from '../types';
import { checkKeys, isPlainObject, OptionError } from '../util/validate';
import { createEpoch } from './epoch';
import { checkIdempotencyKey, createEvent, preparePublish, repeatedPublish } from './event';
import { boundQuery, DEFAULT_HISTORY, parseHistoryWindow, replayFromHistory } from './history';
import { estimateEventBytes, MemoryHistory } from './memory-history';
import { checkSignal } from './signal';

const OPTION_KEYS = ['history'] as const;

/** Idempotency records kept at most, by count and by their estimated bytes (keys are up to 200 characters). */
const IDEMPOTENCY_MAX_KEYS = 10_000;
const IDEMPOTENCY_MAX_BYTES = 4 * 1024 * 1024;

/**
 * What a repeated publish needs of the first one. Not the event: a keyed 60 KB publish kept its payload
 * alive here long after the history had dropped it (+460 MB for 4,000 of them).
 */
interface FirstPublish {
  readonly id: string;
  readonly channel: string;
  readonly time: number;
}

/** A record's footprint: UTF-16 strings plus the object and the cache's node. */
function recordBytes(record: FirstPublish, key: string): number {
  return 2 * (key.length + record.id.length + record.channel.length) + 96;
}

class MemoryBus implements Bus {
  readonly id = randomUUID();
  private readonly epoch = createEpoch();
  private readonly emitter = new EventEmitter<{ event: [SseEvent]; signal: [BusSignal] }>();
  private readonly history: MemoryHistory | null;
  private seq = 0;
  private closed = false;
  /** The first publish of each `idempotencyKey`: bounded by count and bytes, as long as the history keeps events. */
  private readonly idempotent: LRUCache<string, FirstPublish>;

  constructor(options: MemoryBusOptions) {
    if (!isPlainObject(options)) {
      throw new OptionError('createMemoryBus takes an options object: createMemoryBus({ history: { size: 5000 } }).');
    }
    checkKeys('createMemoryBus', options, OPTION_KEYS);
    const history =
      options.history === false
        ? false
        : parseHistoryWindow('createMemoryBus', 'history', options.history, DEFAULT_HISTORY, ' or false');
    this.history = history === false ? null : new MemoryHistory(history);
    this.idempotent = new LRUCache<string, FirstPublish>({
      max: IDEMPOTENCY_MAX_KEYS,
      maxSize: IDEMPOTENCY_MAX_BYTES,
      sizeCalculation: recordBytes,
      ttl: this.historyTtlMs,
    });
  }

  publish(channel: string, data: unknown, options?: BusPublishOptions): Promise<SseEvent> {
    if (this.closed) return Promise.reject(new SseError('ERR_SSE_BUS_CLOSED', 'This memory bus is closed.'));
    let json: string;
    let key: string | undefined;
    try {
      json = preparePublish(channel, data, options?.users, options?.maxBytes);
      key = checkIdempotencyKey(options?.idempotencyKey);
      const first = key === undefined ? undefined : this.idempotent.get(key);
      if (key !== undefined && first !== undefined) {
        // As on Redis: the first publish's id, channel and time, with the payload of the retry (the same
        // payload, for a true retry), since the first one's may have left the history long ago.
        const users = options?.users === undefined ? undefined : [...options.users];
        const repeat = createEvent(first.id, first.channel, json, first.time, users, data);
        return Promise.resolve(repeatedPublish(key, repeat, channel));
      }
    } catch (error) {
      return Promise.reject(error);
    }
    const users = options?.users === undefined ? undefined : [...options.users];
    const event = createEvent(formatEventId(this.epoch, ++this.seq), channel, json, Date.now(), users, data);
    this.history?.push(this.seq, event, estimateEventBytes(event, json.length));
    // As long as the history keeps events, which `retain()` may have raised since construction.
    if (key !== undefined) {
      const record = { id: event.id, channel, time: event.time };
      this.idempotent.set(key, record, { ttl: this.historyTtlMs });
    }
    this.emitter.emit('event', event);
    return Promise.resolve(event);
  }

  listen(listener: BusListener): () => void {
    this.emitter.on('event', listener);
    return () => {
      this.emitter.off('event', listener);
    };
  }

  watch(): () => void {
    return noop;
  }

  signal(signal: BusSignal): Promise<void> {
    if (this.closed) return Promise.reject(new SseError('ERR_SSE_BUS_CLOSED', 'This memory bus is closed.'));
    try {
      this.emitter.emit('signal', checkSignal(signal));
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve();
  }

  onSignal(listener: BusSignalListener): () => void {
    this.emitter.on('signal', listener);
    return () => {
      this.emitter.off('signal', listener);
    };
  }

  replay(lastEventId: string, query: ReplayQuery): Promise<ReplayResult> {
    const history = this.history;
    if (history === null) return Promise.resolve({ ok: false, reason: 'replay-disabled' });
    const last = parseEventId(lastEventId);
    if (last === null) return Promise.resolve({ ok: false, reason: 'malformed-id' });
    const snapshot = { epoch: this.epoch, headSeq: this.seq, lookup: (seq: number) => history.get(seq) };
    const bounded = boundQuery(query, history.bounds);
    return Promise.resolve(replayFromHistory(snapshot, last, bounded, (event) => event));
  }

  retain(window: { size: number; ttlMs: number }): void {
    this.history?.retain(window);
  }

  /** How long events stay replayable, and so how long an idempotency key is remembered. */
  private get historyTtlMs(): number {
    return this.history?.bounds.ttlMs ?? DEFAULT_HISTORY.ttlMs;
  }

  status(): BusStatus {
    return {
      kind: 'memory',
      connected: !this.closed,
      head: this.seq === 0 ? undefined : formatEventId(this.epoch, this.seq),
      history: this.history?.status() ?? false,
      listeners: this.emitter.listenerCount('event'),
      idempotency: { keys: this.idempotent.size, bytes: this.idempotent.calculatedSize },
    };
  }

  close(): Promise<void> {
    this.closed = true;
    this.emitter.removeAllListeners();
    this.history?.clear();
    this.idempotent.clear();
    return Promise.resolve();
  }
}

function noop(): void {}

/**
 * Create an in-process bus (eventemitter3) with a bounded replay history over all its channels.
 * Defaults to a history of up to 100,000 events, 32 MiB (estimated) and 10 minutes, whichever is reached
 * first: with 1 KB events about 9,000 of them.
 *
 * @param options - history bounds (`size`, `maxBytes`, `ttlMs`), or `history: false`.
 * @example
 * const bus = createMemoryBus({ history: { maxBytes: 128 * 1024 * 1024 } });
 * app.use(sseMiddleware({ channels: ['logs'], bus }));
 */
export function createMemoryBus(options: MemoryBusOptions = {}): Bus {
  return new MemoryBus(options);
}
