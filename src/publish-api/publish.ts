/**
 * `POST {path}/publish` after authentication: the body read and checked whole (every event valid and
 * allowed, or nothing is published), then the events published in order on the gateway's bus.
 */
import type { Request, Response } from 'express';
import { checkIdempotencyKey, preparePublish } from '../bus/event';
import { matchChannel, namespaceOf, type Topic } from '../protocol/channels';
import { SseError } from '../protocol/errors';
import { sendError } from '../server/http-errors';
import type { GatewayConfig } from '../server/options';
import { readJsonBody } from '../server/read-json';
import type { PublishOptions, SseEvent } from '../types';

/** Most events in one batch. */
export const MAX_BATCH_EVENTS = 100;

const EVENT_KEYS = ['channel', 'data', 'users', 'idempotencyKey'];

/** Where events are published: the gateway that mounted the route. */
export interface PublishTarget {
  publish(channel: string, data: unknown, options?: Omit<PublishOptions, 'bus'>): Promise<SseEvent>;
}

/** Who is publishing, once authenticated. */
export interface PublishCaller {
  /** For logs, e.g. `publisher etl` or `admin` (never a token). */
  readonly label: string;
  /** The channels and patterns it may publish to; `undefined` for any channel of the gateway. */
  readonly topics: readonly Topic[] | undefined;
  /** Largest accepted body, in bytes. */
  readonly maxBodyBytes: number;
}

interface PublishItem {
  readonly channel: string;
  readonly data: unknown;
  readonly users: readonly string[] | undefined;
  readonly idempotencyKey: string | undefined;
}

function bad(message: string, code: 'ERR_SSE_BAD_REQUEST' | 'ERR_SSE_INVALID_DATA' = 'ERR_SSE_BAD_REQUEST'): SseError {
  return new SseError(code, message, 400);
}

/** Check one event of the body; `where` names it in messages (`the event`, `events[3]`). */
function parseItem(where: string, value: unknown, config: GatewayConfig, fallbackKey: string | undefined): PublishItem {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad(`${where} must be an object: { "channel": "logs:ws1", "data": … }.`);
  }
  const fields = value as Record<string, unknown>;
  const unknown = Object.keys(fields).find((key) => !EVENT_KEYS.includes(key));
  if (unknown !== undefined) {
    throw bad(
      `${where} has an unknown field ${JSON.stringify(unknown.slice(0, 64))}; fields are ${EVENT_KEYS.join(', ')}.`,
    );
  }
  const { channel, data, users } = fields;
  if (typeof channel !== 'string') throw bad(`${where} needs a string \`channel\`, e.g. "logs:ws1".`);
  const namespace = namespaceOf(channel);
  if (!config.namespaces.has(namespace)) {
    throw new SseError(
      'ERR_SSE_INVALID_CHANNEL',
      `${where}: cannot publish to ${channel.slice(0, 140)}: namespace ${namespace.slice(0, 140)} is not one of ${[...config.namespaces.keys()].join(', ')}.`,
      400,
      { channels: [channel.slice(0, 140)] },
    );
  }
  // The bus runs the same checks again; running them here first is what makes a batch all-or-nothing.
  preparePublish(channel, data, users as readonly string[] | undefined, config.limits.maxEventBytes);
  const idempotencyKey = checkIdempotencyKey(fields.idempotencyKey ?? fallbackKey);
  return { channel, data, users: users as readonly string[] | undefined, idempotencyKey };
}

/**
 * The events of a body: `{ channel, data, … }` or `{ events: [ … ] }`. A single event takes the
 * `Idempotency-Key` header as its key; in a batch, event `i` without its own key takes `{header}:{i}`, so a
 * retried batch publishes only what its first try did not.
 */
function parseBody(
  body: unknown,
  config: GatewayConfig,
  header: string | undefined,
): { batch: boolean; items: PublishItem[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw bad('The body must be an object: { "channel", "data" } or { "events": [ … ] }.');
  }
  if (!('events' in body)) return { batch: false, items: [parseItem('the event', body, config, header)] };
  const { events, ...rest } = body as { events: unknown };
  if (Object.keys(rest).length > 0) throw bad('A batch body has only `events`: { "events": [ … ] }.');
  if (!Array.isArray(events) || events.length === 0 || events.length > MAX_BATCH_EVENTS) {
    throw bad(`\`events\` must be a list of 1-${MAX_BATCH_EVENTS} events.`);
  }
  const items = events.map((event: unknown, i) =>
    parseItem(`events[${i}]`, event, config, header === undefined ? undefined : `${header}:${i}`),
  );
  const keys = new Set<string>();
  for (const [i, item] of items.entries()) {
    if (item.idempotencyKey === undefined) continue;
    if (keys.has(item.idempotencyKey))
      throw bad(`events[${i}] repeats an idempotencyKey of the same batch.`, 'ERR_SSE_INVALID_DATA');
    keys.add(item.idempotencyKey);
  }
  return { batch: true, items };
}

function forbidden(caller: PublishCaller, items: readonly PublishItem[]): SseError | undefined {
  const { topics } = caller;
  if (topics === undefined) return undefined;
  const denied = [...new Set(items.map((item) => item.channel))].filter(
    (channel) => !topics.some((topic) => matchChannel(topic, channel)),
  );
  if (denied.length === 0) return undefined;
  const shown = denied.slice(0, 10);
  return new SseError(
    'ERR_SSE_FORBIDDEN_CHANNEL',
    `This token may not publish to ${shown.join(', ')}${denied.length > shown.length ? ', …' : ''}; nothing was published. It may publish to ${topics.map((t) => t.name).join(', ')}.`,
    403,
    { channels: shown },
  );
}

const answer = (event: SseEvent) => ({ id: event.id, channel: event.channel, time: event.time });

/**
 * Read, check and publish the body of `req` for `caller`, then answer `res`: 201 with the event (or
 * `{ events }` in order), or the error through `sendError`.
 *
 * @param target - the gateway whose `publish` is used (this gateway, not the process default).
 */
export async function publishFromRequest(
  req: Request,
  res: Response,
  target: PublishTarget,
  config: GatewayConfig,
  caller: PublishCaller,
): Promise<void> {
  let parsed: { batch: boolean; items: PublishItem[] };
  try {
    const body = await readJsonBody(req, caller.maxBodyBytes);
    parsed = parseBody(body, config, req.get('idempotency-key'));
  } catch (error) {
    // The rest of an oversized body is not worth reading on this connection (no such header in HTTP/2).
    if (error instanceof SseError && error.status === 413 && req.httpVersionMajor < 2) {
      res.setHeader('Connection', 'close');
    }
    return sendError(res, error instanceof SseError ? error : bad('The body could not be read.'));
  }
  const denied = forbidden(caller, parsed.items);
  if (denied !== undefined) return sendError(res, denied);
  const published: SseEvent[] = [];
  try {
    // One after the other: the bus sequences each publish, so the ids follow the order of the body.
    for (const item of parsed.items) {
      published.push(
        await target.publish(item.channel, item.data, {
          ...(item.users === undefined ? {} : { users: item.users }),
          ...(item.idempotencyKey === undefined ? {} : { idempotencyKey: item.idempotencyKey }),
        }),
      );
    }
  } catch (error) {
    if (error instanceof SseError && error.status < 500) return sendError(res, error);
    config.logger.error(`sse-gateway: publish over HTTP by ${caller.label} failed`, error);
    return sendError(
      res,
      new SseError(
        'ERR_SSE_BUS_UNAVAILABLE',
        `Publishing failed after ${published.length} of ${parsed.items.length} event(s); retry with the same idempotency keys.`,
        503,
        { published: published.length },
      ),
      config.limits.retryAfterSeconds,
    );
  }
  res.status(201).setHeader('Cache-Control', 'no-store');
  if (parsed.batch) res.json({ events: published.map(answer) });
  else res.json(answer(published[0] as SseEvent));
}
