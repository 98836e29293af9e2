import { canTransition, createStatusMachine, TRANSITIONS } from '../../src/client/status';
import type { ClientStatus } from '../../src/client/types';

const ALL: ClientStatus[] = ['idle', 'connecting', 'open', 'reconnecting', 'closed'];

describe('the client status machine', () => {
  it('starts idle and walks the life of a stream', () => {
    const machine = createStatusMachine(() => {});
    const seen: string[] = [];
    machine.listen((status, error) => seen.push(error ? `${status}:${error.code}` : status));
    expect(machine.status).toBe('idle');
    for (const next of ['connecting', 'open', 'reconnecting', 'open', 'idle', 'connecting', 'closed'] as const) {
      machine.to(next);
    }
    expect(seen).toEqual(['connecting', 'open', 'reconnecting', 'open', 'idle', 'connecting', 'closed']);
  });

  it('refuses every transition the table does not list', () => {
    for (const from of ALL) {
      for (const to of ALL) {
        if (from === to) continue;
        const machine = createStatusMachine(() => {});
        const path: Record<ClientStatus, ClientStatus[]> = {
          idle: [],
          connecting: ['connecting'],
          open: ['connecting', 'open'],
          reconnecting: ['connecting', 'reconnecting'],
          closed: ['closed'],
        };
        for (const step of path[from]) machine.to(step);
        expect(machine.status).toBe(from);
        if (TRANSITIONS[from].includes(to)) {
          machine.to(to);
          expect(machine.status).toBe(to);
        } else {
          expect(() => machine.to(to)).toThrow(`illegal status change ${from} → ${to}`);
          expect(machine.status).toBe(from);
        }
      }
    }
    expect(canTransition('idle', 'open')).toBe(false);
    expect(canTransition('closed', 'open')).toBe(false);
    expect(canTransition('open', 'connecting')).toBe(false);
  });

  it('a move to the same status is silent unless it carries an error; report() tells without moving', () => {
    const machine = createStatusMachine(() => {});
    const seen: string[] = [];
    machine.listen((status, error) => seen.push(error ? `${status}:${error.code}` : status));
    machine.to('connecting');
    machine.to('reconnecting', { code: 'ERR_SSE_TOO_MANY_CONNECTIONS', status: 429, message: 'later' });
    machine.to('reconnecting');
    machine.to('reconnecting', { code: 'ERR_SSE_BUS_UNAVAILABLE', message: 'later' });
    machine.report({ code: 'ERR_SSE_UPSTREAM', message: 'upstream failed' });
    expect(seen).toEqual([
      'connecting',
      'reconnecting:ERR_SSE_TOO_MANY_CONNECTIONS',
      'reconnecting:ERR_SSE_BUS_UNAVAILABLE',
      'reconnecting:ERR_SSE_UPSTREAM',
    ]);
  });

  it('a throwing listener reaches the error sink, and the others still hear', () => {
    const thrown: unknown[] = [];
    const machine = createStatusMachine((error) => thrown.push(error));
    const heard: string[] = [];
    machine.listen(() => {
      throw new Error('boom');
    });
    const off = machine.listen((status) => heard.push(status));
    machine.to('connecting');
    off();
    machine.to('open');
    expect(heard).toEqual(['connecting']);
    expect(thrown).toHaveLength(2);
  });
});
