/**
 * The Redis bus: one sequence, one history and one fan-out for every instance of a BFF. This file wires
 * the parts and is the data flow in one page:
 *
 * - publish: `outbox.ts` sends (or holds, while Redis is unreachable) one Lua script per publish
 *   (`scripts.ts`: epoch, INCR, XADD, PUBLISH) on bytes from `wire.ts`; `command-watchdog.ts` notices a
 *   command link that died silently;
 * - receive: `subscriber.ts` (lifecycle, recovery buffer, watchdog) hands messages to `receiver.ts`,
 *   which asks `sequencer.ts` whether they are new and `interest.ts` whether they are wanted;
 * - replay: `replay-pages.ts` reads the gap after the id in pages (shared by concurrent replays) for
 *   `../history.ts`'s scan, then the sequencer's barrier.
 *
 * Fan-out is per channel (see interest.ts), so gaps cannot be seen in the sequence (an instance
 * legitimately skips other channels' numbers) and loss is detected from the connection instead: after
 * every reconnect the subscriber resubscribes and reads the missed range from the history stream, and a
 * watchdog ping through pub/sub catches links that died silently. One bus-wide channel would make gaps
 * visible but costs every instance every event (and its JSON parse), which per-channel routing avoids.
 *
 * Patterns are channels too: every publish also goes to `{prefix}:pt:<key>` for each pattern key of its
 * channel, so no instance needs PSUBSCRIBE (interest.ts says why that matters).
 *
 * Sharded mode (the default on a Cluster) uses SPUBLISH/SSUBSCRIBE, so a message stays inside the shard
 * that owns the `{prefix}` slot; the subscriber follows that slot's owner (cluster.ts). Duplicates (an
 * exact and a pattern channel) are dropped by sequence like any other.
 */
import { randomUUID } from 'node:crypto';
import { patternKeysOf } from '../../protocol/channels';
import { SseError } from '../../protocol/errors';
import { formatEventId, parseEventId } from '../../protocol/event-id';
import type {
  Bus,
  BusHistoryStatus,
  BusListener,
  BusPublishOptions,
  BusSignal,
  BusSignalListener,
  BusStatus,
  Logger,
  RedisBusOptions,
  ReplayQuery,
  ReplayResult,
  SseEvent,
} from '../../types';
import { createEpoch } from '../epoch';
import { checkIdempotencyKey, createEvent, preparePublish, repeatedPublish } from '../event';
import { boundQuery, type HistoryWindow } from '../history';
import { checkSignal } from '../signal';
import {
  COMMAND_TIMEOUT_MS,
  type CommandClient,
  lacksShardedPubSub,
  loadIoRedis,
  logOutages,
  OWN_CONNECTION,
  quit,
  type SubscriberClient,
  unavailable,
  withTimeout,
} from './clients';
import { followSlotOwner, isCluster, keySlot } from './cluster';
import { CommandWatchdog } from './command-watchdog';
import { Interest } from './interest';
import { parseRedisBusOptions, type RedisBusConfig } from './options';
import { Outbox } from './outbox';
import { Receiver } from './receiver';
import { ReplayPages, type ReplaySnapshot } from './replay-pages';
import {
  decodeFetchReply,
  decodePingReply,
  decodePublishReply,
  type FetchMode,
  type FetchReply,
  fetchCall,
  type HistoryFill,
  type PublishCommand,
  pingCall,
  publishCall,
  runScript,
  sendScript,
} from './scripts';
import { Sequencer } from './sequencer';
import { Subscriber } from './subscriber';
import { encodeHeaderTail, hashTag, type RedisNames, redisNames } from './wire';

/** How long a replay waits for the live stream to catch up with its snapshot. */
const BARRIER_TIMEOUT_MS = 3000;

/** The command connection and the subscriber connection, and whether the bus must close the former. */
interface Clients {
  readonly commands: CommandClient;
  readonly subscriber: SubscriberClient;
  readonly ownsCommands: boolean;
}

/**
 * `url`: two connections of our own. `redis`: the user's client for commands, a duplicate (or, sharded on
 * a Cluster, a follower of the slot's owner) for pub/sub.
 */
function openClients(config: RedisBusConfig, closed: () => boolean): Clients {
  const { connection, sharded, prefix } = config;
  if ('url' in connection) {
    const IoRedis = loadIoRedis().Redis;
    const open = () => new IoRedis(connection.url, OWN_CONNECTION) as unknown as SubscriberClient;
    return { commands: open(), subscriber: open(), ownsCommands: true };
  }
  const client = connection.redis;
  const commands = client as unknown as CommandClient;
  if (isCluster(client) && sharded) {
    const subscriber = followSlotOwner(client, keySlot(hashTag(prefix)), closed) as unknown as SubscriberClient;
    return { commands, subscriber, ownsCommands: false };
  }
  // Redis#duplicate takes options; Cluster#duplicate takes startup nodes first.
  const duplicate = isCluster(client)
    ? client.duplicate(undefined, { enableOfflineQueue: false, redisOptions: OWN_CONNECTION })
    : client.duplicate(OWN_CONNECTION);
  return { commands, subscriber: duplicate as unknown as SubscriberClient, ownsCommands: false };
}

class RedisBus implements Bus {
  readonly id = randomUUID();
  readonly #logger: Logger;
  readonly #names: RedisNames;
  readonly #sharded: boolean;
  readonly #publishCommand: PublishCommand;
  readonly #clients: Clients;
  readonly #sequencer: Sequencer;
  readonly #interest: Interest;
  readonly #receiver: Receiver;
  readonly #subscriber: Subscriber;
  readonly #outbox: Outbox;
  readonly #commandWatchdog: CommandWatchdog;
  readonly #publishIdPrefix: string;
  #history: HistoryWindow;
  readonly #replayPages: ReplayPages;
  /** The stream's length and oldest entry, as the last ping read them. */
  #fill: HistoryFill | undefined;
  #shutdown: Promise<void> | undefined;

  constructor(config: RedisBusConfig) {
    this.#logger = config.logger;
    this.#names = redisNames(config.prefix, this.id);
    this.#sharded = config.sharded;
    this.#publishCommand = config.sharded ? 'SPUBLISH' : 'PUBLISH';
    this.#history = config.history;
    this.#publishIdPrefix = `${hashTag(config.prefix)}:pub:`;
    const clients = openClients(config, () => this.closed);
    this.#clients = clients;
    this.#outbox = new Outbox({
      commands: clients.commands,
      send: (call, load) => withTimeout(sendScript(clients.commands, call, load), COMMAND_TIMEOUT_MS, 'publish'),
      fatal: (channel, cause) => this.publishFailed(channel, cause),
      deadlineMs: config.publishTimeoutMs,
    });
    this.#commandWatchdog = new CommandWatchdog(
      clients.commands,
      config.watchdogMs,
      this.#logger,
      clients.ownsCommands,
    );
    logOutages(clients.commands, 'publisher', this.#logger, () => this.closed);
    logOutages(clients.subscriber, 'subscriber', this.#logger, () => this.closed);
    this.#sequencer = new Sequencer(BARRIER_TIMEOUT_MS, (previous, next) =>
      this.#logger.warn(
        `sse-gateway: Redis history restarted (epoch ${previous} → ${next}); events of the old epoch missed during the outage cannot be recovered, and clients holding old ids get sse:reset.`,
      ),
    );
    this.#interest = new Interest(
      clients.subscriber,
      this.#names,
      config.sharded,
      () => this.#subscriber.linked,
      config.legacyPatterns,
    );
    this.#receiver = new Receiver(this.id, this.#sequencer, this.#interest, this.#logger);
    this.#replayPages = new ReplayPages(this.fetch);
    const receiver = this.#receiver;
    this.#subscriber = new Subscriber(
      {
        client: clients.subscriber,
        commands: clients.commands,
        names: this.#names,
        sharded: config.sharded,
        logger: this.#logger,
        resubscribe: () => this.#interest.resubscribe(),
        catchUp: async (current) => {
          await receiver.catchUp(this.fetch, current);
          // The history's fill for status(), at once rather than after the first watchdog interval.
          if (current()) this.sendPing('fill').catch(() => {});
        },
        deliver: (item) => receiver.deliver(item),
        signal: (message) => receiver.signal(message),
        roundTrip: (ms) => receiver.roundTrip(ms),
        ping: (token) => this.sendPing(token),
      },
      config.watchdogMs,
    );
  }

  /** Closed is the subscriber's last status (undefined only while the constructor opens the clients). */
  private get closed(): boolean {
    return this.#subscriber?.status === 'closed';
  }

  async publish(channel: string, data: unknown, options?: BusPublishOptions): Promise<SseEvent> {
    if (this.closed) throw new SseError('ERR_SSE_BUS_CLOSED', 'This Redis bus is closed; create a new one to publish.');
    const dataJson = preparePublish(channel, data, options?.users, options?.maxBytes);
    const key = checkIdempotencyKey(options?.idempotencyKey);
    const users = options?.users === undefined ? undefined : [...options.users];
    const time = Date.now();
    const headerTail = encodeHeaderTail(channel, time, this.id, users);
    const call = publishCall(this.#names, {
      freshEpoch: createEpoch(),
      historySize: this.#history.size,
      historyTtlMs: this.#history.ttlMs,
      channel,
      headerTail,
      dataJson,
      time,
      command: this.#publishCommand,
      ...(key === undefined ? {} : { idempotencyKey: key }),
      publishIdKey: this.#publishIdPrefix + randomUUID(),
      // Pattern subscribers listen on one channel per prefix (interest.ts); old instances' PSUBSCRIBE
      // still matches the exact channel, so a publish reaches both during a rolling deploy.
      alsoTo: patternKeysOf(channel).map((prefix) => this.#names.patternPrefix + prefix),
    });
    const answer = decodePublishReply(await this.#outbox.submit(call, channel, dataJson.length + headerTail.length));
    if (answer.kind === 'published') {
      return createEvent(formatEventId(answer.epoch, answer.seq), channel, dataJson, time, users, data);
    }
    // Published before under this key, or this very publish sent again after its reply was lost: the
    // first event's id, time and channel.
    const firstId = formatEventId(answer.epoch, answer.seq);
    const first = createEvent(firstId, answer.channel, dataJson, answer.time, users, data);
    return repeatedPublish(key ?? 'of this publish', first, channel);
  }

  /** The rejection for a failure that sending again would not cure; `undefined` for one it may. */
  private publishFailed(channel: string, cause: unknown): SseError | undefined {
    if (this.#sharded && lacksShardedPubSub(cause)) {
      return new SseError(
        'ERR_SSE_BUS_UNAVAILABLE',
        `Redis bus cannot publish to ${channel}: sharded pub/sub (SPUBLISH) needs Redis 7 or later; pass \`sharded: false\` to createRedisBus. (${(cause as Error).message})`,
        503,
      );
    }
    // Redis answered: the script did not run (OOM, NOPERM, a script error), except for transient states.
    const answered = cause instanceof Error && cause.name === 'ReplyError';
    if (answered && !/^(NOSCRIPT|LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN|READONLY)/.test(cause.message)) {
      return unavailable(`publish to ${channel}`, cause);
    }
    return undefined;
  }

  listen(listener: BusListener): () => void {
    return this.#receiver.listen(listener);
  }

  watch(topic: string): () => void {
    return this.#interest.watch(topic);
  }

  async watched(): Promise<void> {
    await this.#interest.settled();
  }

  async signal(signal: BusSignal): Promise<void> {
    if (this.closed) throw new SseError('ERR_SSE_BUS_CLOSED', 'This Redis bus is closed; create a new one to signal.');
    const text = JSON.stringify(checkSignal(signal));
    const failed = (why: string) =>
      new SseError('ERR_SSE_BUS_UNAVAILABLE', `Redis bus cannot send the ${signal.type} signal: ${why}.`, 503);
    const { commands } = this.#clients;
    if (commands.status !== 'ready') throw failed(`connection ${commands.status}`);
    const channel = this.#names.signalChannel;
    try {
      const sent = this.#sharded ? commands.spublish(channel, text) : commands.publish(channel, text);
      await withTimeout(sent, COMMAND_TIMEOUT_MS, 'signal');
    } catch (cause) {
      throw failed(cause instanceof Error ? cause.message : String(cause));
    }
  }

  onSignal(listener: BusSignalListener): () => void {
    return this.#receiver.onSignal(listener);
  }

  async replay(lastEventId: string, query: ReplayQuery): Promise<ReplayResult> {
    const last = parseEventId(lastEventId);
    if (last === null) return { ok: false, reason: 'malformed-id' };
    if (this.closed) return { ok: false, reason: 'unavailable' };
    // The snapshot must follow this process's pending SUBSCRIBEs, or an event published in between
    // would be neither replayed nor delivered live.
    await this.#interest.settled();
    let snapshot: ReplaySnapshot;
    try {
      snapshot = await this.#replayPages.replay(last, boundQuery(query, this.#history));
    } catch (cause) {
      this.#logger.error('sse-gateway: Redis bus replay failed', cause);
      return { ok: false, reason: 'unavailable' };
    }
    const { result } = snapshot;
    if (!result.ok) return result;
    // The caller drops live events up to `head` only while it holds them, so every event up to `head`
    // must have reached the listeners before this resolves.
    const reached = await this.#sequencer.reach(snapshot.epoch, snapshot.head, this.#subscriber.live, () => {
      this.sendPing('barrier').catch(() => {
        // No ping: the timer decides, and a later event or ping may still settle it.
      });
    });
    return reached ? result : { ok: false, reason: 'unavailable' };
  }

  /** The fetch script through the command connection, with the command timeout. */
  private readonly fetch = async (
    epoch: string,
    after: number,
    count: number,
    mode: FetchMode,
  ): Promise<FetchReply> => {
    const { commands } = this.#clients;
    if (commands.status !== 'ready') throw new Error(`connection ${commands.status}`);
    const call = fetchCall(this.#names, epoch, after, count, mode);
    return decodeFetchReply(await withTimeout(runScript(commands, call), COMMAND_TIMEOUT_MS, 'fetch'));
  };

  /** Publish a ping (watchdog, barrier or fill); its reply is the history's fill. */
  private async sendPing(token: string): Promise<unknown> {
    const call = pingCall(this.#names, token, this.#publishCommand);
    const reply = await withTimeout(runScript(this.#clients.commands, call), COMMAND_TIMEOUT_MS, 'ping');
    this.#fill = decodePingReply(reply) ?? this.#fill;
    return reply;
  }

  retain(window: { size: number; ttlMs: number }): void {
    this.#history = {
      size: Math.max(this.#history.size, window.size),
      ttlMs: Math.max(this.#history.ttlMs, window.ttlMs),
    };
  }

  status(): BusStatus {
    const { commands, subscriber } = this.#clients;
    return {
      kind: 'redis',
      connected:
        !this.closed &&
        commands.status === 'ready' &&
        !this.#commandWatchdog.dead &&
        subscriber.status === 'ready' &&
        this.#subscriber.live,
      head: this.#sequencer.head,
      lag: this.#receiver.lag,
      reconnects: this.#subscriber.reconnects,
      watched: this.#interest.size,
      sharded: this.#sharded,
      subscribing: this.#interest.pending,
      history: this.historyStatus(),
      subscriber: this.#subscriber.status,
      held: this.#outbox.held,
    };
  }

  /** The history's bounds, and its fill as of the last ping. */
  private historyStatus(): BusHistoryStatus {
    const bounds = { size: this.#history.size, ttlMs: this.#history.ttlMs };
    const fill = this.#fill;
    if (fill === undefined) return bounds;
    if (fill.oldestTime === undefined) return { ...bounds, events: fill.events };
    return { ...bounds, events: fill.events, oldestAgeMs: Math.max(0, Date.now() - fill.oldestTime) };
  }

  close(): Promise<void> {
    this.#shutdown ??= this.release();
    return this.#shutdown;
  }

  private async release(): Promise<void> {
    this.#subscriber.close();
    this.#commandWatchdog.close();
    this.#outbox.close();
    this.#receiver.clear();
    this.#replayPages.clear();
    this.#sequencer.cancel();
    const { commands, subscriber, ownsCommands } = this.#clients;
    await Promise.all((ownsCommands ? [subscriber, commands] : [subscriber]).map((client) => quit(client)));
  }
}

/**
 * Create a bus on Redis, so that several instances share one event sequence, one replay history and
 * one fan-out. Defaults to prefix `sse`, a history of 50,000 events up to 10 minutes old (trimmed by
 * count: about 65 MB in Redis with 1 KB events), a watchdog ping every 5 s, and publishes held up to 5 s
 * while Redis is unreachable.
 *
 * @param options - `url` (the bus opens and closes its own connections) or `redis` (an ioredis client
 * or Cluster that the bus duplicates for its subscriber and leaves open on `close()`). On a Cluster the
 * fan-out uses sharded pub/sub unless `sharded: false`.
 * @returns a {@link Bus}; pass it to `sseMiddleware({ bus })` on every instance.
 * @example
 * const bus = createRedisBus({ url: process.env.REDIS_URL, history: { size: 50_000 } });
 * app.use(sseMiddleware({ channels: ['logs', 'alerts'], bus }));
 */
export function createRedisBus(options: RedisBusOptions): Bus {
  return new RedisBus(parseRedisBusOptions(options));
}
