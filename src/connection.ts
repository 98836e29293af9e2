/**
 * One open stream: ordered delivery through the ACL, a bounded outgoing buffer, the replay hold,
 * and a single idempotent close path.
 */
import type { Response } from 'express';
import type { Topic } from './channels';
import { eventFrame } from './event';
import { parseEventId } from './event-id';
import type { MaybePromise, Principal, SseEvent } from './types';

/** The per-event verdict of the ACL for one connection. */
export type Gate = (connection: Connection, event: SseEvent) => MaybePromise<boolean>;

/** What a connection needs from its gateway. */
export interface ConnectionHost {
  readonly gate: Gate;
  readonly maxBufferedBytes: number;
  /** Called once per event frame accepted for a client. */
  delivered(): void;
  /** Called when the connection is closed for falling behind. */
  overflowed(connection: Connection): void;
}

interface Pending {
  readonly event: SseEvent;
  readonly frame: Buffer;
  verdict: MaybePromise<boolean> | undefined;
}

/** One client's stream. Created by the gateway after every check passed and the headers were sent. */
export class Connection {
  /** Event written last (or offered last), so an event matched by two topics is written once. */
  private lastOffered: SseEvent | undefined;
  private readonly pending: Pending[] = [];
  private pendingBytes = 0;
  private pumping = false;
  /** While replaying: live events wait here; `holdHead` is filled in when the replay answers. */
  private held: SseEvent[] | null = null;
  private readonly outbox: Buffer[] = [];
  private outboxBytes = 0;
  private congested = false;
  private closed = false;

  /**
   * @param id - connection id, sent in `sse:ready`.
   * @param principal - who is connected.
   * @param topics - the subscriptions, as parsed.
   * @param res - the response the stream is written to.
   */
  constructor(
    readonly id: string,
    readonly principal: Principal,
    readonly topics: readonly Topic[],
    readonly res: Response,
    private readonly host: ConnectionHost,
  ) {}

  /** True once the stream is closed for any reason. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes waiting for this client: ACL queue, our outbox and Node's socket buffer. */
  get bufferedBytes(): number {
    return this.pendingBytes + this.outboxBytes + this.res.writableLength;
  }

  /**
   * Offer a live event. Duplicates of the last offered event (two matching topics) are ignored.
   *
   * @param frame - the event's bytes, built once per publish and shared by every connection.
   */
  offer(event: SseEvent, frame: Buffer): void {
    if (this.closed || this.lastOffered === event) return;
    this.lastOffered = event;
    if (this.held !== null) {
      this.held.push(event);
      return;
    }
    if (this.pending.length === 0) {
      const verdict = this.host.gate(this, event);
      if (verdict === true) this.writeEvent(frame);
      else if (verdict !== false) this.enqueue(event, frame, verdict);
    } else this.enqueue(event, frame, undefined);
  }

  /** Hold live events until {@link Connection.release} (a replay is being fetched). */
  hold(): void {
    this.held ??= [];
  }

  /**
   * Deliver `replayed` (already in order), then the held live events newer than `headId`.
   *
   * @param replayed - events from the bus's history.
   * @param headId - the newest id the replay covered; held events up to it are duplicates.
   */
  release(replayed: readonly SseEvent[], headId: string | undefined): void {
    const held = this.held ?? [];
    this.held = null;
    if (this.closed) return;
    const head = headId === undefined ? undefined : parseEventId(headId);
    const seen = new Set<string>();
    for (const event of replayed) {
      seen.add(event.id);
      this.enqueue(event, eventFrame(event), undefined);
    }
    for (const event of held) {
      if (seen.has(event.id)) continue;
      const seq = parseEventId(event.id);
      if (head && seq && seq.epoch === head.epoch && seq.seq <= head.seq) continue;
      this.enqueue(event, eventFrame(event), undefined);
    }
  }

  /** Write a frame outside the event flow (control events, heartbeats). */
  writeRaw(frame: Buffer | string): void {
    if (this.closed) return;
    this.write(typeof frame === 'string' ? Buffer.from(frame) : frame);
  }

  /** Heartbeat: skipped while the client is not reading, since it would only add to the backlog. */
  heartbeat(frame: Buffer): void {
    if (!this.closed && !this.congested) this.write(frame);
  }

  /** End the stream politely (gateway shutdown). */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.res.end();
  }

  /** Drop everything still queued; called once from the gateway's cleanup on the response's `close`. */
  dispose(): void {
    this.closed = true;
    this.pending.length = 0;
    this.pendingBytes = 0;
    this.outbox.length = 0;
    this.outboxBytes = 0;
    this.held = null;
    this.lastOffered = undefined;
    this.res.off('drain', this.onDrain);
  }

  private enqueue(event: SseEvent, frame: Buffer, verdict: MaybePromise<boolean> | undefined): void {
    this.pending.push({ event, frame, verdict });
    this.pendingBytes += frame.length;
    if (this.overLimit()) return;
    void this.pump();
  }

  /** Drain the ACL queue in order; an async verdict holds back every later event of this connection. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.pending.length > 0 && this.held === null && !this.closed) {
        const item = this.pending[0] as Pending;
        let verdict = item.verdict ?? this.host.gate(this, item.event);
        if (verdict !== true && verdict !== false) {
          item.verdict = verdict;
          verdict = await verdict;
        }
        if (this.closed) return;
        this.pending.shift();
        this.pendingBytes -= item.frame.length;
        if (verdict) this.writeEvent(item.frame);
      }
    } finally {
      this.pumping = false;
    }
  }

  private writeEvent(frame: Buffer): void {
    if (this.closed) return;
    this.host.delivered();
    this.write(frame);
  }

  private write(frame: Buffer): void {
    if (this.closed) return;
    if (this.congested) {
      this.outbox.push(frame);
      this.outboxBytes += frame.length;
      this.overLimit();
      return;
    }
    if (!this.res.write(frame)) {
      this.congested = true;
      this.res.once('drain', this.onDrain);
      this.overLimit();
    }
    // compression() buffers until flushed; it skips `no-transform` responses, but flush if it is there.
    (this.res as Response & { flush?: () => void }).flush?.();
  }

  private readonly onDrain = (): void => {
    this.congested = false;
    if (this.closed) return;
    this.res.cork();
    while (this.outbox.length > 0 && !this.congested) {
      const frame = this.outbox.shift() as Buffer;
      this.outboxBytes -= frame.length;
      if (!this.res.write(frame)) {
        this.congested = true;
        this.res.once('drain', this.onDrain);
      }
    }
    this.res.uncork();
  };

  /** Close a client that is too far behind; it resumes through Last-Event-ID. */
  private overLimit(): boolean {
    if (this.bufferedBytes <= this.host.maxBufferedBytes) return false;
    if (!this.closed) {
      this.closed = true;
      this.host.overflowed(this);
      this.res.destroy();
    }
    return true;
  }
}
