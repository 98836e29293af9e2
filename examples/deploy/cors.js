// CORS for micro frontends served from other origins than the BFF: `cors` in front of the gateway.
//
//   app.use(corsForGateway(process.env.ALLOWED_ORIGINS)); // before the gateway, e.g. "https://a.example,https://b.example"
//   app.use(gateway);
//
// Why each setting:
// - exact origins, never `*` or a reflected Origin: with credentials the browser would send the session cookie
//   for any page that asks, and `*` is refused with credentials anyway;
// - `origin` answered `false` for any other origin: then `cors` adds no header at all (with a plain origin list
//   it would still send `Access-Control-Allow-Credentials: true`), and the page can read nothing;
// - `credentials: true`: the client's `withCredentials: true` sends cookies with the stream (EventSource) and
//   with subscription changes (fetch with `credentials: 'include'`); the browser drops a credentialed response
//   without `Access-Control-Allow-Credentials: true`;
// - `Content-Type` allowed: `POST {path}/subscriptions` sends JSON, so the browser asks first (preflight);
// - `Last-Event-ID` allowed: EventSource sends it without asking, but fetch-based clients and polyfills send it
//   as a request header, which needs a preflight;
// - `maxAge`: the preflight answer is cached, so a subscription change costs one request, not two.
// CORS decides what a page may read, not what reaches the server: a disallowed page's GET still arrives.
// Authentication (and SameSite cookies) decide whom the gateway serves.
const cors = require('cors');

/**
 * The `cors` middleware for these origins (an array, or a comma-separated string as in ALLOWED_ORIGINS).
 *
 * @param {string[] | string | undefined} origins - the exact allowed origins, `scheme://host[:port]`.
 * @returns {import('express').RequestHandler}
 */
function corsForGateway(origins) {
  const allowed = new Set(
    (Array.isArray(origins) ? origins : String(origins ?? '').split(','))
      .map((origin) => origin.trim())
      .filter(Boolean),
  );
  return cors({
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin) ? origin : false),
    credentials: true,
    methods: ['GET', 'POST'],
    allowedHeaders: ['Content-Type', 'Last-Event-ID'],
    maxAge: 600,
  });
}

module.exports = { corsForGateway };
