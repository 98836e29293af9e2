/**
 * The three Lua scripts of the Redis bus, each with a typed argument builder and a reply decoder, so the
 * positional KEYS and ARGV of a script are written in one place: next to the script that reads them.
 *
 * Publishing is one script that creates the epoch when needed, INCRs the sequence, XADDs the message to
 * the history stream (id `<seq>-0`) and PUBLISHes it, so the id, the history and the fan-out can never
 * disagree. Every key carries the hash tag `{prefix}`, so the scripts also run on a Cluster.
 */
import { createHash } from 'node:crypto';
import type { RedisNames } from './wire';

/** `PUBLISH` for classic pub/sub, `SPUBLISH` for sharded. */
export type PublishCommand = 'PUBLISH' | 'SPUBLISH';

/** How long a publish id is remembered; publish deadlines are capped well below it (options.ts). */
export const PUBLISH_ID_TTL_MS = 120_000;

/**
 * KEYS: epoch, seq, history, then the idempotency key (the caller's, else the publish id) and the publish
 * id, when there are. ARGV: fresh epoch, MAXLEN, pub/sub channel, header tail, payload JSON, TTL ms, the
 * publish command, the tail of the idempotency record (`time\nchannel`), then any further channels to
 * publish to. A missing sequence means Redis lost its data (a restart without persistence, eviction): the
 * old ids are meaningless, so a new epoch starts and clients holding old ids get `sse:reset`. A known
 * idempotency key or publish id publishes nothing and answers `{'', 0, record}`.
 *
 * The publish id is the bus's own, one per publish, so that a publish sent again after its reply was lost
 * (outbox.ts) is applied once; it only has to outlive the publish deadline, so it is kept 2 minutes rather
 * than as long as the history.
 */
const PUBLISH_SCRIPT = `
for i = 4, #KEYS do
  local seen = redis.call('GET', KEYS[i])
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
local record = epoch .. '\\n' .. id .. '\\n' .. ARGV[8]
if KEYS[4] and KEYS[4] ~= KEYS[5] then redis.call('SET', KEYS[4], record, 'PX', ARGV[6]) end
if KEYS[5] then redis.call('SET', KEYS[5], record, 'PX', ${PUBLISH_ID_TTL_MS}) end
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
 * KEYS: epoch, seq, history. ARGV: control channel, token, the publish command. The head is read and
 * published atomically, so when the ping arrives every earlier event of a subscribed channel has arrived
 * before it. Answers the history's fill, `{1, XLEN, time of the oldest entry or 0}` (the time is the
 * header's, which precedes the payload: `{"id":…,"channel":…,"time":<ms>,…}`), for `status().history`.
 */
const PING_SCRIPT = `
local epoch = redis.call('GET', KEYS[1]) or ''
local seq = redis.call('GET', KEYS[2]) or '0'
redis.call(ARGV[3], ARGV[1], ARGV[2] .. '\\n' .. epoch .. '\\n' .. seq)
local oldest = 0
local first = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)[1]
if first and first[2][2] then oldest = tonumber(string.match(first[2][2], '"time":(%d+)') or '0') end
return {1, redis.call('XLEN', KEYS[3]), oldest}
`;

/** A script and its SHA1, for EVALSHA with an EVAL fallback. */
export interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

function luaScript(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

const SCRIPTS = { publish: luaScript(PUBLISH_SCRIPT), fetch: luaScript(FETCH_SCRIPT), ping: luaScript(PING_SCRIPT) };

/** One script invocation: what `EVALSHA sha numkeys ...keys ...args` sends. */
export interface ScriptCall {
  readonly script: LuaScript;
  readonly keys: readonly string[];
  readonly args: readonly (string | number)[];
}

/** The part of a client that runs scripts (`Redis` and `Cluster` both have it). */
export interface ScriptRunner {
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/** EVALSHA, and EVAL when Redis does not know the script yet (after a restart or SCRIPT FLUSH). */
export async function runScript(client: ScriptRunner, call: ScriptCall): Promise<unknown> {
  const { script, keys, args } = call;
  try {
    return await client.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return client.eval(script.source, keys.length, ...keys, ...args);
  }
}

/**
 * One attempt without the fallback: EVAL when `load`, else EVALSHA, which fails with NOSCRIPT when Redis
 * lacks the script. The outbox sends publishes this way because {@link runScript}'s fallback reorders
 * pipelined calls after a restart (a later EVALSHA runs before an earlier one's EVAL).
 */
export function sendScript(client: ScriptRunner, call: ScriptCall, load: boolean): Promise<unknown> {
  const { script, keys, args } = call;
  return load
    ? client.eval(script.source, keys.length, ...keys, ...args)
    : client.evalsha(script.sha, keys.length, ...keys, ...args);
}

/** Redis did not know the script, so the call did nothing. */
export function isNoScript(cause: unknown): boolean {
  return cause instanceof Error && cause.message.startsWith('NOSCRIPT');
}

/** What one publish needs besides the names. */
export interface PublishArgs {
  /** The epoch to start if Redis has none (or lost its sequence). */
  readonly freshEpoch: string;
  /** The history's approximate MAXLEN and its TTL (also the idempotency record's). */
  readonly historySize: number;
  readonly historyTtlMs: number;
  readonly channel: string;
  /** From {@link encodeHeaderTail}. */
  readonly headerTail: string;
  readonly dataJson: string;
  readonly time: number;
  readonly command: PublishCommand;
  readonly idempotencyKey?: string;
  /** The bus's own id for this publish (a whole key, `{prefix}:pub:<uuid>`), checked and set like the key. */
  readonly publishIdKey?: string;
  /** Pub/sub channels besides `{prefix}:ch:<channel>` (sharded mode's pattern channels). */
  readonly alsoTo: readonly string[];
}

/** The publish script's call for `args`. */
export function publishCall(names: RedisNames, args: PublishArgs): ScriptCall {
  const keys = [names.epochKey, names.seqKey, names.historyKey];
  if (args.idempotencyKey !== undefined) keys.push(names.idempotencyPrefix + args.idempotencyKey);
  if (args.publishIdKey !== undefined) {
    // KEYS[4] is checked and kept like a caller's key; the same name again as KEYS[5] marks it short-lived.
    if (args.idempotencyKey === undefined) keys.push(args.publishIdKey);
    keys.push(args.publishIdKey);
  }
  return {
    script: SCRIPTS.publish,
    keys,
    args: [
      args.freshEpoch,
      args.historySize,
      names.channelPrefix + args.channel,
      args.headerTail,
      args.dataJson,
      args.historyTtlMs,
      args.command,
      `${args.time}\n${args.channel}`,
      ...args.alsoTo,
    ],
  };
}

/** The publish script's answer: the id it assigned, or the first publish under the same idempotency key. */
export type PublishReply =
  | { readonly kind: 'published'; readonly epoch: string; readonly seq: number }
  | {
      readonly kind: 'repeated';
      readonly epoch: string;
      readonly seq: number;
      readonly time: number;
      readonly channel: string;
    };

/** Decode the publish script's reply (`{epoch, seq}` or `{'', 0, 'epoch\nseq\ntime\nchannel'}`). */
export function decodePublishReply(reply: unknown): PublishReply {
  const [epoch, seq, seen] = reply as [string, number, string?];
  if (seen === undefined) return { kind: 'published', epoch, seq };
  const [firstEpoch = '', firstSeq = '0', firstTime = '0', firstChannel = ''] = seen.split('\n');
  return { kind: 'repeated', epoch: firstEpoch, seq: Number(firstSeq), time: Number(firstTime), channel: firstChannel };
}

/** `replay`: the range after a client's id; `recover`: the gap after a reconnect; `head`: the head alone. */
export type FetchMode = 'replay' | 'recover' | 'head';

/** The fetch script's call: the head and up to `count` history entries after `after` in `epoch`. */
export function fetchCall(names: RedisNames, epoch: string, after: number, count: number, mode: FetchMode): ScriptCall {
  return {
    script: SCRIPTS.fetch,
    keys: [names.epochKey, names.seqKey, names.historyKey],
    args: [epoch, after, count, mode],
  };
}

/** One history entry: its sequence (from the stream id `<seq>-0`) and its message, if it has one. */
export interface HistoryEntry {
  readonly seq: number;
  readonly message: string | undefined;
}

/** A snapshot of the history: the epoch (empty when Redis has none), the head and the entries read. */
export interface FetchReply {
  readonly epoch: string;
  readonly head: number;
  readonly entries: readonly HistoryEntry[];
}

/** Decode the fetch script's reply (`{epoch, head, XRANGE reply}`). */
export function decodeFetchReply(reply: unknown): FetchReply {
  const [epoch, head, range] = reply as [string, number, [string, string[]][] | null];
  // XRANGE with COUNT 0 answers a null array.
  const entries = (range ?? []).map(([id, fields]) => ({ seq: Number.parseInt(id, 10), message: fields[1] }));
  return { epoch, head, entries };
}

/** The ping script's call: publish `token` and the head to this instance's control channel. */
export function pingCall(names: RedisNames, token: string, command: PublishCommand): ScriptCall {
  return {
    script: SCRIPTS.ping,
    keys: [names.epochKey, names.seqKey, names.historyKey],
    args: [names.controlChannel, token, command],
  };
}

/** How full the history stream was when a ping ran: its length and its oldest entry's publish time. */
export interface HistoryFill {
  readonly events: number;
  /** Milliseconds since the epoch; `undefined` for an empty stream. */
  readonly oldestTime: number | undefined;
}

/** Decode the ping script's reply (`{1, XLEN, oldest time or 0}`); `undefined` for anything else. */
export function decodePingReply(reply: unknown): HistoryFill | undefined {
  if (!Array.isArray(reply)) return undefined;
  const [, events, oldest] = reply as [number, number, number];
  return { events, oldestTime: oldest > 0 ? oldest : undefined };
}
