/**
 * One open stream: ordered delivery through the ACL, the replay hold, the stream's byte limit, and a single
 * idempotent close path. Bytes go out through its {@link StreamWriter}; which channels it hears is the
 * channel index's business.
 */
import type { Response } from 'express';
import { type EncodedFrame, encodeEvent, encodeFrame } from '../bus/event';
import type { Topic } from '../protocol/channels';
import { parseEventId } from '../protocol/event-id';
import type { AuditEntry, MaybePromise, Principal, SseEvent } from '../types';
import { StreamWriter, type WriteBatch } from './stream-writer';

/** The per-event verdict of the ACL for one connection. */
export type Gate = (connection: Connection, event: SseEvent) => MaybePromise<boolean>;

/** What a connection needs from its gateway. */
export interface ConnectionHost {
  readonly gate: Gate;
  readonly maxBufferedBytes: number;
  readonly batch: WriteBatch;
  /** Called once per event frame accepted for a client. */
  delivered(): void;
  /** Called when the connection is closed for falling behind. */
  overflowed(connection: Connection): void;
}

/** An event waiting for its ACL verdict (or for the events before it), or a control frame in line. */
interface Pending {
  readonly event: SseEvent | undefined;
  readonly encoded: EncodedFrame;
  verdict: MaybePromise<boolean> | undefined;
}

/** One client's stream. Created by the gateway after every check passed and the headers were sent. */
export class Connection {
  /** Event offered last, so an event matched by two topics is written once. */
  private lastOffered: SseEvent | undefined;
  private pending: Pending[] | undefined;
  private pendingBytes = 0;
  private pumping = false;
  /** While replaying: live events wait here until {@link Connection.release}. */
  private held: SseEvent[] | undefined;
  /** Bytes of the held events' frames: they count toward `maxBufferedBytes` like any other backlog. */
  private heldBytes = 0;
  private closed = false;
  private readonly writer: StreamWriter;
  /** When the gateway ends this stream for its age (`limits.maxConnectionAgeMs`); `Infinity` for never. */
  expiresAt = Number.POSITIVE_INFINITY;
  /** The stream's topics: kept here for the channel index, the one owner of subscription state, which alone writes it. */
  indexedTopics: Topic[] | undefined = undefined;
  /** When the stream opened, ms since the epoch. */
  readonly openedAt = Date.now();
  /** The client's address (`req.ip`), for the audit trail and the admin views. */
  ip: string | undefined;
  /** Why the gateway ended this stream for a limit, for its `disconnect` audit entry; set before it is closed. */
  closeReason: AuditEntry['reason'] = undefined;

  /**
   * @param id - connection id, sent in `sse:ready`.
   * @param principal - who is connected.
   * @param res - the response the stream is written to (its headers already sent).
   */
  constructor(
    readonly id: string,
    readonly principal: Principal,
    readonly res: Response,
    private readonly host: ConnectionHost,
  ) {
    this.writer = new StreamWriter(res, host.batch, this);
  }

  /** True once the stream is closed for any reason. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes waiting for this client: events held during a replay, the ACL queue, and the writer's backlog. */
  get bufferedBytes(): number {
    return this.pendingBytes + this.heldBytes + this.writer.bufferedBytes;
  }

  /**
   * Offer a live event. Duplicates of the last offered event (two matching topics) are ignored.
   *
   * @param encoded - the event's bytes, built once per publish and shared by every connection.
   */
  offer(event: SseEvent, encoded: EncodedFrame): void {
    if (this.closed || this.lastOffered === event) return;
    this.lastOffered = event;
    if (this.held !== undefined) {
      this.held.push(event);
      this.heldBytes += encoded.frame.length;
      this.overLimit();
      return;
    }
    if (this.pending === undefined || this.pending.length === 0) {
      const verdict = this.host.gate(this, event);
      if (verdict === true) this.writeEvent(encoded);
      else if (verdict !== false) this.enqueue(event, encoded, verdict);
    } else this.enqueue(event, encoded, undefined);
  }

  /** Hold live events until {@link Connection.release} (a replay is being fetched). */
  hold(): void {
    this.held ??= [];
  }

  /** True while live events are held for a replay. */
  get holding(): boolean {
    return this.held !== undefined;
  }

  /**
   * Deliver `replayed` (already in order), then the held live events, less those the replay covered: an
   * event whose channel `covered` and whose sequence is at or below `headId` was in the replay's snapshot.
   *
   * @param replayed - events from the bus's history.
   * @param headId - the newest id the replay covered, or `undefined` when nothing was replayed.
   * @param covered - which channels the replay read; defaults to every channel.
   */
  release(replayed: readonly SseEvent[], headId: string | undefined, covered?: (channel: string) => boolean): void {
    const held = this.held ?? [];
    this.held = undefined;
    this.heldBytes = 0;
    if (this.closed) return;
    const head = headId === undefined ? undefined : parseEventId(headId);
    const seen = new Set<string>();
    for (const event of replayed) {
      seen.add(event.id);
      this.enqueue(event, encodeEvent(event), undefined);
    }
    for (const event of held) {
      if (seen.has(event.id)) continue;
      if (head && (covered === undefined || covered(event.channel))) {
        const seq = parseEventId(event.id);
        if (seq && seq.epoch === head.epoch && seq.seq <= head.seq) continue;
      }
      this.enqueue(event, encodeEvent(event), undefined);
    }
  }

  /**
   * Drop queued and held events whose channel no longer `wanted` (a subscription was removed), so that none
   * is written after the change's `sse:subscribed`.
   */
  forget(wanted: (channel: string) => boolean): void {
    if (this.held !== undefined) {
      this.held = this.held.filter((event) => wanted(event.channel));
      this.heldBytes = this.held.reduce((sum, event) => sum + encodeEvent(event).frame.length, 0);
    }
    if (this.pending !== undefined && this.pending.length > 0) {
      // The head may be awaiting its verdict in pump(); it stays and is checked again when it is written.
      const [head, ...rest] = this.pending as [Pending, ...Pending[]];
      const kept = rest.filter((item) => item.event === undefined || wanted(item.event.channel));
      this.pending = [head, ...kept];
      this.pendingBytes = this.pending.reduce((sum, item) => sum + item.encoded.frame.length, 0);
    }
    this.stillWanted = wanted;
  }

  /** After {@link Connection.forget}: the check for the event that was awaiting its verdict then. */
  private stillWanted: ((channel: string) => boolean) | undefined;

  /** Write a frame outside the event flow (`retry:`, `sse:ready`, heartbeats), at once. */
  writeRaw(frame: EncodedFrame | string): void {
    if (this.closed) return;
    this.writer.write(typeof frame === 'string' ? encodeFrame(frame) : frame);
  }

  /**
   * Write a control frame in order with the events before it: behind any event still waiting for its ACL
   * verdict, at once otherwise.
   */
  writeInOrder(frame: string): void {
    if (this.pending === undefined || this.pending.length === 0) {
      this.writeRaw(frame);
      return;
    }
    const encoded = encodeFrame(frame);
    this.pending.push({ event: undefined, encoded, verdict: true });
    this.pendingBytes += encoded.frame.length;
  }

  /** Heartbeat: skipped while the client is not reading, since it would only add to the backlog. */
  heartbeat(frame: EncodedFrame): void {
    if (!this.writer.congested) this.writeRaw(frame);
  }

  /** End the stream after telling the client when to come back (a drain). */
  endWithRetry(retryFrame: string): void {
    this.writeRaw(retryFrame);
    this.end();
  }

  /** End the stream politely (shutdown, age limit, disconnect). */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.res.end();
  }

  /** Drop everything still queued; called once from the gateway's cleanup on the response's `close`. */
  dispose(): void {
    this.closed = true;
    this.pending = undefined;
    this.pendingBytes = 0;
    this.held = undefined;
    this.heldBytes = 0;
    this.lastOffered = undefined;
    this.writer.dispose();
  }

  private enqueue(event: SseEvent, encoded: EncodedFrame, verdict: MaybePromise<boolean> | undefined): void {
    this.pending ??= [];
    this.pending.push({ event, encoded, verdict });
    this.pendingBytes += encoded.frame.length;
    if (this.overLimit()) return;
    void this.pump();
  }

  /** Drain the ACL queue in order; an async verdict holds back every later event of this connection. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.pending !== undefined && this.pending.length > 0 && this.held === undefined && !this.closed) {
        const item = this.pending[0] as Pending;
        let verdict = item.verdict ?? this.host.gate(this, item.event as SseEvent);
        if (verdict !== true && verdict !== false) {
          item.verdict = verdict;
          verdict = await verdict;
        }
        if (this.closed || this.pending === undefined) return;
        this.pending.shift();
        this.pendingBytes -= item.encoded.frame.length;
        if (!verdict) continue;
        if (item.event === undefined) this.writeRaw(item.encoded);
        else if (this.stillWanted === undefined || this.stillWanted(item.event.channel)) this.writeEvent(item.encoded);
      }
      this.stillWanted = undefined;
    } finally {
      this.pumping = false;
    }
  }

  private writeEvent(encoded: EncodedFrame): void {
    if (this.closed) return;
    this.host.delivered();
    this.writer.write(encoded);
  }

  /** Close a client that is too far behind; it resumes through Last-Event-ID. Also the writer's backlog check. */
  overLimit(): boolean {
    if (this.bufferedBytes <= this.host.maxBufferedBytes) return false;
    if (!this.closed) {
      this.closed = true;
      this.closeReason = 'slow-consumer';
      this.host.overflowed(this);
      this.res.destroy();
    }
    return true;
  }
}
