/**
 * Where this instance stands in the shared event sequence, independent of any transport: the epoch, the
 * newest sequence accounted for (delivered, or known to be of no interest), and the replay barrier that
 * waits until the live stream has passed a given head. It knows nothing of Redis: messages, history
 * reads and pings all come in as `(epoch, seq)` pairs.
 *
 * Per-channel routing means an instance legitimately skips other channels' numbers, so a jump in the
 * sequence is not loss; the only gap it can see is between what it had and what a history still holds.
 */
import { formatEventId } from '../../protocol/event-id';

interface Waiter {
  readonly epoch: string;
  readonly seq: number;
  readonly resolve: (reached: boolean) => void;
}

/** Events `from` to `to` (inclusive) that a history no longer held. */
export interface MissedRange {
  readonly from: number;
  readonly to: number;
}

/** Tracks epoch and last sequence, drops duplicates, and resolves barrier waiters. */
export class Sequencer {
  #epoch = '';
  #lastSeq = 0;
  #started = false;
  readonly #waiters = new Set<Waiter>();

  /**
   * @param barrierTimeoutMs - how long {@link Sequencer.reach} waits before it answers `false`.
   * @param onRestart - told when the sequence restarts under a new epoch after events of the old one.
   */
  constructor(
    private readonly barrierTimeoutMs: number,
    private readonly onRestart: (previous: string, next: string) => void = () => {},
  ) {}

  /** The current epoch; empty before anything is known. */
  get epoch(): string {
    return this.#epoch;
  }

  /** The newest sequence accounted for in {@link Sequencer.epoch}. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** True once a starting point was taken: later gaps are read from the history instead. */
  get started(): boolean {
    return this.#started;
  }

  /** The id of the newest event accounted for, if any. */
  get head(): string | undefined {
    return this.#epoch === '' || this.#lastSeq === 0 ? undefined : formatEventId(this.#epoch, this.#lastSeq);
  }

  /** Barrier waiters not settled yet. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /**
   * Account for an event: true when it is new (deliver it), false for a duplicate. A foreign epoch is a
   * restarted sequence, so everything in it is new.
   */
  accept(epoch: string, seq: number): boolean {
    if (epoch !== this.#epoch) this.enter(epoch);
    else if (seq <= this.#lastSeq) return false;
    this.advance(seq);
    return true;
  }

  /** Everything up to `seq` in `epoch` is accounted for (a ping's or a history read's head). */
  observe(epoch: string, seq: number): void {
    this.enter(epoch);
    this.advance(seq);
  }

  /** Switch to `epoch` (no-op when current): the sequence starts over at 0. */
  enter(epoch: string): void {
    if (epoch === this.#epoch) return;
    if (this.#epoch !== '' && this.#lastSeq > 0) this.onRestart(this.#epoch, epoch);
    this.#epoch = epoch;
    this.#lastSeq = 0;
  }

  /** Take the starting point: `head` of `epoch`, or nothing when the history is empty (`epoch` is `''`). */
  start(epoch: string, head: number): void {
    this.#started = true;
    if (epoch !== '') this.observe(epoch, head);
  }

  /** What a history whose oldest entry is `firstSeq` no longer holds of the current epoch, if anything. */
  missedBefore(firstSeq: number): MissedRange | null {
    if (this.#lastSeq === 0 || firstSeq <= this.#lastSeq + 1) return null;
    return { from: this.#lastSeq + 1, to: firstSeq - 1 };
  }

  /**
   * Resolve `true` once `seq` of `epoch` is accounted for, `false` when the epoch changes first, the
   * timeout passes, or {@link Sequencer.cancel} is called.
   *
   * @param live - whether the stream is flowing now; when it is not, even a passed head waits for it.
   * @param nudge - called once if the barrier has to wait (e.g. to send a ping that carries the head).
   */
  reach(epoch: string, seq: number, live: boolean, nudge: () => void = () => {}): Promise<boolean> {
    if (live && this.#epoch === epoch && this.#lastSeq >= seq) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => finish(false), this.barrierTimeoutMs);
      timer.unref();
      const waiter: Waiter = { epoch, seq, resolve: (reached) => finish(reached) };
      const finish = (reached: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        resolve(reached);
      };
      this.#waiters.add(waiter);
      nudge();
    });
  }

  /** Answer every waiting barrier `false` (the bus is closing). */
  cancel(): void {
    for (const waiter of [...this.#waiters]) waiter.resolve(false);
  }

  private advance(seq: number): void {
    this.#lastSeq = Math.max(this.#lastSeq, seq);
    for (const waiter of this.#waiters) {
      if (waiter.epoch !== this.#epoch) waiter.resolve(false);
      else if (this.#lastSeq >= waiter.seq) waiter.resolve(true);
    }
  }
}
