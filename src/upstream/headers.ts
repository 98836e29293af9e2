/**
 * Header rules toward an upstream: which of the client's headers `sseProxy` passes on, the headers every
 * upstream stream request carries, and how configured headers (the service's credentials) are checked and
 * laid over the rest.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { Request } from 'express';
import { describe, isPlainObject, OptionError } from '../util/validate';

/**
 * The client headers `sseProxy` passes on by default: what an upstream needs to localise, trace and
 * correlate a request, nothing that claims an identity, a tenant or an origin (those are the BFF's to
 * assert, through `headers`). `Last-Event-ID` travels too, read by {@link clientLastEventId}.
 */
const DEFAULT_FORWARDED = ['accept-language', 'user-agent', 'traceparent', 'tracestate', 'baggage', 'x-request-id'];

/** RFC 9110 §7.6.1 hop-by-hop headers, and the ones a proxy sets itself: never taken from the client. */
const NEVER_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'host',
  'content-length',
  'expect',
  // Set by streamHeaders: a proxy that negotiated these for the browser would have to honour them itself.
  'accept',
  'accept-encoding',
  'cache-control',
  'last-event-id',
]);

/** Set from the BFF's own view of the request; a client's values would be spoofable. */
const OWN_VIEW = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

/** RFC 9110 §5.1 `token`: what a header name may be. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Headers that describe this hop's message framing; not even a configured header may set them. */
const FRAMING = new Set(['host', 'connection', 'transfer-encoding', 'content-length']);

/** @internal Header values that cannot travel in an HTTP header (a `lastEventId` query parameter might). */
export function isHeaderSafe(value: string): boolean {
  return !/[\r\n\0]/.test(value);
}

/**
 * @internal Lower-cased, checked headers from a `headers` option or its function's answer.
 *
 * @param where - the option as the user wrote it, for the error message.
 * @throws OptionError for a value that is not an object of header-safe strings.
 */
export function normaliseHeaders(headers: unknown, where: string): Record<string, string> {
  if (!isPlainObject(headers)) {
    throw new OptionError(
      `${where} must be an object of header names to string values (received ${describe(headers)}).`,
    );
  }
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string' || !isHeaderSafe(value)) {
      throw new OptionError(`${where}: header ${JSON.stringify(name)} must be a string without CR, LF or NUL.`);
    }
    out[name.toLowerCase()] = value;
  }
  return out;
}

/**
 * @internal The request headers of an upstream stream: `base`, then what an SSE client must send, then the
 * configured headers, which win (they carry the service's credentials and deliberate overrides).
 *
 * @param lastEventId - where to resume, if anywhere.
 */
export function streamHeaders(
  base: OutgoingHttpHeaders,
  lastEventId: string | undefined,
  configured: Readonly<Record<string, string>>,
): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = { ...base };
  headers.accept = 'text/event-stream';
  headers['accept-encoding'] = 'identity';
  headers['cache-control'] = 'no-cache';
  if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
  for (const [name, value] of Object.entries(configured)) {
    if (!FRAMING.has(name)) headers[name] = value;
  }
  return headers;
}

/** @internal The Last-Event-ID a client resumes from: the header, else the `lastEventId` query parameter. */
export function clientLastEventId(req: Request): string | undefined {
  const header = req.headers['last-event-id'];
  if (typeof header === 'string') return header;
  const query = (req.query as Record<string, unknown> | undefined)?.lastEventId;
  if (typeof query === 'string' && isHeaderSafe(query)) return query;
  return undefined;
}

/** @internal Which client headers `sseProxy` passes on. */
export interface ForwardRules {
  /** Lower-cased header names. */
  readonly forward: ReadonlySet<string>;
  readonly forwardCookies: boolean;
}

/**
 * @internal The default allow-list widened by a `forwardHeaders` option.
 *
 * @param where - the option as the user wrote it, for the error message.
 * @throws OptionError for a name that is not a header, or one the proxy must not take from the client.
 */
export function forwardList(where: string, value: unknown): ReadonlySet<string> {
  const forward = new Set(DEFAULT_FORWARDED);
  if (value === undefined) return forward;
  if (!Array.isArray(value)) {
    throw new OptionError(
      `${where} must be an array of header names, e.g. ['x-tenant-id'] (received ${describe(value)}).`,
    );
  }
  for (const raw of value as unknown[]) {
    if (typeof raw !== 'string' || !TOKEN.test(raw))
      throw new OptionError(`${where}: ${describe(raw)} is not a header name.`);
    const name = raw.toLowerCase();
    const refusal = refusalOf(name);
    if (refusal !== undefined) throw new OptionError(`${where}: \`${name}\` ${refusal}`);
    forward.add(name);
  }
  return forward;
}

/** Why `name` cannot be widened into the allow-list, if it cannot. */
function refusalOf(name: string): string | undefined {
  if (name === 'cookie') return 'is forwarded with `forwardCookies: true`.';
  if (OWN_VIEW.has(name)) {
    return `cannot come from the client: sseProxy sets \`${name}\` itself from the BFF's view (req.ip, req.protocol, req.hostname); set another value with \`headers\`.`;
  }
  if (name === 'forwarded') {
    return 'is not forwarded: it would contradict the X-Forwarded-* headers sseProxy sets itself; set it with `headers`.';
  }
  if (NEVER_FORWARDED.has(name)) return 'is hop-by-hop or set by sseProxy itself, so it cannot be forwarded.';
  return undefined;
}

/**
 * @internal The headers `sseProxy` derives from a client's request: the allowed client headers, minus
 * any the client named in `Connection` (hop-by-hop too, RFC 9110 §7.6.1), then `X-Forwarded-*` as
 * Express sees the request (honouring the app's `trust proxy`).
 */
export function forwardedHeaders(req: Request, rules: ForwardRules): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  const named = new Set(
    String(req.headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase()),
  );
  for (const name of rules.forward) {
    const value = req.headers[name];
    if (value !== undefined && !named.has(name)) headers[name] = value;
  }
  if (rules.forwardCookies && req.headers.cookie !== undefined) headers.cookie = req.headers.cookie;
  if (req.ip !== undefined) headers['x-forwarded-for'] = req.ip;
  headers['x-forwarded-proto'] = req.protocol;
  if (req.hostname) headers['x-forwarded-host'] = req.hostname;
  return headers;
}
