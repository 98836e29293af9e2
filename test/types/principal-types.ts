/**
 * Type tests (compiled by `npm run typecheck`, never run): an app's own user type flows into the callbacks.
 */
import type { Request } from 'express';
import { sseMiddleware } from '../../src';

interface User {
  id: string;
  tenant: string;
  roles: string[];
}

declare function currentUser(req: Request): User | null;

// Named once, it types every callback.
sseMiddleware<User>({
  channels: { logs: { authorize: (user) => user.roles.includes('ops') } },
  authentication: (req) => currentUser(req),
  authorize: (user, channel) => channel.startsWith(`logs:${user.tenant}`),
  filter: (user, event) => event.channel.includes(user.tenant),
  authorizeCacheKey: (user) => user.tenant,
});

// Inferred from `authentication`.
sseMiddleware({
  channels: ['logs'],
  authentication: (req) => currentUser(req),
  authorize: (user) => user.roles.length > 0,
});

// An interface without an index signature is a principal.
const asPrincipal: import('../../src').Principal = { id: 'u1', tenant: 't', roles: [] } as User;
void asPrincipal;

// @ts-expect-error a principal needs a string `id`
sseMiddleware<{ name: string }>({ channels: ['logs'] });

sseMiddleware<User>({
  channels: ['logs'],
  // @ts-expect-error `authorize` sees the app's user type, which has no `email`
  authorize: (user) => user.email === 'x',
});
