/**
 * Bytes out: the one place that writes to a stream's socket. It owns the direct-socket path, batching within
 * a tick (cork from the second event, one uncork per tick), the outbox while the client is not reading, and
 * the flush that compression middleware needs.
 */
import { OutgoingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Response } from 'express';
import type { EncodedFrame } from '../bus/event';

/** A corked socket is flushed early past this many bytes, so a burst never waits on the tick's end. */
const FLUSH_CORKED_AT = 64 * 1024;

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

/**
 * The per-tick batch shared by a gateway's writers: from the second event within one tick, writers cork
 * their sockets and are uncorked together when the tick's writes are done, so a burst leaves as one writev
 * per connection while a lone event is written at once.
 */
export class WriteBatch {
  private eventsThisTick = 0;
  private active = false;
  private corked: StreamWriter[] = [];
  private readonly endTick = (): void => {
    this.eventsThisTick = 0;
    this.active = false;
    const corked = this.corked;
    this.corked = [];
    for (const writer of corked) writer.uncork();
  };

  /** Called once per event fanned out. */
  noteEvent(): void {
    if (++this.eventsThisTick === 1) process.nextTick(this.endTick);
    else this.active = true;
  }

  /** True from the second event within the current tick. */
  get batching(): boolean {
    return this.active;
  }

  /** Uncork `writer` when the current tick ends. */
  uncorkLater(writer: StreamWriter): void {
    this.corked.push(writer);
  }
}

/** Told whenever a writer's backlog grew (outbox or Node's buffer), to check the stream's limit. */
export interface BacklogCheck {
  overLimit(): unknown;
}

/** Writes one stream's frames, queueing them while the client does not read. */
export class StreamWriter {
  private readonly socket: Socket | undefined;
  private readonly flush: (() => void) | undefined;
  private outbox: Buffer[] | undefined;
  private outboxBytes = 0;
  private congestedNow = false;
  private corked = false;
  private closed = false;
  /** Created on first congestion only: most streams never need it. */
  private drainListener: (() => void) | undefined;

  /**
   * @param res - the response, its headers already sent.
   * @param batch - the gateway's per-tick batch.
   * @param backlog - told whenever the backlog grew (an object, not a closure: one less allocation per stream).
   */
  constructor(
    private readonly res: Response,
    private readonly batch: WriteBatch,
    private readonly backlog: BacklogCheck,
  ) {
    this.socket = directSocket(res);
    // compression() buffers until flushed; it skips `no-transform` responses, but flush if it is there.
    const flush = (res as Response & { flush?: () => void }).flush;
    this.flush = typeof flush === 'function' ? flush.bind(res) : undefined;
  }

  /** True while the client is not reading and frames wait in the outbox. */
  get congested(): boolean {
    return this.congestedNow;
  }

  /** Bytes written but not yet taken by the client: the outbox and Node's buffers. */
  get bufferedBytes(): number {
    const node = this.socket ? this.socket.writableLength : this.res.writableLength;
    return this.outboxBytes + node;
  }

  /** Write one or more complete SSE messages. */
  write(encoded: EncodedFrame): void {
    if (this.closed) return;
    const bytes = this.socket ? encoded.chunk : encoded.frame;
    if (this.congestedNow) {
      this.outbox ??= [];
      this.outbox.push(bytes);
      this.outboxBytes += bytes.length;
      this.backlog.overLimit();
      return;
    }
    let ok: boolean;
    const socket = this.socket;
    if (socket) {
      if (!this.corked && this.batch.batching) {
        this.corked = true;
        socket.cork();
        this.batch.uncorkLater(this);
      }
      ok = socket.write(bytes);
      if (this.corked && socket.writableLength >= FLUSH_CORKED_AT) this.uncork();
    } else ok = this.res.write(bytes);
    if (!ok) {
      this.congestedNow = true;
      this.waitForDrain(this.socket ?? this.res);
      this.backlog.overLimit();
    }
    this.flush?.();
  }

  /** Flush what this tick wrote. */
  uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket?.uncork();
  }

  /** Stop writing and drop the outbox; called once when the stream closes. */
  dispose(): void {
    this.closed = true;
    this.outbox = undefined;
    this.outboxBytes = 0;
    if (this.drainListener) (this.socket ?? this.res).off('drain', this.drainListener);
  }

  private waitForDrain(target: Socket | Response): void {
    this.drainListener ??= () => this.onDrain();
    target.once('drain', this.drainListener);
  }

  private onDrain(): void {
    this.congestedNow = false;
    const outbox = this.outbox;
    if (this.closed || outbox === undefined) return;
    const target = this.socket ?? this.res;
    target.cork();
    while (outbox.length > 0 && !this.congestedNow) {
      const bytes = outbox.shift() as Buffer;
      this.outboxBytes -= bytes.length;
      if (!target.write(bytes)) {
        this.congestedNow = true;
        this.waitForDrain(target);
      }
    }
    target.uncork();
    this.flush?.();
  }
}
