/**
 * The client's one status field and its legal transitions. Every change goes through {@link StatusMachine.to},
 * so no combination of flags can describe a state the table does not name.
 */
import type { ClientStatus, SseClientError } from './types';

/**
 * Legal transitions. `connecting` is the first attempt after `idle`; `reconnecting` is every later attempt
 * (after a drop, a failure, or a change of channels by reconnecting), including the wait before it.
 * `idle` again when the last subscription leaves; `closed` after `close()` or an answer that forbids
 * retrying (401), from which only a new subscription starts over.
 */
export const TRANSITIONS: Readonly<Record<ClientStatus, readonly ClientStatus[]>> = {
  idle: ['connecting', 'closed'],
  connecting: ['open', 'reconnecting', 'idle', 'closed'],
  open: ['reconnecting', 'idle', 'closed'],
  reconnecting: ['open', 'idle', 'closed'],
  closed: ['connecting'],
};

/** A status listener, told of the new status and of the error that caused it, if any. */
export type StatusListener = (status: ClientStatus, error?: SseClientError) => void;

/** The status of one client. */
export interface StatusMachine {
  /** The current status. */
  readonly status: ClientStatus;
  /**
   * Move to `next`; a no-op when already there. Throws on a transition {@link TRANSITIONS} does not list
   * (a bug of the client, never of its user).
   *
   * @param next - the new status.
   * @param error - why, if something failed.
   */
  to(next: ClientStatus, error?: SseClientError): void;
  /** Tell the listeners of an error without changing the status (an upstream's `sse:error`). */
  report(error: SseClientError): void;
  /** Add a listener; returns its removal. */
  listen(listener: StatusListener): () => void;
}

/** True when the table allows `from` → `to`. */
export function canTransition(from: ClientStatus, to: ClientStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * A status machine starting at `idle`.
 *
 * @param onListenerError - where an exception of a listener goes, so that one listener cannot stop the others.
 * @example
 * ```ts
 * const machine = createStatusMachine(console.error);
 * machine.listen((status) => console.log(status));
 * machine.to('connecting');
 * ```
 */
export function createStatusMachine(onListenerError: (error: unknown) => void): StatusMachine {
  let status: ClientStatus = 'idle';
  const listeners = new Set<StatusListener>();
  const emit = (error: SseClientError | undefined): void => {
    for (const listener of [...listeners]) {
      try {
        if (error === undefined) listener(status);
        else listener(status, error);
      } catch (thrown) {
        onListenerError(thrown);
      }
    }
  };
  return {
    get status() {
      return status;
    },
    to(next, error) {
      if (next === status) {
        if (error !== undefined) emit(error);
        return;
      }
      if (!canTransition(status, next)) throw new Error(`sse client: illegal status change ${status} → ${next}`);
      status = next;
      emit(error);
    },
    report(error) {
      emit(error);
    },
    listen(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
  };
}
