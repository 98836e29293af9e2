/**
 * The JSON body reader of every route that takes a body (publish, subscriptions): JSON only, and a byte cap,
 * whether or not a body parser ran before the gateway. A route that trusted `req.body` would let
 * `express.urlencoded()` turn a cross-site form post into an event, and would let a parser with a generous
 * limit carry a body far above the route's cap.
 */
import type { Request } from 'express';
import { SseError } from '../protocol/errors';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const CHARSET = /;\s*charset\s*=\s*"?([\w-]+)"?/i;

/** The body parsers of Express (body-parser) mark what they read with `_body`. */
interface ParsedRequest {
  body?: unknown;
  _body?: unknown;
}

function tooLarge(limit: number): SseError {
  return new SseError(
    'ERR_SSE_PAYLOAD_TOO_LARGE',
    `The body exceeds ${limit} bytes; split it into several requests.`,
    413,
    { limit },
  );
}

function notJson(why: string): SseError {
  return new SseError(
    'ERR_SSE_BAD_REQUEST',
    `${why} Send the body as JSON with Content-Type: application/json (UTF-8, no Content-Encoding).`,
    415,
  );
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new SseError('ERR_SSE_BAD_REQUEST', 'The body is not valid JSON.', 400);
  }
}

/** True when something before the gateway already read the request stream. */
function consumed(req: Request): boolean {
  return (req as ParsedRequest)._body === true || req.readableEnded || (req.complete && !req.readable);
}

/** Check the headers: JSON media type, UTF-8, no compression, a declared length within `limit`. */
function checkHeaders(req: Request, limit: number): void {
  const type = req.get('content-type') ?? '';
  if (!JSON_TYPE.test(type)) {
    throw notJson(type === '' ? 'The request has no Content-Type.' : `Content-Type ${type.slice(0, 100)} is refused.`);
  }
  const charset = CHARSET.exec(type)?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8')
    throw notJson(`Charset ${charset} is refused.`);
  const encoding = (req.get('content-encoding') ?? 'identity').toLowerCase();
  if (encoding !== 'identity') throw notJson(`Content-Encoding ${encoding.slice(0, 40)} is refused.`);
  if (Number(req.get('content-length')) > limit) throw tooLarge(limit);
}

/**
 * What an earlier body parser left. The raw bytes are gone, so the cap is checked on the declared length and
 * on the parsed value serialised again (which can only be smaller than a padded original).
 */
function fromParsed(req: Request, limit: number): unknown {
  const body = (req as ParsedRequest).body;
  if (Buffer.isBuffer(body)) {
    if (body.length > limit) throw tooLarge(limit);
    return parse(body.toString('utf8'));
  }
  if (typeof body === 'string') {
    if (Buffer.byteLength(body) > limit) throw tooLarge(limit);
    return parse(body);
  }
  if (typeof body === 'object' && body !== null) {
    if (Buffer.byteLength(JSON.stringify(body)) > limit) throw tooLarge(limit);
    return body;
  }
  throw new SseError(
    'ERR_SSE_BAD_REQUEST',
    'The request body was consumed before the gateway saw it; mount the gateway before body parsers (app.use(gateway) first).',
    400,
  );
}

/** Read the raw stream up to `limit` bytes; past it, stop keeping it and reject. */
function readRaw(req: Request, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        // Drain and drop the rest, so the answer is read; the route closes the connection after it.
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (): void => {
      cleanup();
      reject(new SseError('ERR_SSE_BAD_REQUEST', 'The request body could not be read to its end.', 400));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onError);
  });
}

/**
 * Read a JSON request body of at most `limit` bytes.
 *
 * Refuses (415) anything but `application/json` (or `application/*+json`) in UTF-8 without
 * `Content-Encoding`, even when `express.urlencoded()` or `express.json({ type: '*\/*' })` already parsed it;
 * refuses (413) more than `limit` bytes, checked on the stream itself, or, after an earlier parser, on
 * `Content-Length` and on the parsed body.
 *
 * @param req - the request, read or not by earlier middleware.
 * @param limit - the largest accepted body, in bytes.
 * @returns the parsed JSON value.
 * @throws SseError `ERR_SSE_BAD_REQUEST` (400 malformed, 415 not JSON) or `ERR_SSE_PAYLOAD_TOO_LARGE` (413).
 * @example
 * const body = await readJsonBody(req, 65_536);
 */
export async function readJsonBody(req: Request, limit: number): Promise<unknown> {
  checkHeaders(req, limit);
  if (consumed(req)) return fromParsed(req, limit);
  const raw = await readRaw(req, limit);
  return parse(raw.toString('utf8'));
}
