/**
 * Access control: who is connecting, which of the requested channels they may open, and which events
 * they may read.
 */
import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { LRUCache } from 'lru-cache';
import { isSegment, type Topic } from '../protocol/channels';
import { SseError } from '../protocol/errors';
import type { MaybePromise, Principal, SseEvent } from '../types';
import type { Connection, Gate } from './connection';
import type { GatewayConfig } from './options';

/** The principal of connections made without authentication. */
export const ANONYMOUS: Principal = Object.freeze({ id: 'anonymous', anonymous: true });

function isPrincipal(value: unknown): value is Principal {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Principal).id === 'string' &&
    (value as Principal).id !== ''
  );
}

/**
 * Resolve the principal of `req` per `authentication`.
 *
 * @throws SseError 401 when there is none, 500 when the callback fails or returns no string `id`.
 */
export async function resolvePrincipal(config: GatewayConfig, req: Request): Promise<Principal> {
  const { authentication } = config;
  const user = (req as Request & { user?: unknown }).user;
  if (authentication === false) return isPrincipal(user) ? user : ANONYMOUS;
  let principal: unknown;
  if (authentication === true) principal = user;
  else {
    try {
      principal = await authentication(req);
    } catch (cause) {
      config.logger.error('sse-gateway: the authentication callback threw', cause);
      throw new SseError('ERR_SSE_CALLBACK_FAILED', 'Authentication failed with an internal error.', 500);
    }
  }
  if (principal === null || principal === undefined || principal === false) {
    throw new SseError('ERR_SSE_UNAUTHENTICATED', 'Sign in to open this stream: no authenticated principal.', 401);
  }
  if (!isPrincipal(principal)) {
    // Its type and keys only: a principal object may carry tokens (an OIDC user's access_token).
    const shape = typeof principal === 'object' && principal !== null ? Object.keys(principal) : typeof principal;
    config.logger.error('sse-gateway: the principal has no non-empty string `id`; it has:', shape);
    throw new SseError('ERR_SSE_INVALID_PRINCIPAL', 'The server resolved a principal without a string `id`.', 500);
  }
  return principal;
}

/**
 * The default cache identity of a principal: a digest of the whole principal object (its id, tenant, roles,
 * session, whatever the app put on it), so two principals that differ in anything never share a decision.
 */
function principalDigest(principal: Principal): string {
  let text: string;
  try {
    text = JSON.stringify(principal, (_key, value: unknown) =>
      typeof value === 'object' && value !== null && !Array.isArray(value)
        ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1)))
        : value,
    );
  } catch {
    return '';
  }
  return createHash('sha256').update(text).digest('base64url');
}

/**
 * Connect-time ACL with a short cache of allow decisions (never of denials). A cached decision is keyed by
 * the principal's id, the app's `authorizeCacheKey(principal, req)` (by default a digest of the whole
 * principal object) and the channel. `disconnect(id)` bumps the principal's generation: a decision that was
 * being computed when it ran is not cached, and the stream route checks again before it opens.
 */
export class Authorizer {
  private readonly cache: LRUCache<string, true> | null;
  /** Bumped by {@link Authorizer.forget}; bounded, since ids of long-gone principals need not be kept. */
  private readonly generations = new LRUCache<string, number>({ max: 10_000 });

  constructor(private readonly config: GatewayConfig) {
    this.cache =
      config.authorizeCacheMs > 0 ? new LRUCache<string, true>({ max: 10_000, ttl: config.authorizeCacheMs }) : null;
  }

  /** The generation of `principalId`: compare before and after an await to see whether `forget` ran. */
  generation(principalId: string): number {
    return this.generations.get(principalId) ?? 0;
  }

  /** Drop every cached decision about `principalId`, so its next connection asks `authorize` again. */
  forget(principalId: string): void {
    this.generations.set(principalId, this.generation(principalId) + 1);
    if (this.cache === null) return;
    const prefix = `${principalId}\u0000`;
    for (const key of [...this.cache.keys()]) if (key.startsWith(prefix)) this.cache.delete(key);
  }

  /**
   * The requested topics `principal` may not open (empty when all are allowed).
   *
   * @throws SseError 500 when a callback throws.
   */
  async denied(principal: Principal, topics: readonly Topic[], req: Request): Promise<string[]> {
    const identity = principal === ANONYMOUS ? undefined : this.identity(principal, req);
    const generation = this.generation(principal.id);
    const verdicts = await Promise.all(
      topics.map((topic) => this.allowed(principal, topic, req, identity, generation)),
    );
    return topics.filter((_, i) => !verdicts[i]).map((topic) => topic.name);
  }

  /** The cache key prefix of `principal` for `req`, or `undefined` when its decisions are not cached. */
  private identity(principal: Principal, req: Request): string | undefined {
    if (this.cache === null) return undefined;
    const { authorizeCacheKey } = this.config;
    let key: string | undefined;
    try {
      key = authorizeCacheKey === undefined ? principalDigest(principal) : authorizeCacheKey(principal, req);
    } catch (cause) {
      this.config.logger.error('sse-gateway: authorizeCacheKey threw; this decision is not cached', cause);
      return undefined;
    }
    return typeof key === 'string' ? `${principal.id}\u0000${key}\u0000` : undefined;
  }

  private allowed(
    principal: Principal,
    topic: Topic,
    req: Request,
    identity: string | undefined,
    generation: number,
  ): MaybePromise<boolean> {
    const policy = this.config.namespaces.get(topic.namespace) ?? {};
    if (policy.userScoped) {
      // `alerts:u1` and `alerts:u1:*` belong to u1; `alerts:*` would span every user. An id that is not a
      // segment (`acme:bob`) owns no user-scoped channel: `acme` would otherwise read `alerts:acme:bob`.
      if (principal === ANONYMOUS || !isSegment(principal.id) || topic.segments[1] !== principal.id) return false;
    }
    const { authorize } = this.config;
    if (authorize === undefined && policy.authorize === undefined) return true;
    const key = identity === undefined ? undefined : identity + topic.name;
    if (key !== undefined && this.cache?.get(key) === true) return true;
    return this.decide(principal, topic, req, policy.authorize).then((verdict) => {
      // Only allows are cached, and only when no disconnect ran while this one was decided.
      if (verdict && key !== undefined && this.generation(principal.id) === generation) this.cache?.set(key, true);
      return verdict;
    });
  }

  private async decide(
    principal: Principal,
    topic: Topic,
    req: Request,
    policyAuthorize: GatewayConfig['authorize'],
  ): Promise<boolean> {
    try {
      if (this.config.authorize && (await this.config.authorize(principal, topic.name, req)) !== true) return false;
      if (policyAuthorize && (await policyAuthorize(principal, topic.name, req)) !== true) return false;
      return true;
    } catch (cause) {
      this.config.logger.error(`sse-gateway: authorize threw for ${topic.name}`, cause);
      throw new SseError('ERR_SSE_CALLBACK_FAILED', 'Authorization failed with an internal error.', 500);
    }
  }
}

/**
 * The per-event ACL: `users` on the event, then the namespace's `filter`, then the gateway's `filter`.
 * Synchronous answers stay synchronous so the common path allocates nothing; a filter that throws or
 * rejects hides the event (fail closed).
 */
export function createGate(config: GatewayConfig): Gate {
  const policyFilters = new Map<string, NonNullable<GatewayConfig['filter']>>();
  for (const [namespace, policy] of config.namespaces) if (policy.filter) policyFilters.set(namespace, policy.filter);
  const globalFilter = config.filter;
  const { logger } = config;

  const guarded = (
    filter: NonNullable<GatewayConfig['filter']>,
    principal: Principal,
    event: SseEvent,
  ): MaybePromise<boolean> => {
    try {
      const verdict = filter(principal, event);
      if (verdict === true || verdict === false) return verdict;
      if (verdict && typeof (verdict as Promise<boolean>).then === 'function') {
        return (verdict as Promise<boolean>).then(
          (v) => v === true,
          (cause: unknown) => {
            logger.error(`sse-gateway: filter rejected for ${event.channel}; the event is not sent`, cause);
            return false;
          },
        );
      }
      return Boolean(verdict);
    } catch (cause) {
      logger.error(`sse-gateway: filter threw for ${event.channel}; the event is not sent`, cause);
      return false;
    }
  };

  return (connection: Connection, event: SseEvent): MaybePromise<boolean> => {
    const { principal } = connection;
    if (event.users !== undefined && (principal === ANONYMOUS || !event.users.includes(principal.id))) return false;
    if (policyFilters.size > 0) {
      const colon = event.channel.indexOf(':');
      const policyFilter = policyFilters.get(colon === -1 ? event.channel : event.channel.slice(0, colon));
      if (policyFilter !== undefined) {
        const first = guarded(policyFilter, principal, event);
        if (globalFilter === undefined || first === false) return first;
        if (first === true) return guarded(globalFilter, principal, event);
        return first.then((ok) => (ok ? guarded(globalFilter, principal, event) : false));
      }
    }
    return globalFilter === undefined ? true : guarded(globalFilter, principal, event);
  };
}
