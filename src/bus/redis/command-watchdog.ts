/**
 * The command link's watchdog. A link blackholed by a NAT or a load balancer keeps its socket open, so
 * ioredis stays `ready` while every command waits for ever: the subscriber's watchdog cannot see it (its
 * pings go out on this link, and a failed ping says nothing about the subscriber). A PING per interval
 * that is not answered within the next interval marks the link dead (`status().connected` turns false,
 * which readiness reads) and, on a connection the bus owns, reconnects it; held publishes then go out on
 * the new connection (outbox.ts).
 */
import type { Logger } from '../../types';
import type { CommandClient } from './clients';

/** Probes the command connection and reports or replaces it when it stops answering. */
export class CommandWatchdog {
  readonly #timer: NodeJS.Timeout;
  #probe: { readonly sentAt: number } | undefined;
  #dead = false;
  readonly #onReady = () => {
    this.#dead = false;
    this.#probe = undefined;
  };

  /**
   * @param reconnect - true when the bus owns the connection (a user's client is only reported, not replaced).
   */
  constructor(
    private readonly commands: CommandClient,
    private readonly intervalMs: number,
    private readonly logger: Logger,
    private readonly reconnect: boolean,
  ) {
    commands.on('ready', this.#onReady);
    this.#timer = setInterval(() => this.check(), intervalMs);
    this.#timer.unref();
  }

  /** True from a missed PING until the link answers again or reconnects. */
  get dead(): boolean {
    return this.#dead;
  }

  /** Stop probing. */
  close(): void {
    clearInterval(this.#timer);
    this.commands.off('ready', this.#onReady);
  }

  private check(): void {
    if (this.commands.status !== 'ready') {
      this.#probe = undefined;
      return;
    }
    const pending = this.#probe;
    if (pending !== undefined) {
      if (Date.now() - pending.sentAt < this.intervalMs) return;
      this.#probe = undefined;
      if (!this.#dead) {
        const action = this.reconnect ? 'reconnecting it' : 'the client is the application’s, so it is left to it';
        this.logger.warn(
          `sse-gateway: Redis bus command connection did not answer a PING within ${this.intervalMs} ms; ${action}.`,
        );
      }
      this.#dead = true;
      if (this.reconnect) this.commands.disconnect(true);
      return;
    }
    const probe = { sentAt: Date.now() };
    this.#probe = probe;
    this.commands.ping().then(
      () => {
        if (this.#probe === probe) this.#probe = undefined;
        this.#dead = false;
      },
      () => {
        // A closed link rejects at once; its `close`/`ready` events tell the rest.
        if (this.#probe === probe) this.#probe = undefined;
      },
    );
  }
}
