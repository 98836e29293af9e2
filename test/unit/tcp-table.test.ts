/**
 * The /proc/net/tcp{,6} parser: fixture lines as Linux prints them (taken from a real machine, then rewritten
 * word by word for a big-endian one), matched against the keys Node's socket fields give.
 */
import { canonicalAddress, retransmittingSockets, socketKey } from '../../src/server/tcp-table';

const TCP_HEADER =
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     ';
const TCP6_HEADER =
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';

/** A tcp line: addresses given as the kernel prints them, the rest as in a real table. */
function tcpLine(
  sl: number,
  local: string,
  remote: string,
  timer: string,
  retransmits: string,
  tx = '00000021',
): string {
  return `${String(sl).padStart(4)}: ${local} ${remote} 01 ${tx}:00000000 ${timer} ${retransmits}     0        0 37196 2 00000000530bab9a 81 4 31 1 -1                     `;
}

describe('retransmittingSockets over /proc/net/tcp', () => {
  // 10.213.1.1:44583 (server) ← 10.213.1.2:46458 (a client), as a little-endian x86 machine prints it.
  const le = [
    TCP_HEADER,
    '   0: 0100007F:D003 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 23257 1 000000006fc324eb 100 0 0 10 0                     ',
    tcpLine(92, '0101D50A:AE27', '0201D50A:B57A', '01:00000047', '00000002'),
    // Keep-alive timer, zero-window probe (a client that stopped reading), a tail-loss probe with no timeout yet.
    tcpLine(93, '0101D50A:AE27', '0201D50A:B57B', '02:000003E8', '00000000', '00000000'),
    tcpLine(94, '0101D50A:AE27', '0201D50A:B57C', '04:00000200', '00000000', '00010000'),
    tcpLine(95, '0101D50A:AE27', '0201D50A:B57D', '01:00000010', '00000000'),
    // Wider `sl` past 9999 sockets, and an old kernel's unclamped negative `when` (16 hex digits).
    tcpLine(10_000, '0101D50A:AE27', '0301D50A:0050', '01:FFFFFFFFFFFFFFFE', '0000000F'),
    '',
  ].join('\n');

  test('a little-endian table: only sockets in retransmission with a timeout counted, keyed as Node names them', () => {
    const stuck = retransmittingSockets(le, 'LE');
    expect([...stuck]).toEqual([
      ['44583 10.213.1.2 46458', 2],
      ['44583 10.213.1.3 80', 15],
    ]);
    expect(stuck.get(socketKey(44583, '10.213.1.2', 46458))).toBe(2);
    expect(stuck.get(socketKey(44583, '::ffff:10.213.1.2', 46458))).toBe(2);
  });

  test('the same sockets printed by a big-endian machine', () => {
    const be = le
      .replaceAll('0100007F', '7F000001')
      .replaceAll('0101D50A', '0AD50101')
      .replaceAll('0201D50A', '0AD50102');
    const stuck = retransmittingSockets(be.replaceAll('0301D50A', '0AD50103'), 'BE');
    expect([...stuck.keys()]).toEqual(['44583 10.213.1.2 46458', '44583 10.213.1.3 80']);
  });

  test('no trailing newline, a header alone, an empty string and garbage lines are fine', () => {
    const line = tcpLine(1, '0101D50A:AE27', '0201D50A:B57A', '01:00000047', '00000001');
    expect(retransmittingSockets(`${TCP_HEADER}\n${line}`, 'LE').size).toBe(1);
    expect(retransmittingSockets(TCP_HEADER, 'LE').size).toBe(0);
    expect(retransmittingSockets('', 'LE').size).toBe(0);
    expect(retransmittingSockets(`${TCP_HEADER}\nnot a socket\n  7: short\n${line.slice(0, 70)}\n`, 'LE').size).toBe(0);
    const badHex = line.replace('00000001', '0000000G');
    expect(retransmittingSockets(`${TCP_HEADER}\n${badHex}`, 'LE').size).toBe(0);
  });
});

describe('retransmittingSockets over /proc/net/tcp6', () => {
  const line = (sl: number, local: string, remote: string, timer: string, retransmits: string) =>
    `${String(sl).padStart(4)}: ${local} ${remote} 01 00000042:00000000 ${timer} ${retransmits}     0        0 43392 1 000000001790ca55 20 0 0 10 -1`;
  // Real lines (little-endian): a server on [::]:33295 with a client from ::1 and one from 127.0.0.1.
  const le = [
    TCP6_HEADER,
    '   0: 00000000000000000000000000000000:820F 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 43388 1 0000000025d2253c 100 0 0 10 0',
    line(
      2,
      '00000000000000000000000001000000:820F',
      '00000000000000000000000001000000:CC64',
      '01:00000020',
      '00000003',
    ),
    line(
      3,
      '0000000000000000FFFF00000100007F:820F',
      '0000000000000000FFFF00000100007F:8DFA',
      '01:00000020',
      '00000001',
    ),
    // 2001:db8::5 and fe80::1:2 as peers; one not retransmitting.
    line(
      4,
      '00000000000000000000000001000000:820F',
      'B80D0120000000000000000005000000:1F90',
      '01:00000020',
      '00000004',
    ),
    line(
      5,
      '00000000000000000000000001000000:820F',
      '000080FE000000000000000002000100:1F91',
      '01:00000020',
      '00000001',
    ),
    line(
      6,
      '00000000000000000000000001000000:820F',
      'B80D0120000000000000000006000000:1F92',
      '04:00000020',
      '00000000',
    ),
    '',
  ].join('\n');

  test('a little-endian table: IPv6 peers, and IPv4 peers of a dual-stack socket as Node reports them', () => {
    const stuck = retransmittingSockets(le, 'LE');
    expect(stuck.size).toBe(4);
    expect(stuck.get(socketKey(33295, '::1', 52324))).toBe(3);
    expect(stuck.get(socketKey(33295, '::ffff:127.0.0.1', 36346))).toBe(1);
    expect(stuck.get(socketKey(33295, '127.0.0.1', 36346))).toBe(1);
    expect(stuck.get(socketKey(33295, '2001:db8::5', 8080))).toBe(4);
    expect(stuck.get(socketKey(33295, '2001:DB8:0:0::5', 8080))).toBe(4);
    expect(stuck.get(socketKey(33295, 'fe80::1:2%eth0', 8081))).toBe(1);
    expect(stuck.get(socketKey(33295, '2001:db8::6', 8082))).toBeUndefined();
  });

  test('the same table printed by a big-endian machine', () => {
    const swap = (word: string) => (word.match(/../g) as string[]).reverse().join('');
    const be = le.replace(
      /\b([0-9A-F]{32}):/g,
      (_all, hex: string) => `${(hex.match(/.{8}/g) as string[]).map(swap).join('')}:`,
    );
    expect(be).toContain('20010DB8000000000000000000000005:1F90');
    expect(be).toContain('00000000000000000000FFFF7F000001:8DFA');
    expect(retransmittingSockets(be, 'BE')).toEqual(retransmittingSockets(le, 'LE'));
  });

  test('a tcp and a tcp6 table fill one map', () => {
    const into = new Map<string, number>();
    retransmittingSockets(le, 'LE', into);
    retransmittingSockets(
      `${TCP_HEADER}\n${tcpLine(1, '0101D50A:AE27', '0201D50A:B57A', '01:00000047', '00000002')}`,
      'LE',
      into,
    );
    expect(into.size).toBe(5);
  });
});

describe('canonicalAddress', () => {
  test.each([
    ['10.0.0.1', '10.0.0.1'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['::FFFF:10.0.0.1', '10.0.0.1'],
    ['::1', '0:0:0:0:0:0:0:1'],
    ['::', '0:0:0:0:0:0:0:0'],
    ['2001:db8::', '2001:db8:0:0:0:0:0:0'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8:0:0:0:0:0:1'],
    ['fe80::1%lo', 'fe80:0:0:0:0:0:0:1'],
    ['64:ff9b::10.0.0.1', '64:ff9b:0:0:0:0:a00:1'],
    ['not:an::address::', 'not:an::address::'],
    ['1:2:3', '1:2:3'],
  ])('%s → %s', (address, canonical) => {
    expect(canonicalAddress(address)).toBe(canonical);
  });
});
