/**
 * The newest event id of a client: the point every reconnect resumes from. Ids of one epoch are ordered
 * by their sequence, so an id at or below the newest is a repeat and its event is not delivered again;
 * an id of another epoch (the server's history was reset) replaces the old one.
 */
import { type EventId, parseEventId } from '../protocol/event-id';

/** How often at most the id is written to sessionStorage, in ms. */
const PERSIST_INTERVAL_MS = 250;

function storage(): Storage | undefined {
  try {
    return typeof sessionStorage === 'undefined' ? undefined : sessionStorage;
  } catch {
    // A sandboxed frame or disabled storage throws on access.
    return undefined;
  }
}

/** The newest id, optionally kept in sessionStorage. */
export class LastEventId {
  private id: string | undefined;
  private parsed: EventId | null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly onPageHide = (): void => this.flush();

  /**
   * @param initial - an id to start from (a tab taking over a shared stream); wins over the stored one.
   * @param persistKey - the sessionStorage key, or undefined to keep the id in memory only.
   */
  constructor(
    initial: string | undefined,
    private readonly persistKey: string | undefined,
  ) {
    let start = initial;
    if (start === undefined && persistKey !== undefined) {
      try {
        start = storage()?.getItem(persistKey) ?? undefined;
      } catch {
        start = undefined;
      }
    }
    this.id = start === '' || (start !== undefined && /[\r\n\0]/.test(start)) ? undefined : start;
    this.parsed = this.id === undefined ? null : parseEventId(this.id);
    if (persistKey !== undefined && typeof addEventListener === 'function') {
      addEventListener('pagehide', this.onPageHide);
    }
  }

  /** The newest id, or undefined before the first event. */
  get value(): string | undefined {
    return this.id;
  }

  /**
   * Take the id of an arriving event; false when it repeats one already seen (same epoch, sequence at or
   * below the newest), so the event must not be delivered again.
   *
   * @param id - the event's id (`''` when it had none: always delivered, nothing recorded).
   */
  accept(id: string): boolean {
    if (id === '') return true;
    const parsed = parseEventId(id);
    const newest = this.parsed;
    if (parsed !== null && newest !== null && parsed.epoch === newest.epoch && parsed.seq <= newest.seq) return false;
    this.id = id;
    this.parsed = parsed;
    if (this.persistKey !== undefined && this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), PERSIST_INTERVAL_MS);
    }
    return true;
  }

  /** Write the id to sessionStorage now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.persistKey === undefined || this.id === undefined) return;
    try {
      storage()?.setItem(this.persistKey, this.id);
    } catch {
      // Full or disabled storage: the page simply starts over after a reload.
    }
  }

  /** Write, and stop listening for the page being hidden. */
  dispose(): void {
    this.flush();
    if (this.persistKey !== undefined && typeof removeEventListener === 'function') {
      removeEventListener('pagehide', this.onPageHide);
    }
  }
}
