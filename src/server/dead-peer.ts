/**
 * Dead-peer detection (`deadPeerTimeoutMs`): a stream whose peer vanished without a FIN (a laptop closed, a
 * mobile network gone, a NAT entry dropped) is destroyed once the kernel has been retransmitting its data
 * unacknowledged for the timeout, instead of holding its slot for the ~15 minutes of `tcp_retries2`.
 *
 * Heartbeats keep unacknowledged data on such a socket, so TCP keep-alive never fires, and Node cannot set
 * `TCP_USER_TIMEOUT`. The kernel's own view is read instead: one process-wide {@link DeadPeerScanner}, shared
 * by every gateway, reads `/proc/net/tcp` and `/proc/net/tcp6` while streams are open, every quarter of the
 * shortest timeout (at most 15 s). Nothing is done per event. Linux only; elsewhere, or when `/proc` cannot be
 * read, it does nothing and says so once.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { endianness } from 'node:os';
import { debuglog } from 'node:util';
import type { Logger } from '../types';
import { type Endianness, retransmittingSockets, socketKey } from './tcp-table';

/** Reads the TCP tables to scan (their text); rejects when they cannot be read. */
export type ReadTcpTables = () => Promise<readonly string[]>;

/** The longest wait between two scans, in ms. */
export const MAX_SCAN_INTERVAL_MS = 15_000;

/** Ends a stream found dead; one per gateway, shared by its streams (no closure per stream). */
export type PeerGone = (owner: object) => void;

/** One watched stream: all that is kept per stream (about 150 bytes with its map entries). */
interface Watch {
  readonly owner: object;
  readonly key: string;
  readonly timeoutMs: number;
  readonly dead: PeerGone;
}

/** A socket seen retransmitting: since which scan, and with how many timeouts then. */
interface Suspect {
  readonly since: number;
  retransmits: number;
}

const debug = debuglog('sse-gateway');

/**
 * Errors that say the tables will never be readable here (no `/proc`, no permission): detection turns off.
 * Others (EMFILE, ENFILE, ENOMEM: an fd limit that dead peers themselves may have reached) only skip a scan.
 */
const UNREADABLE: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'ENOSYS']);

/**
 * Watches stream sockets and calls a stream's `dead` once its socket was seen retransmitting, with a count
 * of retransmission timeouts that never went down, on every scan for at least the stream's timeout.
 * A socket whose count drops (an ACK arrived between two scans) starts over.
 */
export class DeadPeerScanner {
  private readonly watches = new Map<object, Watch>();
  /** Nearly always one stream per socket key; an array only when several share one (HTTP/2). */
  private readonly byKey = new Map<string, Watch | Watch[]>();
  private readonly suspects = new Map<string, Suspect>();
  /** Timeouts of the watched streams, with how many streams have each: the scan interval follows the shortest. */
  private readonly timeouts = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private scheduledMs = Number.POSITIVE_INFINITY;
  private scanning = false;
  private off = false;
  /** A scan already failed for a passing reason (said once). */
  private failedOnce = false;
  /** The latest watcher's logger: where an unreadable table is reported. */
  private logger: Logger | undefined;

  /**
   * @param read - reads the tables; `undefined` where there are none (not Linux): every watch is then ignored.
   * @param order - byte order the tables were printed in. Defaults to `os.endianness()`.
   * @param now - the clock, in ms. Defaults to `Date.now`.
   */
  constructor(
    private readonly read: ReadTcpTables | undefined,
    private readonly order: Endianness = endianness(),
    private readonly now: () => number = Date.now,
  ) {}

  /** Streams watched now. */
  get size(): number {
    return this.watches.size;
  }

  /** True while a scan is scheduled. */
  get running(): boolean {
    return this.timer !== undefined;
  }

  /**
   * Watch one stream until {@link DeadPeerScanner.unwatch} (or until it is found dead, when it is unwatched
   * before `dead` is called).
   *
   * @param owner - the stream, as the handle for `unwatch`.
   * @param key - its socket's {@link socketKey}.
   * @param timeoutMs - how long its data may go unacknowledged.
   * @param dead - ends the stream, given `owner`.
   * @param logger - told once, should the tables turn out unreadable.
   */
  watch(owner: object, key: string, timeoutMs: number, dead: PeerGone, logger: Logger): void {
    if (this.off) return;
    if (this.read === undefined) {
      this.turnOff(`dead-peer detection is off: it reads /proc/net/tcp, which ${process.platform} does not have.`);
      return;
    }
    this.logger = logger;
    this.unwatch(owner);
    const watch: Watch = { owner, key, timeoutMs, dead };
    this.watches.set(owner, watch);
    const sharing = this.byKey.get(key);
    if (sharing === undefined) this.byKey.set(key, watch);
    else if (Array.isArray(sharing)) sharing.push(watch);
    else this.byKey.set(key, [sharing, watch]);
    this.timeouts.set(timeoutMs, (this.timeouts.get(timeoutMs) ?? 0) + 1);
    this.schedule();
  }

  /** Stop watching `owner` (its stream closed). Unknown owners are ignored. */
  unwatch(owner: object): void {
    const watch = this.watches.get(owner);
    if (watch === undefined) return;
    this.watches.delete(owner);
    const sharing = this.byKey.get(watch.key);
    const rest = Array.isArray(sharing) ? sharing.filter((other) => other !== watch) : [];
    if (rest.length === 0) {
      this.byKey.delete(watch.key);
      this.suspects.delete(watch.key);
    } else this.byKey.set(watch.key, rest.length === 1 ? (rest[0] as Watch) : rest);
    const count = (this.timeouts.get(watch.timeoutMs) ?? 1) - 1;
    if (count === 0) this.timeouts.delete(watch.timeoutMs);
    else this.timeouts.set(watch.timeoutMs, count);
    if (this.watches.size === 0) this.stop();
  }

  /**
   * One scan: read the tables, update the suspects, end the streams whose socket has been retransmitting for
   * their timeout. Called by the scanner's own timer; public for tests.
   */
  async scan(): Promise<void> {
    if (this.read === undefined || this.off) return;
    let tables: readonly string[];
    try {
      tables = await this.read();
    } catch (cause) {
      const why = (cause as Error).message ?? cause;
      if (!UNREADABLE.has((cause as NodeJS.ErrnoException).code ?? '')) {
        // EMFILE and the like pass: the next scan tries again, with every watch and suspect kept.
        if (!this.failedOnce)
          this.logger?.warn(`sse-gateway: a dead-peer scan could not read the TCP tables (${why}); retrying.`);
        this.failedOnce = true;
        return;
      }
      this.turnOff(
        `dead-peer detection is off: the TCP tables cannot be read (${why}); streams whose peer vanished are freed only by the kernel.`,
        true,
      );
      return;
    }
    const now = this.now();
    const stuck = new Map<string, number>();
    for (const table of tables) retransmittingSockets(table, this.order, stuck);
    for (const [key, suspect] of this.suspects) {
      const retransmits = stuck.get(key);
      if (retransmits === undefined || retransmits < suspect.retransmits) this.suspects.delete(key);
    }
    for (const [key, retransmits] of stuck) {
      const sharing = this.byKey.get(key);
      if (sharing === undefined) continue;
      const suspect = this.suspects.get(key);
      if (suspect === undefined) {
        this.suspects.set(key, { since: now, retransmits });
        continue;
      }
      suspect.retransmits = retransmits;
      for (const watch of Array.isArray(sharing) ? [...sharing] : [sharing]) {
        if (now - suspect.since >= watch.timeoutMs) this.end(watch);
      }
    }
  }

  private end(watch: Watch): void {
    this.unwatch(watch.owner);
    try {
      watch.dead(watch.owner);
    } catch (cause) {
      this.logger?.error('sse-gateway: ending a stream whose peer is gone failed', cause);
    }
  }

  private interval(): number {
    let shortest = MAX_SCAN_INTERVAL_MS;
    for (const timeoutMs of this.timeouts.keys()) shortest = Math.min(shortest, Math.floor(timeoutMs / 4));
    return Math.max(1, shortest);
  }

  private schedule(): void {
    if (this.off || this.scanning || this.watches.size === 0) return;
    const interval = this.interval();
    if (this.timer !== undefined && this.scheduledMs <= interval) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.scheduledMs = interval;
    this.timer = setTimeout(() => void this.tick(), interval);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    this.scheduledMs = Number.POSITIVE_INFINITY;
    this.scanning = true;
    try {
      await this.scan();
    } finally {
      this.scanning = false;
    }
    this.schedule();
  }

  private stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.scheduledMs = Number.POSITIVE_INFINITY;
    this.suspects.clear();
  }

  private turnOff(message: string, warn = false): void {
    this.off = true;
    if (warn && this.logger !== undefined) this.logger.warn(`sse-gateway: ${message}`);
    else debug(message);
    this.stop();
    this.watches.clear();
    this.byKey.clear();
    this.timeouts.clear();
  }
}

/** Reads `/proc/net/tcp` and `/proc/net/tcp6` (the latter may be absent: IPv6 disabled). */
async function readProcTables(): Promise<readonly string[]> {
  const [tcp, tcp6] = await Promise.all([
    readFile('/proc/net/tcp', 'latin1'),
    readFile('/proc/net/tcp6', 'latin1').catch((cause: NodeJS.ErrnoException) => {
      if (cause.code === 'ENOENT') return '';
      throw cause;
    }),
  ]);
  return [tcp, tcp6];
}

/** The process's one scanner, shared by every gateway, so that two gateways do not both read `/proc`. */
export const deadPeers = new DeadPeerScanner(process.platform === 'linux' ? readProcTables : undefined);

/**
 * Watch the stream answered on `req` with the process's scanner. When its peer is found gone, `onDead` is
 * called with `owner` (count and label the close there, then {@link destroyTransport} its request, which closes
 * the response through its normal `close` path). A request without a TCP peer (a Unix socket) is not watched.
 *
 * @param owner - the stream, the handle for {@link unwatchPeer}.
 * @param req - its request.
 * @param timeoutMs - `deadPeerTimeoutMs`.
 * @param onDead - one function per gateway, shared by its streams; must not throw.
 * @param logger - the gateway's logger.
 */
export function watchPeer(
  owner: object,
  req: IncomingMessage,
  timeoutMs: number,
  onDead: PeerGone,
  logger: Logger,
): void {
  const { localPort, remoteAddress, remotePort } = req.socket;
  if (localPort === undefined || remoteAddress === undefined || remotePort === undefined) return;
  deadPeers.watch(owner, socketKey(localPort, remoteAddress, remotePort), timeoutMs, onDead, logger);
}

/** Stop watching `owner`'s peer: its stream closed. */
export function unwatchPeer(owner: object): void {
  deadPeers.unwatch(owner);
}

/**
 * Destroy what carries `req`: its TCP (or TLS) socket, or for HTTP/2 the whole session (its `req.socket` is a
 * proxy whose `destroy` would end this one stream and leave the dead connection open). Every stream on it
 * closes through its own `close` event.
 *
 * @param req - a request of `node:http`, `node:https` or the `node:http2` compatibility API.
 */
export function destroyTransport(req: IncomingMessage): void {
  const session = (req as unknown as { stream?: ServerHttp2Stream }).stream?.session;
  if (session !== undefined) session.destroy();
  else req.socket.destroy();
}
