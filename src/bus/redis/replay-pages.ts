/**
 * Reading the gap after a Last-Event-ID from the history stream, in pages, for `../history.ts`'s scan.
 *
 * The gap may be as long as the history (50,000 events by default), since a replay window counts only the
 * stream's own events, so it is read {@link REPLAY_PAGE} entries at a time and the scan stops at the first
 * page that decides. After a deploy every stream of an instance resumes at about the same time, with gaps
 * that overlap (they all end near the head): without sharing, each would read the same pages again, up to
 * the whole history apiece. So full pages, aligned on multiples of {@link REPLAY_PAGE}, are kept decoded for
 * a few seconds and a read in flight is shared; only the partial page at the head is read by each replay. Within an epoch a sequence always names the same message,
 * so a kept page can only hold more than Redis still does (entries trimmed since), never something else.
 */
import type { ReplayQuery, ReplayResult } from '../../types';
import { createEvent } from '../event';
import { GapScan, type HistoryRecord } from '../history';
import type { Fetch } from './receiver';
import type { FetchReply } from './scripts';
import { decodeMessage, type WireMessage } from './wire';

/** History entries per fetch. */
export const REPLAY_PAGE = 1000;

/** Decoded pages kept: by their messages' size (UTF-16), and long enough for a deploy's reconnects. */
const KEPT_PAGE_BYTES = 32 * 1024 * 1024;
const KEPT_PAGE_MS = 10_000;

/** A history entry as the scan sees it; the event is only built when its channel matches. */
interface ReplayRecord extends HistoryRecord {
  readonly message: WireMessage;
}

/** One read: the entries by their own sequence, and the last sequence it covers (held or not). */
interface PageRead {
  readonly bySeq: ReadonlyMap<number, ReplayRecord>;
  readonly until: number;
  readonly bytes: number;
}

/**
 * Decode a fetch of up to `count` entries. It covers every sequence up to its last entry, or up to the
 * head when it came back short (XRANGE found nothing more). A message whose sequence is not its entry's,
 * or that does not decode, leaves a hole.
 */
function decodePage(reply: FetchReply, count: number): PageRead {
  const bySeq = new Map<number, ReplayRecord>();
  let bytes = 0;
  for (const entry of reply.entries) {
    const message = entry.message === undefined ? null : decodeMessage(entry.message);
    if (message === null || message.seq !== entry.seq) continue;
    bySeq.set(message.seq, { channel: message.header.channel, time: message.header.time, message });
    bytes += 2 * (entry.message?.length ?? 0) + 200;
  }
  const last = reply.entries[reply.entries.length - 1];
  const until = reply.entries.length < count || last === undefined ? reply.head : last.seq;
  return { bySeq, until, bytes };
}

/** Feed `scan` from `page` up to what the page covers and the snapshot's head. */
function feed(scan: GapScan<ReplayRecord>, page: PageRead, headSeq: number): ReplayResult | undefined {
  const end = Math.min(page.until, headSeq);
  let result = scan.result;
  // A page that covers nothing new (another epoch, an empty stream) is a hole at `next`.
  if (end < scan.next) return scan.feed(undefined);
  while (result === undefined && scan.next <= end) result = scan.feed(page.bySeq.get(scan.next));
  return result;
}

/** A replay's answer, and the epoch and head of the snapshot it was read from (for the barrier). */
export interface ReplaySnapshot {
  readonly result: ReplayResult;
  readonly epoch: string;
  readonly head: number;
}

const toEvent = ({ message: { header, dataJson } }: ReplayRecord) =>
  createEvent(header.id, header.channel, dataJson, header.time, header.users);

/** A page kept: its epoch, where it starts, and when it was read. */
interface Kept {
  readonly page: PageRead;
  readonly epoch: string;
  readonly start: number;
  readonly at: number;
}

/** Whether `a` leaves before `b` (`epoch` is the newest page's): stale first, then another epoch's, then the older. */
function leavesFirst(a: Kept, b: Kept, epoch: string, now: number): boolean {
  const staleA = now - a.at > KEPT_PAGE_MS;
  if (staleA !== now - b.at > KEPT_PAGE_MS) return staleA;
  const foreignA = a.epoch !== epoch;
  if (foreignA !== (b.epoch !== epoch)) return foreignA;
  return a.start < b.start;
}

/**
 * Pages kept for a while, up to a byte budget. Over it, the page furthest from the head leaves, not the
 * least recently used: every gap ends at the head and a replay reads oldest first, so once the gaps
 * outgrow the budget LRU would evict each page just before the next replay needs it.
 */
class KeptPages {
  readonly #pages = new Map<string, Kept>();
  #bytes = 0;
  /** Drops stale pages while any is kept, so a burst of replays does not leave its pages for good. */
  #sweep: NodeJS.Timeout | undefined;

  constructor(private readonly budget: number) {}

  /** Bytes of the pages kept now. */
  get bytes(): number {
    return this.#bytes;
  }

  get(key: string, now: number): PageRead | undefined {
    const kept = this.#pages.get(key);
    if (kept === undefined || now - kept.at <= KEPT_PAGE_MS) return kept?.page;
    this.delete(key);
    return undefined;
  }

  set(key: string, kept: Kept): void {
    this.delete(key);
    this.#pages.set(key, kept);
    this.#bytes += kept.page.bytes;
    this.scheduleSweep();
    while (this.#bytes > this.budget) {
      let victim: [string, Kept] | undefined;
      for (const pair of this.#pages) {
        if (victim === undefined || leavesFirst(pair[1], victim[1], kept.epoch, kept.at)) victim = pair;
      }
      if (victim === undefined) break;
      this.delete(victim[0]);
    }
  }

  clear(): void {
    this.#pages.clear();
    this.#bytes = 0;
    clearTimeout(this.#sweep);
    this.#sweep = undefined;
  }

  private scheduleSweep(): void {
    if (this.#sweep !== undefined) return;
    this.#sweep = setTimeout(() => {
      this.#sweep = undefined;
      const now = Date.now();
      for (const [key, kept] of this.#pages) if (now - kept.at > KEPT_PAGE_MS) this.delete(key);
      if (this.#pages.size > 0) this.scheduleSweep();
    }, KEPT_PAGE_MS + 1);
    this.#sweep.unref();
  }

  private delete(key: string): void {
    const kept = this.#pages.get(key);
    if (kept === undefined) return;
    this.#bytes -= kept.page.bytes;
    this.#pages.delete(key);
  }
}

/** The gap reader of one Redis bus, with the pages its replays share. */
export class ReplayPages {
  readonly #kept: KeptPages;
  readonly #reading = new Map<string, Promise<PageRead>>();

  /**
   * @param fetch - the fetch script (`replay` mode answers no entries for another epoch).
   * @param keptBytes - the budget of kept pages. Defaults to 32 MiB.
   */
  constructor(
    private readonly fetch: Fetch,
    keptBytes = KEPT_PAGE_BYTES,
  ) {
    this.#kept = new KeptPages(keptBytes);
  }

  /**
   * Replay after `last`: the head read first fixes the snapshot (epoch and head); the gap is then read in
   * pages aligned on multiples of {@link REPLAY_PAGE}, each full one shared, the last (partial) one fresh.
   * A short gap within the head's page costs two small reads.
   *
   * @param query - already bound to the history's window.
   */
  async replay(last: { readonly epoch: string; readonly seq: number }, query: ReplayQuery): Promise<ReplaySnapshot> {
    const { epoch, head } = await this.fetch(last.epoch, last.seq, 0, 'head');
    const scan = new GapScan({ epoch, headSeq: head }, last, query, toEvent);
    let result = scan.result;
    while (result === undefined) {
      const start = Math.floor((scan.next - 1) / REPLAY_PAGE) * REPLAY_PAGE;
      const page =
        start + REPLAY_PAGE <= head
          ? await this.page(epoch, start)
          : decodePage(await this.fetch(epoch, scan.next - 1, head - scan.next + 1, 'replay'), head - scan.next + 1);
      result = feed(scan, page, head);
    }
    return { result, epoch, head };
  }

  /** Bytes of the decoded pages kept for other replays now (at most the budget, none a while after the last read). */
  get keptBytes(): number {
    return this.#kept.bytes;
  }

  /** Forget the kept pages. */
  clear(): void {
    this.#kept.clear();
  }

  /** The full page after `start` (sequences `start + 1` to `start + REPLAY_PAGE`), kept or read once. */
  private page(epoch: string, start: number): Promise<PageRead> {
    const key = `${epoch}:${start}`;
    const kept = this.#kept.get(key, Date.now());
    if (kept !== undefined) return Promise.resolve(kept);
    let reading = this.#reading.get(key);
    if (reading === undefined) {
      reading = this.fetch(epoch, start, REPLAY_PAGE, 'replay')
        .then((reply) => {
          const page = decodePage(reply, REPLAY_PAGE);
          // Entries past the page (after a trimmed front) belong to the next one.
          const end = start + REPLAY_PAGE;
          for (const seq of page.bySeq.keys()) if (seq > end) (page.bySeq as Map<number, ReplayRecord>).delete(seq);
          const aligned = { ...page, until: end };
          this.#kept.set(key, { page: aligned, epoch, start, at: Date.now() });
          return aligned;
        })
        .finally(() => this.#reading.delete(key));
      this.#reading.set(key, reading);
    }
    return reading;
  }
}
