/**
 * `POST {path}/subscriptions`: change the channels of an open stream without reconnecting.
 *
 * The request names the stream (`connectionId` and the `subscriptionToken` that `sse:ready` gave its
 * reader) and is authenticated and authorised exactly like a stream request. The instance holding the stream
 * applies the change and writes `sse:subscribed` in order with the stream's events: from that frame on, the
 * added channels are live and the removed ones silent. When the stream is on another instance, the change
 * travels there as a bus signal (202). See protocol/wire.ts for the bodies.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { matchChannel, type Topic } from '../protocol/channels';
import { SseError } from '../protocol/errors';
import { formatEvent } from '../protocol/framing';
import {
  ControlEvent,
  type RefusedChannel,
  type SubscribedPayload,
  type SubscriptionChangeResponse,
} from '../protocol/wire';
import type { Principal, SubscriptionSignal } from '../types';
import { ANONYMOUS, resolvePrincipal } from './access';
import type { Connection } from './connection';
import type { Gateway } from './gateway';
import { sendError } from './http-errors';
import { readJsonBody } from './read-json';
import { confirmWatches, replayInto } from './replay';
import { closingError } from './stream-route';
import { tooManyChannels } from './topics';

/** Largest accepted body: a hundred channel names with ids fit many times over. */
const MAX_BODY_BYTES = 65_536;
const REQUEST_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** A change as read from a request, before authorisation. */
interface ChangeRequest {
  readonly connectionId: string;
  readonly subscriptionToken: string;
  readonly requestId: string;
  readonly add: readonly { readonly channel: string; readonly since?: string }[];
  readonly remove: readonly string[];
}

function badRequest(message: string): SseError {
  return new SseError('ERR_SSE_BAD_REQUEST', message, 400);
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 4096;
}

/** Check the body's shape; the channels themselves are checked one by one later. */
export function parseChangeRequest(body: unknown, maxChannels: number): ChangeRequest {
  const { connectionId, subscriptionToken, requestId, add = [], remove = [] } = (body ?? {}) as Record<string, unknown>;
  if (!isName(connectionId) || !isName(subscriptionToken)) {
    throw badRequest('Name the stream: { "connectionId", "subscriptionToken" } as sse:ready gave them.');
  }
  if (typeof requestId !== 'string' || !REQUEST_ID.test(requestId)) {
    throw badRequest('`requestId` must be 1-64 characters of [A-Za-z0-9_-].');
  }
  if (!Array.isArray(add) || !Array.isArray(remove) || add.length + remove.length > 2 * maxChannels) {
    throw badRequest(`\`add\` and \`remove\` must be arrays of at most ${maxChannels} channels each.`);
  }
  const adds = add.map((item: unknown) => {
    const entry = typeof item === 'string' ? { channel: item } : ((item ?? {}) as Record<string, unknown>);
    const { channel, since } = entry;
    if (!isName(channel) || (since !== undefined && !isName(since))) {
      throw badRequest('Each of `add` is a channel name or { "channel", "since"? } with string values.');
    }
    return since === undefined ? { channel } : { channel, since };
  });
  if (!remove.every(isName)) throw badRequest('`remove` must list channel names.');
  return { connectionId, subscriptionToken, requestId, add: adds, remove: remove as string[] };
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** True when `principalId` and `token` prove the request comes from `connection`'s reader. */
function owns(gateway: Gateway, connection: Connection, principalId: string, token: string): boolean {
  const streamPrincipal = connection.principal === ANONYMOUS ? ANONYMOUS.id : connection.principal.id;
  return streamPrincipal === principalId && sameSecret(gateway.subscriptionToken(connection.id), token);
}

/** Answer one subscription-change request. */
export async function handleSubscriptionChange(gateway: Gateway, req: Request, res: Response): Promise<void> {
  if (gateway.closing) return sendError(res, closingError(), gateway.config.limits.retryAfterSeconds);
  let change: ChangeRequest;
  let principal: Principal;
  try {
    change = parseChangeRequest(
      await readJsonBody(req, MAX_BODY_BYTES),
      gateway.config.limits.maxChannelsPerConnection,
    );
    principal = await resolvePrincipal(gateway.config, req);
  } catch (error) {
    return sendError(res, error instanceof SseError ? error : badRequest('Unreadable request.'));
  }
  const { accepted, refused } = await authorise(gateway, principal, change, req);
  const add = change.add.filter((item) => accepted.includes(item.channel));
  const connection = gateway.byId.get(change.connectionId);
  if (connection !== undefined) {
    if (!owns(gateway, connection, principal.id, change.subscriptionToken)) {
      return sendError(res, new SseError('ERR_SSE_FORBIDDEN', 'This stream is not yours to change.', 403));
    }
    const outcome = await applyChange(gateway, connection, { ...change, add });
    return answer(res, 200, change, outcome.added, [...refused, ...outcome.refused], outcome.removed);
  }
  if (gateway.bus.signal === undefined) {
    return sendError(
      res,
      new SseError('ERR_SSE_UNKNOWN_CONNECTION', 'No such stream here; reconnect with the new channel list.', 404),
    );
  }
  const signal: SubscriptionSignal = { type: 'subscriptions', principalId: principal.id, ...change, add };
  try {
    await gateway.bus.signal(signal);
  } catch (error) {
    return sendError(
      res,
      error instanceof SseError ? error : new SseError('ERR_SSE_BUS_UNAVAILABLE', 'Could not reach the stream.', 503),
    );
  }
  answer(res, 202, change, accepted, refused, [...change.remove]);
}

function answer(
  res: Response,
  status: 200 | 202,
  change: ChangeRequest,
  accepted: readonly string[],
  refused: readonly RefusedChannel[],
  removed: readonly string[],
): void {
  const body: SubscriptionChangeResponse = { requestId: change.requestId, accepted, refused, removed };
  res.status(status).setHeader('Cache-Control', 'no-store');
  res.json(body);
}

/** Which added channels are valid and allowed for `principal`; the others with the error each would get. */
async function authorise(
  gateway: Gateway,
  principal: Principal,
  change: ChangeRequest,
  req: Request,
): Promise<{ accepted: string[]; refused: RefusedChannel[] }> {
  const refused: RefusedChannel[] = [];
  const topics: Topic[] = [];
  for (const { channel } of change.add) {
    const topic = gateway.topics.parse(channel);
    if (topic === null) {
      refused.push({ channel, code: 'ERR_SSE_INVALID_CHANNEL', status: 400, message: 'Malformed or unknown channel.' });
    } else topics.push(topic);
  }
  let denied: string[];
  try {
    denied = await gateway.authorizer.denied(principal, topics, req);
  } catch (error) {
    const failure = error instanceof SseError ? error : new SseError('ERR_SSE_CALLBACK_FAILED', 'Internal error.');
    denied = topics.map((topic) => topic.name);
    for (const channel of denied) refused.push({ channel, code: failure.code, status: 500, message: failure.message });
    return { accepted: [], refused };
  }
  for (const channel of denied) {
    refused.push({ channel, code: 'ERR_SSE_FORBIDDEN_CHANNEL', status: 403, message: 'Not allowed.' });
  }
  return { accepted: topics.map((topic) => topic.name).filter((name) => !denied.includes(name)), refused };
}

/** A change that came over the bus: applied if the stream is here and the request proved it owns it. */
export async function applySubscriptionChange(gateway: Gateway, signal: SubscriptionSignal): Promise<void> {
  const connection = gateway.byId.get(signal.connectionId);
  if (connection === undefined || !owns(gateway, connection, signal.principalId, signal.subscriptionToken)) return;
  await applyChange(gateway, connection, signal);
}

/**
 * Apply an authorised change to a local stream: removals first, then additions within the channel limit;
 * then, once the bus confirms the new watches, `sse:subscribed`, and the replay of added channels that
 * asked for one (`since`). Events of channels the stream had before are neither lost nor repeated: the
 * replay reads only channels that no earlier subscription covers.
 */
async function applyChange(
  gateway: Gateway,
  connection: Connection,
  change: Pick<ChangeRequest, 'requestId' | 'add' | 'remove'>,
): Promise<{ added: string[]; removed: string[]; refused: RefusedChannel[] }> {
  const { index } = gateway;
  const removed = change.remove.filter((name) => index.removeTopic(connection, name) !== undefined);
  if (removed.length > 0) connection.forget((channel) => index.covers(connection, channel));
  const before = [...index.topicsOf(connection)];
  const limit = gateway.config.limits.maxChannelsPerConnection;
  const added: string[] = [];
  const refused: RefusedChannel[] = [];
  const replayed: Topic[] = [];
  let since: string | undefined;
  const replaying = !connection.holding && change.add.some((item) => item.since !== undefined);
  if (replaying) connection.hold();
  for (const item of change.add) {
    const topic = gateway.topics.parse(item.channel);
    if (topic === null) continue;
    if (!before.some((t) => t.name === topic.name) && index.topicsOf(connection).length >= limit) {
      const { code, status, message } = tooManyChannels(index.topicsOf(connection).length + 1, limit);
      refused.push({ channel: item.channel, code, status, message });
      continue;
    }
    index.addTopic(connection, topic);
    added.push(topic.name);
    if (item.since !== undefined && !before.some((t) => t.name === topic.name)) {
      replayed.push(topic);
      since ??= item.since;
    }
  }
  await confirmWatches(gateway);
  const payload: SubscribedPayload = {
    requestId: change.requestId,
    added,
    removed,
    channels: index.topicsOf(connection).map((t) => t.name),
    ...(refused.length > 0 ? { refused } : {}),
  };
  connection.writeInOrder(formatEvent({ event: ControlEvent.subscribed, data: JSON.stringify(payload) }));
  if (!replaying) return { added, removed, refused };
  if (since === undefined) {
    connection.release([], undefined);
    return { added, removed, refused };
  }
  const covers = (channel: string): boolean =>
    replayed.some((topic) => matchChannel(topic, channel)) && !before.some((topic) => matchChannel(topic, channel));
  await replayInto(
    gateway,
    connection,
    since,
    covers,
    replayed.map((t) => t.name),
  );
  return { added, removed, refused };
}
