/**
 * The Redis bus: one sequence, one history and one fan-out for every instance of a BFF.
 *
 * Publishing runs one Lua script that creates the epoch when needed, INCRs the sequence, XADDs the
 * message to a history stream (id `<seq>-0`) and PUBLISHes it, so the id, the history and the fan-out
 * can never disagree. Every key carries the hash tag `{prefix}`, so the script also runs on a Cluster.
 *
 * Fan-out is per channel: an instance SUBSCRIBEs `{prefix}:ch:<channel>` for exact topics and
 * PSUBSCRIBEs `{prefix}:ch:<key>:*` for patterns, so it only receives what its connections need. The
 * price is that gaps cannot be seen in the sequence (an instance legitimately skips other channels'
 * numbers), so loss is detected from the connection instead: after every reconnect the subscriber
 * resubscribes and reads the missed range from the history stream, and a watchdog ping through
 * pub/sub catches links that died silently. One bus-wide channel would make gaps visible but costs
 * every instance every event (and its JSON parse), which is what per-channel routing avoids.
 *
 * Sharded mode (the default on a Cluster) uses SPUBLISH/SSUBSCRIBE instead, so a message stays inside the
 * shard that owns the `{prefix}` slot rather than crossing the cluster bus to every node. There is no
 * sharded PSUBSCRIBE, so the script also SPUBLISHes each event to `{prefix}:pt:<key>` for every pattern
 * key of its channel (`logs` and `logs:ws1` for `logs:ws1:wf1`), and a `logs:*` watch SSUBSCRIBEs
 * `{prefix}:pt:logs`. The subscriber is a plain connection to the slot's owner that follows it across
 * failovers; duplicates (an exact and a pattern channel) are dropped by sequence like any other.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { parseTopic, patternKeysOf } from '../../protocol/channels';
import { SseError } from '../../protocol/errors';
import { formatEventId, parseEventId } from '../../protocol/event-id';
import type {
  Bus,
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
import { checkSignal, decodeSignal } from '../signal';

/** Default shared history of a Redis bus: the last 10,000 events up to 10 minutes old. */
export const DEFAULT_REDIS_HISTORY = Object.freeze({ size: 10_000, ttlMs: 600_000 });

/** How long a publish, fetch or replay may wait for Redis before it counts as unavailable. */
const COMMAND_TIMEOUT_MS = 2000;
/** How long a replay waits for the live stream to catch up with its snapshot. */
const BARRIER_TIMEOUT_MS = 3000;
const PREFIX = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * KEYS: epoch, seq, history, and the idempotency key when there is one. ARGV: fresh epoch, MAXLEN, pub/sub
 * channel, header tail, payload JSON, TTL ms, the publish command (`PUBLISH` or `SPUBLISH`), the tail of the
 * idempotency record (`time\nchannel`), then any further channels to publish to. A missing sequence means
 * Redis lost its data (a restart without persistence, eviction): the old ids are meaningless, so a new
 * epoch starts and clients holding old ids get `sse:reset`. A known idempotency key publishes nothing and
 * answers `{'', 0, record}`.
 */
const PUBLISH_SCRIPT = `
if KEYS[4] then
  local seen = redis.call('GET', KEYS[4])
  if seen then return {'', 0, seen} end
end
local epoch = redis.call('GET', KEYS[1])
if (not epoch) or redis.call('EXISTS', KEYS[2]) == 0 then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
  redis.call('DEL', KEYS[3])
end
local seq = redis.call('INCR', KEYS[2])
local id = string.format('%d', seq)
local message = '{"id":"' .. epoch .. '-' .. id .. '",' .. ARGV[4] .. '\\n' .. ARGV[5]
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], id .. '-0', 'm', message)
redis.call('PEXPIRE', KEYS[3], ARGV[6])
if KEYS[4] then redis.call('SET', KEYS[4], epoch .. '\\n' .. id .. '\\n' .. ARGV[8], 'PX', ARGV[6]) end
redis.call(ARGV[7], ARGV[3], message)
for i = 9, #ARGV do redis.call(ARGV[7], ARGV[i], message) end
return {epoch, seq}
`;

/**
 * KEYS: epoch, seq, history. ARGV: known epoch, after seq, COUNT, mode (`replay`, `recover` or `head`).
 * Reads the head and the range after it in one atomic snapshot. In `recover` mode a foreign epoch
 * means everything in the current one is new to the caller, so the range starts at the beginning.
 */
const FETCH_SCRIPT = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then return {'', 0, {}} end
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local after = tonumber(ARGV[2])
if epoch ~= ARGV[1] then
  if ARGV[4] ~= 'recover' then return {epoch, head, {}} end
  after = 0
end
if ARGV[4] == 'head' or after >= head then return {epoch, head, {}} end
return {epoch, head, redis.call('XRANGE', KEYS[3], string.format('%d', after + 1) .. '-0', '+', 'COUNT', ARGV[3])}
`;

/**
 * KEYS: epoch, seq. ARGV: control channel, token, the publish command. The head is read and published
 * atomically, so when the ping arrives every earlier event of a subscribed channel has arrived before it.
 */
const PING_SCRIPT = `
local epoch = redis.call('GET', KEYS[1]) or ''
local seq = redis.call('GET', KEYS[2]) or '0'
redis.call(ARGV[3], ARGV[1], ARGV[2] .. '\\n' .. epoch .. '\\n' .. seq)
return 1
`;

interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

function luaScript(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

const SCRIPTS = { publish: luaScript(PUBLISH_SCRIPT), fetch: luaScript(FETCH_SCRIPT), ping: luaScript(PING_SCRIPT) };

/** The part of the ioredis surface the bus uses, shared by `Redis` and `Cluster`. */
interface CommandClient {
  readonly status: string;
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(reconnect?: boolean): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
  publish(channel: string, message: string): Promise<unknown>;
  spublish(channel: string, message: string): Promise<unknown>;
}

interface SubscriberClient extends CommandClient {
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  psubscribe(...patterns: string[]): Promise<unknown>;
  punsubscribe(...patterns: string[]): Promise<unknown>;
  ssubscribe(...channels: string[]): Promise<unknown>;
  sunsubscribe(...channels: string[]): Promise<unknown>;
}

/** Redis Cluster's hash slot of `key` (CRC16/XMODEM of its hash tag, or of the whole key, mod 16384). */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open === -1 ? -1 : key.indexOf('}', open + 1);
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(hashed)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

/** Decoded head of a wire message; the payload after the newline stays JSON text. */
interface WireHeader {
  readonly id: string;
  readonly channel: string;
  readonly time: number;
  readonly origin: string;
  readonly users?: string[];
}

interface WireMessage {
  readonly header: WireHeader;
  readonly seq: number;
  readonly epoch: string;
  readonly dataJson: string;
}

/** `{header JSON}\n{payload JSON}`: JSON.stringify never emits a raw newline, so the split is exact. */
function decodeMessage(message: string): WireMessage | null {
  const newline = message.indexOf('\n');
  if (newline === -1) return null;
  let header: WireHeader;
  try {
    header = JSON.parse(message.slice(0, newline)) as WireHeader;
  } catch {
    return null;
  }
  const id = typeof header.id === 'string' ? parseEventId(header.id) : null;
  if (id === null || typeof header.channel !== 'string') return null;
  return { header, seq: id.seq, epoch: id.epoch, dataJson: message.slice(newline + 1) };
}

/** Channel names never contain glob metacharacters, but escaping keeps PSUBSCRIBE literal regardless. */
function escapeGlob(value: string): string {
  return value.replace(/[*?[\]\\]/g, '\\$&');
}

function positiveInteger(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new TypeError(`createRedisBus: ${name} must be a positive integer (received ${String(value)}).`);
  }
  return value;
}

/** A Redis without sharded pub/sub (before 7.0) answers SPUBLISH/SSUBSCRIBE with an unknown-command error. */
function lacksShardedPubSub(cause: unknown): boolean {
  return cause instanceof Error && /unknown (redis )?command/i.test(cause.message);
}

function unavailable(what: string, cause?: unknown): SseError {
  const reason = cause instanceof Error ? `: ${cause.message}` : '';
  return new SseError(
    'ERR_SSE_BUS_UNAVAILABLE',
    `Redis bus cannot ${what}${reason}. The event was not published; retry when Redis is reachable.`,
    503,
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms (${what})`)), ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

type IoRedisModule = typeof import('ioredis');

function loadIoRedis(): IoRedisModule {
  try {
    return require('ioredis') as IoRedisModule;
  } catch (cause) {
    throw new TypeError(
      `createRedisBus({ url }) needs the optional peer dependency ioredis: run \`npm install ioredis\` (${(cause as Error).message}).`,
    );
  }
}

/**
 * Connections the bus creates fail fast instead of queueing: a publish must reject while Redis is
 * down, and a command already sent when the link drops must not be replayed behind the caller's back.
 */
const OWN_CONNECTION: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  autoResubscribe: false,
  retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000),
};

interface Waiter {
  readonly epoch: string;
  readonly seq: number;
  readonly resolve: (reached: boolean) => void;
}

class RedisBus implements Bus {
  readonly id = randomUUID();
  private readonly logger: Logger;
  private readonly keys: [string, string, string];
  private readonly channelPrefix: string;
  /** Sharded mode: the channel prefix of pattern keys (`{prefix}:pt:`). */
  private readonly patternPrefix: string;
  /** Keys of idempotent publishes (`{prefix}:idem:<key>`), kept as long as the history. */
  private readonly idempotencyPrefix: string;
  private readonly controlChannel: string;
  /** Signals between the gateways of a deployment: every instance subscribes to it. */
  private readonly signalChannel: string;
  private readonly signalListeners = new Set<BusSignalListener>();
  private readonly sharded: boolean;
  private readonly publishCommand: 'PUBLISH' | 'SPUBLISH';
  private readonly commands: CommandClient;
  private readonly subscriber: SubscriberClient;
  private readonly ownsCommands: boolean;
  private historySize: number;
  private historyTtlMs: number;
  private readonly listeners = new Set<BusListener>();
  /** Watched exact channels and pattern keys, with reference counts. */
  private readonly exact = new Map<string, number>();
  private readonly patterns = new Map<string, number>();
  /** SUBSCRIBE commands not answered yet: a replay's snapshot must come after them. */
  private readonly subscribing = new Set<Promise<void>>();
  /** Newest sequence this instance has accounted for: delivered, or known to be of no interest. */
  private epoch = '';
  private lastSeq = 0;
  private baselined = false;
  /** While the gap after a reconnect is fetched, live messages wait here, in arrival order. */
  private buffer: string[] | null = [];
  private generation = 0;
  private readonly waiters = new Set<Waiter>();
  private readonly watchdog: NodeJS.Timeout;
  private ping: { token: string; sentAt: number } | undefined;
  private lag: number | undefined;
  private reconnects = 0;
  private everReady = false;
  private readonly outage = new Set<string>();
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(options: RedisBusOptions) {
    this.logger = options.logger ?? console;
    const prefix = options.prefix ?? 'sse';
    if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
      throw new TypeError(
        `createRedisBus: prefix must be 1-64 characters of [A-Za-z0-9_.:-] (received ${JSON.stringify(prefix)}); it becomes the hash tag {${String(prefix)}}.`,
      );
    }
    this.historySize = positiveInteger(options.history?.size, 'history.size', DEFAULT_REDIS_HISTORY.size);
    this.historyTtlMs = positiveInteger(options.history?.ttlMs, 'history.ttlMs', DEFAULT_REDIS_HISTORY.ttlMs);
    const watchdogMs = positiveInteger(options.watchdogMs, 'watchdogMs', 5000);
    const tag = `{${prefix}}`;
    this.keys = [`${tag}:epoch`, `${tag}:seq`, `${tag}:history`];
    this.channelPrefix = `${tag}:ch:`;
    this.patternPrefix = `${tag}:pt:`;
    this.idempotencyPrefix = `${tag}:idem:`;
    this.controlChannel = `${tag}:ctl:${this.id}`;
    this.signalChannel = `${tag}:signal`;
    const sharded = options.sharded ?? (options.redis !== undefined && isCluster(options.redis));
    if (typeof sharded !== 'boolean') {
      throw new TypeError(`createRedisBus: sharded must be true or false (received ${String(sharded)}).`);
    }
    this.sharded = sharded;
    this.publishCommand = sharded ? 'SPUBLISH' : 'PUBLISH';

    if (options.redis !== undefined) {
      const client = options.redis;
      this.commands = client as unknown as CommandClient;
      this.ownsCommands = false;
      if (isCluster(client) && sharded) {
        this.subscriber = followSlotOwner(client, keySlot(tag), () => this.closed) as unknown as SubscriberClient;
      } else {
        // Redis#duplicate takes options; Cluster#duplicate takes startup nodes first.
        const duplicate = isCluster(client)
          ? client.duplicate(undefined, { enableOfflineQueue: false, redisOptions: OWN_CONNECTION })
          : client.duplicate(OWN_CONNECTION);
        this.subscriber = duplicate as unknown as SubscriberClient;
      }
    } else if (typeof options.url === 'string') {
      const IoRedis = loadIoRedis().Redis;
      this.commands = new IoRedis(options.url, OWN_CONNECTION) as unknown as CommandClient;
      this.subscriber = new IoRedis(options.url, OWN_CONNECTION) as unknown as SubscriberClient;
      this.ownsCommands = true;
    } else {
      throw new TypeError('createRedisBus needs `url` (e.g. "redis://localhost:6379") or `redis` (an ioredis client).');
    }

    this.watchConnection(this.commands, 'publisher');
    this.watchConnection(this.subscriber, 'subscriber');
    this.subscriber.on('message', (channel, message) => this.onMessage(channel as string, message as string));
    this.subscriber.on('pmessage', (_pattern, channel, message) =>
      this.onMessage(channel as string, message as string),
    );
    this.subscriber.on('smessage', (channel, message) => this.onMessage(channel as string, message as string));
    this.subscriber.on('ready', () => this.onSubscriberReady());
    this.subscriber.on('close', () => {
      this.buffer ??= [];
      this.ping = undefined;
    });
    if (this.subscriber.status === 'ready') this.onSubscriberReady();
    this.watchdog = setInterval(() => this.checkSubscriber(watchdogMs), watchdogMs);
    this.watchdog.unref();
  }

  /** Report each outage once (ioredis retries every few hundred ms), and its end. */
  private watchConnection(client: CommandClient, role: string): void {
    client.on('error', (error) => {
      if (this.closed || this.outage.has(role)) return;
      this.outage.add(role);
      this.logger.error(`sse-gateway: Redis bus ${role} connection failed; retrying`, error);
    });
    client.on('ready', () => {
      if (this.outage.delete(role)) this.logger.warn(`sse-gateway: Redis bus ${role} connection restored.`);
    });
  }

  async publish(channel: string, data: unknown, options?: BusPublishOptions): Promise<SseEvent> {
    if (this.closed) throw new SseError('ERR_SSE_BUS_CLOSED', 'This Redis bus is closed; create a new one to publish.');
    const json = preparePublish(channel, data, options?.users);
    const key = checkIdempotencyKey(options?.idempotencyKey);
    if (this.commands.status !== 'ready')
      throw unavailable(`publish to ${channel} (connection ${this.commands.status})`);
    const users = options?.users === undefined ? undefined : [...options.users];
    const time = Date.now();
    const header = JSON.stringify(
      users === undefined ? { channel, time, origin: this.id } : { channel, time, origin: this.id, users },
    );
    let reply: unknown;
    try {
      reply = await withTimeout(
        this.run(SCRIPTS.publish, key === undefined ? this.keys : [...this.keys, this.idempotencyPrefix + key], [
          createEpoch(),
          this.historySize,
          this.channelPrefix + channel,
          header.slice(1),
          json,
          this.historyTtlMs,
          this.publishCommand,
          `${time}\n${channel}`,
          ...(this.sharded ? patternKeysOf(channel).map((prefix) => this.patternPrefix + prefix) : []),
        ]),
        COMMAND_TIMEOUT_MS,
        'publish',
      );
    } catch (cause) {
      if (this.sharded && lacksShardedPubSub(cause)) {
        throw new SseError(
          'ERR_SSE_BUS_UNAVAILABLE',
          `Redis bus cannot publish to ${channel}: sharded pub/sub (SPUBLISH) needs Redis 7 or later; pass \`sharded: false\` to createRedisBus. (${(cause as Error).message})`,
          503,
        );
      }
      throw unavailable(`publish to ${channel}`, cause);
    }
    const [epoch, seq, seen] = reply as [string, number, string?];
    if (seen !== undefined && key !== undefined) {
      // Published before under this key: the first event's id, time and channel.
      const [firstEpoch = '', firstSeq = '0', firstTime = '0', firstChannel = ''] = seen.split('\n');
      const first = createEvent(
        formatEventId(firstEpoch, Number(firstSeq)),
        firstChannel,
        json,
        Number(firstTime),
        users,
        data,
      );
      return repeatedPublish(key, first, channel);
    }
    return createEvent(formatEventId(epoch, seq), channel, json, time, users, data);
  }

  listen(listener: BusListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  watch(topic: string): () => void {
    const parsed = parseTopic(topic, true);
    if (parsed === null) {
      throw new SseError(
        'ERR_SSE_INVALID_CHANNEL',
        `Cannot watch ${JSON.stringify(topic)}: not a channel or a prefix:* pattern.`,
        400,
        {
          channels: [String(topic)],
        },
      );
    }
    const counts = parsed.pattern ? this.patterns : this.exact;
    const key = parsed.pattern ? parsed.key : parsed.name;
    const count = counts.get(key) ?? 0;
    counts.set(key, count + 1);
    if (count === 0 && !this.closed) this.track(this.subscribeTopic(parsed.pattern, key, true));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (counts.get(key) ?? 1) - 1;
      if (left > 0) counts.set(key, left);
      else {
        counts.delete(key);
        if (!this.closed) this.track(this.subscribeTopic(parsed.pattern, key, false));
      }
    };
  }

  private redisTopic(pattern: boolean, key: string): string {
    if (this.sharded) return (pattern ? this.patternPrefix : this.channelPrefix) + key;
    return pattern ? `${escapeGlob(this.channelPrefix + key)}:*` : this.channelPrefix + key;
  }

  /** While the subscriber is down there is nothing to send: the resubscription on `ready` covers it. */
  private async subscribeTopic(pattern: boolean, key: string, on: boolean): Promise<void> {
    if (this.subscriber.status !== 'ready') return;
    const name = this.redisTopic(pattern, key);
    try {
      if (this.sharded) await (on ? this.subscriber.ssubscribe(name) : this.subscriber.sunsubscribe(name));
      else if (pattern) await (on ? this.subscriber.psubscribe(name) : this.subscriber.punsubscribe(name));
      else await (on ? this.subscriber.subscribe(name) : this.subscriber.unsubscribe(name));
    } catch {
      // The link dropped mid-command; the next `ready` resubscribes from the current interest.
    }
  }

  private track(promise: Promise<void>): void {
    this.subscribing.add(promise);
    void promise.finally(() => this.subscribing.delete(promise));
  }

  private interested(channel: string): boolean {
    if (this.exact.has(channel)) return true;
    if (this.patterns.size === 0) return false;
    return patternKeysOf(channel).some((key) => this.patterns.has(key));
  }

  private onMessage(channel: string, message: string): void {
    if (this.closed) return;
    // Signals are not events: no sequence, so no reason to wait for a gap to be fetched.
    if (channel === this.signalChannel) {
      this.onSignalMessage(message);
      return;
    }
    if (this.buffer !== null) {
      this.buffer.push(channel === this.controlChannel ? `\0${message}` : message);
      return;
    }
    if (channel === this.controlChannel) this.onPing(message);
    else this.accept(message);
  }

  /** Call every listener with `value`; one that throws is logged and does not stop the others. */
  private notify<T>(listeners: ReadonlySet<(value: T) => void>, value: T, what: string): void {
    for (const listener of listeners) {
      try {
        listener(value);
      } catch (cause) {
        this.logger.error(`sse-gateway: a Redis bus ${what} threw`, cause);
      }
    }
  }

  private onSignalMessage(message: string): void {
    const signal = decodeSignal(message);
    if (signal === null) {
      this.logger.warn('sse-gateway: ignored a malformed signal on the Redis bus', message.slice(0, 200));
      return;
    }
    this.notify(this.signalListeners, signal, 'signal listener');
  }

  async signal(signal: BusSignal): Promise<void> {
    if (this.closed) throw new SseError('ERR_SSE_BUS_CLOSED', 'This Redis bus is closed; create a new one to signal.');
    const text = JSON.stringify(checkSignal(signal));
    const failed = (why: string) =>
      new SseError('ERR_SSE_BUS_UNAVAILABLE', `Redis bus cannot send the ${signal.type} signal: ${why}.`, 503);
    if (this.commands.status !== 'ready') throw failed(`connection ${this.commands.status}`);
    try {
      await withTimeout(
        this.sharded
          ? this.commands.spublish(this.signalChannel, text)
          : this.commands.publish(this.signalChannel, text),
        COMMAND_TIMEOUT_MS,
        'signal',
      );
    } catch (cause) {
      throw failed(cause instanceof Error ? cause.message : String(cause));
    }
  }

  onSignal(listener: BusSignalListener): () => void {
    this.signalListeners.add(listener);
    return () => {
      this.signalListeners.delete(listener);
    };
  }

  /** Deliver a message once, in sequence order: anything at or below the last seq is a duplicate. */
  private accept(message: string): void {
    const decoded = decodeMessage(message);
    if (decoded === null) {
      this.logger.warn('sse-gateway: ignored a malformed message on the Redis bus', message.slice(0, 200));
      return;
    }
    const { header, epoch, seq } = decoded;
    if (epoch !== this.epoch) this.switchEpoch(epoch);
    else if (seq <= this.lastSeq) return;
    this.advance(seq);
    if (header.origin === this.id) this.lag = Math.max(0, Date.now() - header.time);
    if (!this.interested(header.channel)) return;
    const event = createEvent(header.id, header.channel, decoded.dataJson, header.time, header.users);
    this.notify(this.listeners, event, 'listener');
  }

  private switchEpoch(epoch: string): void {
    if (this.epoch !== '' && this.lastSeq > 0) {
      this.logger.warn(
        `sse-gateway: Redis history restarted (epoch ${this.epoch} → ${epoch}); events of the old epoch missed during the outage cannot be recovered, and clients holding old ids get sse:reset.`,
      );
    }
    this.epoch = epoch;
    this.lastSeq = 0;
  }

  private advance(seq: number): void {
    this.lastSeq = Math.max(this.lastSeq, seq);
    for (const waiter of this.waiters) {
      if (waiter.epoch !== this.epoch) waiter.resolve(false);
      else if (this.lastSeq >= waiter.seq) waiter.resolve(true);
    }
  }

  /** `token\nepoch\nseq`: everything of interest up to `seq` has arrived before this ping. */
  private onPing(message: string): void {
    const [token, epoch, seqText] = message.split('\n');
    if (this.ping !== undefined && token === this.ping.token) {
      this.lag = Date.now() - this.ping.sentAt;
      this.ping = undefined;
    }
    const seq = Number(seqText);
    if (!epoch || !Number.isSafeInteger(seq)) return;
    if (epoch !== this.epoch) this.switchEpoch(epoch);
    this.advance(seq);
  }

  private sendPing(token: string): Promise<unknown> {
    return withTimeout(
      this.run(SCRIPTS.ping, this.keys.slice(0, 2), [this.controlChannel, token, this.publishCommand]),
      COMMAND_TIMEOUT_MS,
      'ping',
    );
  }

  /** A ping not back within one interval means the subscriber link is dead even if its socket looks open. */
  private checkSubscriber(intervalMs: number): void {
    if (this.closed || this.subscriber.status !== 'ready' || this.buffer !== null) return;
    if (this.ping !== undefined) {
      if (Date.now() - this.ping.sentAt < intervalMs) return;
      this.logger.warn(
        `sse-gateway: Redis bus watchdog ping not received within ${intervalMs} ms; reconnecting the subscriber.`,
      );
      this.ping = undefined;
      this.subscriber.disconnect(true);
      return;
    }
    if (this.commands.status !== 'ready') return;
    const ping = { token: randomUUID(), sentAt: Date.now() };
    this.ping = ping;
    this.sendPing(ping.token).catch(() => {
      // The publisher side is down: that says nothing about the subscriber, so do not count it.
      if (this.ping === ping) this.ping = undefined;
    });
  }

  /**
   * Resubscribe everything, then close the gap from the history stream while live messages wait in
   * the buffer; they are drained afterwards and deduplicated by sequence.
   */
  private onSubscriberReady(): void {
    if (this.closed) return;
    if (this.everReady) this.reconnects++;
    this.everReady = true;
    this.buffer ??= [];
    const generation = ++this.generation;
    void this.recover(generation);
  }

  private async recover(generation: number): Promise<void> {
    const current = () => generation === this.generation && !this.closed;
    try {
      const exact = [...this.exact.keys()].map((key) => this.redisTopic(false, key));
      const patterns = [...this.patterns.keys()].map((key) => this.redisTopic(true, key));
      if (this.sharded)
        await this.subscriber.ssubscribe(this.controlChannel, this.signalChannel, ...exact, ...patterns);
      else {
        await this.subscriber.subscribe(this.controlChannel, this.signalChannel, ...exact);
        if (patterns.length > 0) await this.subscriber.psubscribe(...patterns);
      }
    } catch (cause) {
      // Usually the link dropped again and its next `ready` starts over; otherwise force that.
      if (current()) {
        const hint =
          this.sharded && lacksShardedPubSub(cause)
            ? ' (sharded pub/sub needs Redis 7 or later: pass `sharded: false`)'
            : '';
        this.logger.error(`sse-gateway: Redis bus could not resubscribe; reconnecting the subscriber${hint}`, cause);
        if (this.subscriber.status === 'ready') this.subscriber.disconnect(true);
      }
      return;
    }
    for (let attempt = 1; current(); attempt++) {
      try {
        await this.fetchGap(current);
        break;
      } catch (cause) {
        if (attempt >= 20) {
          this.logger.error(
            'sse-gateway: Redis bus could not read the history after a reconnect; events of the gap may be missing',
            cause,
          );
          break;
        }
        await new Promise<void>((resolve) => setTimeout(resolve, Math.min(100 * attempt, 500)).unref());
      }
    }
    if (!current()) return;
    this.baselined = true;
    const buffered = this.buffer ?? [];
    this.buffer = null;
    for (const message of buffered) {
      if (message.startsWith('\0')) this.onPing(message.slice(1));
      else this.accept(message);
    }
  }

  private async fetchGap(current: () => boolean): Promise<void> {
    if (!this.baselined) {
      // First connection: nothing was missed, only the starting point is needed.
      const [epoch, head] = await this.fetch('', 0, 1, 'head');
      if (!current()) return;
      if (epoch !== '' && epoch !== this.epoch) this.switchEpoch(epoch);
      if (epoch !== '') this.advance(head);
      return;
    }
    for (;;) {
      const [epoch, head, entries] = await this.fetch(this.epoch, this.lastSeq, this.historySize, 'recover');
      if (!current()) return;
      if (epoch === '') return;
      if (epoch !== this.epoch) this.switchEpoch(epoch);
      const first = entries[0];
      if (first !== undefined && Number.parseInt(first[0], 10) > this.lastSeq + 1 && this.lastSeq > 0) {
        this.logger.warn(
          `sse-gateway: Redis bus was disconnected longer than its history holds; events ${this.lastSeq + 1}-${Number.parseInt(first[0], 10) - 1} are gone.`,
        );
      }
      for (const [, fields] of entries) if (fields[1] !== undefined) this.accept(fields[1]);
      if (entries.length < this.historySize || this.lastSeq >= head) {
        this.advance(head);
        return;
      }
    }
  }

  private async fetch(
    epoch: string,
    after: number,
    count: number,
    mode: 'replay' | 'recover' | 'head',
  ): Promise<[string, number, [string, string[]][]]> {
    if (this.commands.status !== 'ready') throw new Error(`connection ${this.commands.status}`);
    const reply = await withTimeout(
      this.run(SCRIPTS.fetch, this.keys, [epoch, after, count, mode]),
      COMMAND_TIMEOUT_MS,
      'fetch',
    );
    return reply as [string, number, [string, string[]][]];
  }

  private async run(script: LuaScript, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await this.commands.evalsha(script.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.commands.eval(script.source, keys.length, ...keys, ...args);
    }
  }

  async watched(): Promise<void> {
    await Promise.all([...this.subscribing]);
  }

  async replay(lastEventId: string, query: ReplayQuery): Promise<ReplayResult> {
    const last = parseEventId(lastEventId);
    if (last === null) return { ok: false, reason: 'malformed-id' };
    if (this.closed) return { ok: false, reason: 'unavailable' };
    // The snapshot must follow this process's pending SUBSCRIBEs, or an event published in between
    // would be neither replayed nor delivered live.
    await Promise.all([...this.subscribing]);
    const maxCount = Math.min(query.maxCount, this.historySize);
    let snapshot: [string, number, [string, string[]][]];
    try {
      snapshot = await this.fetch(last.epoch, last.seq, maxCount, 'replay');
    } catch (cause) {
      this.logger.error('sse-gateway: Redis bus replay failed', cause);
      return { ok: false, reason: 'unavailable' };
    }
    const [epoch, head, entries] = snapshot;
    if (epoch !== last.epoch || last.seq > head) return { ok: false, reason: 'unknown-id' };
    if (head - last.seq > maxCount) return { ok: false, reason: 'expired' };
    const oldest = Date.now() - Math.min(query.maxAgeMs, this.historyTtlMs);
    const events: SseEvent[] = [];
    let expected = last.seq + 1;
    for (const [, fields] of entries) {
      const decoded = fields[1] === undefined ? null : decodeMessage(fields[1]);
      if (decoded === null || decoded.seq !== expected || decoded.header.time < oldest)
        return { ok: false, reason: 'expired' };
      expected++;
      const { header } = decoded;
      if (query.match(header.channel))
        events.push(createEvent(header.id, header.channel, decoded.dataJson, header.time, header.users));
    }
    if (expected !== head + 1) return { ok: false, reason: 'expired' };
    // The caller drops live events up to `head` only while it holds them, so every event up to `head`
    // must have reached the listeners before this resolves.
    if (!(await this.reach(epoch, head))) return { ok: false, reason: 'unavailable' };
    return { ok: true, events, head: formatEventId(epoch, head) };
  }

  /** Resolve once the live stream has accounted for `seq` (a ping pushes it along when idle). */
  private reach(epoch: string, seq: number): Promise<boolean> {
    if (this.buffer === null && this.epoch === epoch && this.lastSeq >= seq) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => finish(false), BARRIER_TIMEOUT_MS);
      timer.unref();
      const waiter: Waiter = { epoch, seq, resolve: (reached) => finish(reached) };
      const finish = (reached: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(reached);
      };
      this.waiters.add(waiter);
      this.sendPing('barrier').catch(() => {
        // No ping: the timer decides, and a later event or ping may still settle it.
      });
    });
  }

  retain(window: { size: number; ttlMs: number }): void {
    this.historySize = Math.max(this.historySize, window.size);
    this.historyTtlMs = Math.max(this.historyTtlMs, window.ttlMs);
  }

  status(): BusStatus {
    return {
      kind: 'redis',
      connected:
        !this.closed && this.commands.status === 'ready' && this.subscriber.status === 'ready' && this.buffer === null,
      head: this.epoch === '' || this.lastSeq === 0 ? undefined : formatEventId(this.epoch, this.lastSeq),
      lag: this.lag,
      reconnects: this.reconnects,
      watched: this.exact.size + this.patterns.size,
      sharded: this.sharded,
      subscribing: this.subscribing.size,
      history: { size: this.historySize, ttlMs: this.historyTtlMs },
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    this.listeners.clear();
    this.signalListeners.clear();
    this.buffer = null;
    for (const waiter of [...this.waiters]) waiter.resolve(false);
    const owned = this.ownsCommands ? [this.subscriber, this.commands] : [this.subscriber];
    await Promise.all(owned.map((client) => quit(client)));
  }
}

/**
 * The sharded subscriber on a Cluster: a plain connection to the master that owns `slot`, which follows
 * the slot across failovers and resharding. Whenever the link closes, the Cluster's slot map is refreshed
 * and the next reconnect goes to whichever node owns the slot then (a link left on a node that lost the
 * slot stops receiving, and the watchdog closes it).
 */
function followSlotOwner(cluster: Cluster, slot: number, closed: () => boolean): Redis {
  const IoRedis = loadIoRedis().Redis;
  const subscriber = new IoRedis({ ...cluster.options.redisOptions, ...OWN_CONNECTION, lazyConnect: true });
  const retarget = (): boolean => {
    const owner = cluster.slots[slot]?.[0];
    if (owner === undefined) return false;
    const colon = owner.lastIndexOf(':');
    subscriber.options.host = owner.slice(0, colon);
    subscriber.options.port = Number(owner.slice(colon + 1));
    return true;
  };
  const start = (): void => {
    if (closed()) return;
    if (!retarget()) {
      setTimeout(start, 200).unref();
      return;
    }
    subscriber.connect().catch(() => {
      // The retry strategy takes over, and each reconnect is retargeted on `close`.
    });
  };
  subscriber.on('close', () => {
    if (closed()) return;
    retarget();
    cluster.refreshSlotsCache(() => retarget());
  });
  if (cluster.status === 'ready') start();
  else cluster.once('ready', start);
  return subscriber;
}

/** QUIT when connected (clean server side), otherwise just stop reconnecting. */
async function quit(client: CommandClient): Promise<void> {
  if (client.status === 'ready') {
    try {
      await withTimeout(client.quit(), COMMAND_TIMEOUT_MS, 'quit');
      return;
    } catch {
      // Fall through to a hard disconnect.
    }
  }
  if (client.status === 'end') return;
  const ended = new Promise<void>((resolve) => client.on('end', () => resolve()));
  client.disconnect(false);
  // Between retries there is no socket: disconnect only cancels the retry timer, and no `end` follows.
  if (client.status === 'reconnecting' || client.status === 'end') return;
  await withTimeout(ended, COMMAND_TIMEOUT_MS, 'disconnect').catch(() => undefined);
}

/**
 * Create a bus on Redis, so that several instances share one event sequence, one replay history and
 * one fan-out. Defaults to prefix `sse`, a history of 10,000 events up to 10 minutes old, and a
 * watchdog ping every 5 s.
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
  if (options === null || typeof options !== 'object') {
    throw new TypeError('createRedisBus needs an options object: createRedisBus({ url: "redis://localhost:6379" }).');
  }
  return new RedisBus(options);
}
