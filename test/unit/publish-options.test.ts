import { sseMiddleware } from '../../src';
import { createMemoryBus } from '../../src/bus/memory-bus';
import type { SseOptions } from '../../src/types';

const TOKEN = 'a-token-of-enough-length';
const make = (publishers: unknown) =>
  sseMiddleware({ channels: ['logs', 'alerts'], bus: createMemoryBus(), publishers } as SseOptions);

describe('the `publishers` option', () => {
  it('accepts one token or several, with channels and patterns of the gateway namespaces', async () => {
    const gateway = make({
      etl: { token: TOKEN, channels: ['logs:*', 'alerts:u1'] },
      next: { token: [`${TOKEN}-2`, `${TOKEN}-3`], channels: ['logs'], maxBodyBytes: 4096 },
    });
    await gateway.close();
  });

  it.each([
    [{}, /must map publisher names/],
    [[], /must map publisher names/],
    [{ etl: 'x' }, /publishers\.etl must be \{ token, channels \}/],
    [{ etl: { tokens: TOKEN, channels: ['logs:*'] } }, /unknown option `tokens`; did you mean `token`\?/],
    [{ etl: { token: TOKEN, chanels: ['logs:*'] } }, /did you mean `channels`\?/],
    [{ etl: { channels: ['logs:*'] } }, /token must be a token string or a non-empty list/],
    [{ etl: { token: [], channels: ['logs:*'] } }, /non-empty list/],
    [{ etl: { token: 'short', channels: ['logs:*'] } }, /16-4096 visible ASCII/],
    [{ etl: { token: `${TOKEN} with space`, channels: ['logs:*'] } }, /without spaces/],
    [{ etl: { token: TOKEN, channels: [] } }, /non-empty list of channels/],
    [{ etl: { token: TOKEN, channels: ['logs:**'] } }, /"logs:\*\*" is not a channel or pattern/],
    [{ etl: { token: TOKEN, channels: ['*'] } }, /is not a channel or pattern/],
    [
      { etl: { token: TOKEN, channels: ['secrets:*'] } },
      /secrets:\* is outside the gateway's namespaces \(logs, alerts\)/,
    ],
    [
      { etl: { token: TOKEN, channels: ['logs:*'], maxBodyBytes: 1.5 } },
      /publishers.etl.maxBodyBytes must be an integer >= 64/,
    ],
    [
      { a: { token: TOKEN, channels: ['logs:*'] }, b: { token: [`${TOKEN}-b`, TOKEN], channels: ['alerts:*'] } },
      /publishers\.b\.token: a token is configured twice \(also for publishers\.a\)/,
    ],
  ])('refuses %j at creation', (publishers, message) => {
    let thrown: unknown;
    try {
      make(publishers);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as { code?: string }).code).toBe('ERR_SSE_INVALID_OPTION');
    expect((thrown as Error).message).toMatch(message);
    // An option error ends up in logs: it never repeats a token.
    expect((thrown as Error).message).not.toContain(TOKEN);
  });
});
