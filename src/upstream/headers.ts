/**
 * Header rules toward an upstream: which of the client's headers `sseProxy` passes on, the headers every
 * upstream stream request carries, and how configured headers (the service's credentials) are checked and
 * laid over the rest.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { Request } from 'express';
import { describe, isPlainObject, OptionError } from '../util/validate';

/** RFC 9110 §7.6.1 hop-by-hop headers, plus ones a proxy must set itself. */
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
  // The BFF's own credentials for the browser; the upstream gets a service credential through `headers`.
  'authorization',
  'cookie',
  // Set by streamHeaders: a proxy that negotiated these for the browser would have to honour them itself.
  'accept',
  'accept-encoding',
  'cache-control',
  'last-event-id',
]);

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

/** @internal What `sseProxy` sends for a client's request, before its configured headers. */
export interface ForwardRules {
  readonly forwardCookies: boolean;
}

/** @internal The client's headers that `sseProxy` passes on to the upstream. */
export function forwardedHeaders(req: Request, rules: ForwardRules): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  // Headers the client named in `Connection` are hop-by-hop too (RFC 9110 §7.6.1).
  const named = new Set(
    String(req.headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase()),
  );
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || NEVER_FORWARDED.has(name) || named.has(name)) continue;
    headers[name] = value;
  }
  if (rules.forwardCookies && req.headers.cookie !== undefined) headers.cookie = req.headers.cookie;
  return headers;
}
