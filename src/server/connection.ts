/**
 * One open stream: ordered delivery through the ACL, a bounded outgoing buffer, the replay hold,
 * and a single idempotent close path.
 */
import { OutgoingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Response } from 'express';
import { type EncodedFrame, encodeEvent, encodeFrame } from '../bus/event';
import type { Topic } from '../protocol/channels';
import { parseEventId } from '../protocol/event-id';
import type { MaybePromise, Principal, SseEvent } from '../types';

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
  /** True from the second event within one tick: writes are then corked and leave together. */
  readonly batching: boolean;
  /** Uncork `connection` once the current tick's writes are done. */
  uncorkLater(connection: Connection): void;
}

/** A corked socket is flushed early past this many bytes, so a burst never waits on the tick's end. */
const FLUSH_CORKED_AT = 64 * 1024;

interface Pending {
  readonly event: SseEvent;
  readonly encoded: EncodedFrame;
  verdict: MaybePromise<boolean> | undefined;
}

/** Node's internals that tell whether raw chunks may go straight to the socket. */
interface ResponseInternals {
  chunkedEncoding?: boolean;
  outputData?: unknown[];
}

/**
 * The socket of `res` when whole HTTP/1.1 chunks can be written to it directly: the headers are out,
 * the body is chunked, nothing is queued in the response, and no middleware wrapped `res.write`
 * (compression does). `res.write` would frame each write as three socket writes plus a cork; one
 * pre-framed chunk per event is one write. Otherwise `undefined`, and `res.write` is used.
 */
function directSocket(res: Response): Socket | undefined {
  const socket = res.socket as (Socket & { _httpMessage?: unknown }) | null;
  const internals = res as unknown as ResponseInternals;
  if (
    socket === null ||
    socket._httpMessage !== res ||
    internals.chunkedEncoding !== true ||
    internals.outputData?.length !== 0 ||
    res.write !== OutgoingMessage.prototype.write
  ) {
    return undefined;
  }
  return socket;
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
  private outbox: Buffer[] | undefined;
  private outboxBytes = 0;
  private congested = false;
  private corked = false;
  private closed = false;
  private readonly socket: Socket | undefined;
  private readonly flush: (() => void) | undefined;
  /** Created on first congestion only: most connections never need it. */
  private drainListener: (() => void) | undefined;
  /** When the gateway ends this stream for its age (`limits.maxConnectionAgeMs`); `Infinity` for never. */
  expiresAt = Number.POSITIVE_INFINITY;

  /**
   * @param id - connection id, sent in `sse:ready`.
   * @param principal - who is connected.
   * @param topics - the subscriptions, as parsed.
   * @param res - the response the stream is written to (its headers already sent).
   */
  constructor(
    readonly id: string,
    readonly principal: Principal,
    readonly topics: readonly Topic[],
    readonly res: Response,
    private readonly host: ConnectionHost,
  ) {
    this.socket = directSocket(res);
    // compression() buffers until flushed; it skips `no-transform` responses, but flush if it is there.
    const flush = (res as Response & { flush?: () => void }).flush;
    this.flush = typeof flush === 'function' ? flush.bind(res) : undefined;
  }

  /** True once the stream is closed for any reason. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes waiting for this client: events held during a replay, ACL queue, our outbox, Node's buffers. */
  get bufferedBytes(): number {
    const node = this.socket ? this.socket.writableLength : this.res.writableLength;
    return this.pendingBytes + this.heldBytes + this.outboxBytes + node;
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

  /**
   * Deliver `replayed` (already in order), then the held live events newer than `headId`.
   *
   * @param replayed - events from the bus's history.
   * @param headId - the newest id the replay covered; held events up to it are duplicates.
   */
  release(replayed: readonly SseEvent[], headId: string | undefined): void {
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
      const seq = parseEventId(event.id);
      if (head && seq && seq.epoch === head.epoch && seq.seq <= head.seq) continue;
      this.enqueue(event, encodeEvent(event), undefined);
    }
  }

  /** Write a frame outside the event flow (control events, heartbeats). */
  writeRaw(frame: EncodedFrame | string): void {
    this.write(typeof frame === 'string' ? encodeFrame(frame) : frame);
  }

  /** Heartbeat: skipped while the client is not reading, since it would only add to the backlog. */
  heartbeat(frame: EncodedFrame): void {
    if (!this.congested) this.write(frame);
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
    this.pending = undefined;
    this.pendingBytes = 0;
    this.outbox = undefined;
    this.outboxBytes = 0;
    this.held = undefined;
    this.heldBytes = 0;
    this.lastOffered = undefined;
    if (this.drainListener) (this.socket ?? this.res).off('drain', this.drainListener);
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
      const pending = this.pending;
      while (pending !== undefined && pending.length > 0 && this.held === undefined && !this.closed) {
        const item = pending[0] as Pending;
        let verdict = item.verdict ?? this.host.gate(this, item.event);
        if (verdict !== true && verdict !== false) {
          item.verdict = verdict;
          verdict = await verdict;
        }
        if (this.closed) return;
        pending.shift();
        this.pendingBytes -= item.encoded.frame.length;
        if (verdict) this.writeEvent(item.encoded);
      }
    } finally {
      this.pumping = false;
    }
  }

  private writeEvent(encoded: EncodedFrame): void {
    if (this.closed) return;
    this.host.delivered();
    this.write(encoded);
  }

  private write(encoded: EncodedFrame): void {
    if (this.closed) return;
    const bytes = this.socket ? encoded.chunk : encoded.frame;
    if (this.congested) {
      this.outbox ??= [];
      this.outbox.push(bytes);
      this.outboxBytes += bytes.length;
      this.overLimit();
      return;
    }
    let ok: boolean;
    const socket = this.socket;
    if (socket) {
      // Several events within one tick leave as one writev, as res.write would batch them; a lone event
      // is written at once, without the cork's bookkeeping.
      if (!this.corked && this.host.batching) {
        this.corked = true;
        socket.cork();
        this.host.uncorkLater(this);
      }
      ok = socket.write(bytes);
      if (this.corked && socket.writableLength >= FLUSH_CORKED_AT) this.uncork();
    } else ok = this.res.write(bytes);
    if (!ok) {
      this.congested = true;
      this.waitForDrain(this.socket ?? this.res);
      this.overLimit();
    }
    this.flush?.();
  }

  /** Flush what this tick wrote. */
  uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket?.uncork();
  }

  private waitForDrain(target: Socket | Response): void {
    this.drainListener ??= () => this.onDrain();
    target.once('drain', this.drainListener);
  }

  private onDrain(): void {
    this.congested = false;
    const outbox = this.outbox;
    if (this.closed || outbox === undefined) return;
    const target = this.socket ?? this.res;
    target.cork();
    while (outbox.length > 0 && !this.congested) {
      const bytes = outbox.shift() as Buffer;
      this.outboxBytes -= bytes.length;
      if (!target.write(bytes)) {
        this.congested = true;
        this.waitForDrain(target);
      }
    }
    target.uncork();
    this.flush?.();
  }

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
