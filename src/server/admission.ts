/**
 * Admission: how many streams are open or being opened, in all and per principal, against the limits.
 */
import { SseError } from '../protocol/errors';
import type { Principal } from '../types';
import { ANONYMOUS } from './access';

/** The limits admission checks. */
export interface AdmissionLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerUser: number;
}

/** Counts open and pending streams; answers whether one more may open. */
export class Admission {
  private open = 0;
  private pending = 0;
  private readonly perUser = new Map<string, number>();

  /** @param limits - the gateway's limits. */
  constructor(private readonly limits: AdmissionLimits) {}

  /** Distinct principals with at least one open stream. */
  get users(): number {
    return this.perUser.size;
  }

  /** Open streams of `principalId`. */
  streamsOf(principalId: string): number {
    return this.perUser.get(principalId) ?? 0;
  }

  /** Before authentication: room for one more stream, counting those being opened? Else the 429 to send. */
  checkPending(): SseError | undefined {
    if (this.open + this.pending >= this.limits.maxConnections) return tooManyConnections();
    return undefined;
  }

  /** A request is being authenticated and authorised; call the returned function when that is done. */
  begin(): () => void {
    this.pending++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.pending--;
    };
  }

  /** After authentication: may `principal` open one more stream? Else the 429 to send. */
  check(principal: Principal): SseError | undefined {
    if (this.open >= this.limits.maxConnections) return tooManyConnections();
    const { maxConnectionsPerUser } = this.limits;
    if (principal !== ANONYMOUS && this.streamsOf(principal.id) >= maxConnectionsPerUser) {
      return new SseError(
        'ERR_SSE_TOO_MANY_USER_CONNECTIONS',
        `You have ${maxConnectionsPerUser} open streams already; close a tab or retry later.`,
        429,
      );
    }
    return undefined;
  }

  /** A stream of `principal` opened. */
  opened(principal: Principal): void {
    this.open++;
    if (principal !== ANONYMOUS) this.perUser.set(principal.id, this.streamsOf(principal.id) + 1);
  }

  /** A stream of `principal` closed. */
  closed(principal: Principal): void {
    this.open--;
    if (principal === ANONYMOUS) return;
    const count = this.streamsOf(principal.id) - 1;
    if (count <= 0) this.perUser.delete(principal.id);
    else this.perUser.set(principal.id, count);
  }
}

function tooManyConnections(): SseError {
  return new SseError('ERR_SSE_TOO_MANY_CONNECTIONS', 'The server has reached its stream limit; retry later.', 429);
}
