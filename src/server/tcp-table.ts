/**
 * Reading Linux's TCP socket tables (`/proc/net/tcp`, `/proc/net/tcp6`): which sockets the kernel is
 * retransmitting to, keyed like {@link socketKey} so they can be matched with Node's sockets. Pure functions:
 * the text in, a map out.
 *
 * A line (one per socket, after a header line) is printed by the kernel as
 * `%4d: %08X:%04X %08X:%04X %02X %08X:%08X %02X:%08lX %08X …` for tcp (`sl: local rem st tx:rx tr:when
 * retrnsmt …`); tcp6 prints each address as four `%08X` words. Addresses are the raw 32-bit words in the
 * host's byte order; ports are already numbers.
 */

/** Byte order of the machine that printed the table, as `os.endianness()` says it. */
export type Endianness = 'BE' | 'LE';

/** `tr` of a socket whose retransmission timer runs (1; 2 is keep-alive, 4 the zero-window probe). */
const TIMER_RETRANSMIT = 1;

/**
 * The key a stream's socket is matched by: its local port, the peer's address and the peer's port. The
 * address is canonical ({@link canonicalAddress}), so Node's `::ffff:10.0.0.2` and the kernel's words agree.
 *
 * @param localPort - `socket.localPort`.
 * @param remoteAddress - `socket.remoteAddress`, as Node writes it or already canonical.
 * @param remotePort - `socket.remotePort`.
 */
export function socketKey(localPort: number, remoteAddress: string, remotePort: number): string {
  return `${localPort} ${canonicalAddress(remoteAddress)} ${remotePort}`;
}

/**
 * An address in the one spelling both sides produce: IPv4 (and IPv4-mapped IPv6, `::ffff:a.b.c.d`) as
 * dotted quad; other IPv6 as eight lower-case hex groups without leading zeros or `::` (`2001:db8:0:0:0:0:0:1`),
 * zone id dropped. Anything unparseable is returned as it was.
 *
 * @param address - an address as Node's `socket.remoteAddress` gives it.
 */
export function canonicalAddress(address: string): string {
  if (!address.includes(':')) return address;
  const zone = address.indexOf('%');
  const bare = (zone === -1 ? address : address.slice(0, zone)).toLowerCase();
  const groups = expandIpv6(bare);
  if (groups === undefined) return address;
  if (isMapped(groups)) return dotted(groups[6] as number, groups[7] as number);
  return groups.map((group) => group.toString(16)).join(':');
}

/**
 * The sockets of one table (the text of `/proc/net/tcp` or `/proc/net/tcp6`) whose data has gone
 * unacknowledged through at least one retransmission timeout: timer `tr` 1 with `retrnsmt` above 0. Only
 * those lines have their addresses decoded; every other line costs a few character reads.
 *
 * @param table - the file's text, header line included.
 * @param endianness - byte order of the machine that printed it (`os.endianness()`).
 * @param into - where to add `socketKey → retrnsmt`; a new map by default.
 * @returns `into`.
 * @example
 * const stuck = retransmittingSockets(readFileSync('/proc/net/tcp', 'latin1'), endianness());
 * stuck.get(socketKey(socket.localPort, socket.remoteAddress, socket.remotePort)); // retransmits, or undefined
 */
export function retransmittingSockets(
  table: string,
  endianness: Endianness,
  into: Map<string, number> = new Map(),
): Map<string, number> {
  let start = table.indexOf('\n') + 1; // the header
  while (start > 0 && start < table.length) {
    let end = table.indexOf('\n', start);
    if (end === -1) end = table.length;
    readLine(table, start, end, endianness, into);
    start = end + 1;
  }
  return into;
}

function readLine(table: string, start: number, end: number, endianness: Endianness, into: Map<string, number>): void {
  const colon = table.indexOf(':', start);
  if (colon === -1 || colon >= end) return;
  const local = colon + 2;
  // `AAAAAAAA:PPPP` for tcp, 32 hex digits then `:PPPP` for tcp6.
  const hexLength = table.charCodeAt(local + 8) === 0x3a ? 8 : table.charCodeAt(local + 32) === 0x3a ? 32 : 0;
  if (hexLength === 0) return;
  const remote = local + hexLength + 6;
  const state = remote + hexLength + 6;
  const timer = state + 21;
  if (timer + 2 >= end || table.charCodeAt(timer + 2) !== 0x3a) return;
  if (hex(table, timer, 2) !== TIMER_RETRANSMIT) return;
  const retransmitsAt = table.indexOf(' ', timer + 3) + 1;
  if (retransmitsAt === 0 || retransmitsAt + 8 > end) return;
  const retransmits = hex(table, retransmitsAt, 8);
  if (!(retransmits > 0)) return;
  const address = hexLength === 8 ? ipv4(table, remote, endianness) : ipv6(table, remote, endianness);
  const localPort = hex(table, local + hexLength + 1, 4);
  const remotePort = hex(table, remote + hexLength + 1, 4);
  into.set(`${localPort} ${address} ${remotePort}`, retransmits);
}

/** The hex digits at `at` as a number; `NaN` when one is not a hex digit. */
function hex(text: string, at: number, length: number): number {
  let value = 0;
  for (let i = at; i < at + length; i++) {
    const code = text.charCodeAt(i);
    let digit: number;
    if (code >= 0x30 && code <= 0x39) digit = code - 0x30;
    else if (code >= 0x41 && code <= 0x46) digit = code - 0x37;
    else if (code >= 0x61 && code <= 0x66) digit = code - 0x57;
    else return Number.NaN;
    value = value * 16 + digit;
  }
  return value;
}

/** The four bytes of the 32-bit word printed at `at`, in network order. */
function wordBytes(text: string, at: number, endianness: Endianness): [number, number, number, number] {
  const word = hex(text, at, 8);
  const bytes: [number, number, number, number] = [word >>> 24, (word >>> 16) & 255, (word >>> 8) & 255, word & 255];
  return endianness === 'LE' ? [bytes[3], bytes[2], bytes[1], bytes[0]] : bytes;
}

function ipv4(text: string, at: number, endianness: Endianness): string {
  return wordBytes(text, at, endianness).join('.');
}

function ipv6(text: string, at: number, endianness: Endianness): string {
  const groups: number[] = [];
  for (let word = 0; word < 4; word++) {
    const [a, b, c, d] = wordBytes(text, at + word * 8, endianness);
    groups.push((a << 8) | b, (c << 8) | d);
  }
  if (isMapped(groups)) return dotted(groups[6] as number, groups[7] as number);
  return groups.map((group) => group.toString(16)).join(':');
}

/** `::ffff:a.b.c.d`: an IPv4 peer of a dual-stack socket. */
function isMapped(groups: readonly number[]): boolean {
  return groups.length === 8 && groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
}

function dotted(high: number, low: number): string {
  return `${high >>> 8}.${high & 255}.${low >>> 8}.${low & 255}`;
}

/** The eight 16-bit groups of an IPv6 address (with `::` and a trailing dotted quad), or `undefined`. */
function expandIpv6(address: string): number[] | undefined {
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string): number[] | undefined => {
    if (part === '') return [];
    const groups: number[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i] as string;
      if (i === pieces.length - 1 && piece.includes('.')) {
        const octets = piece.split('.').map(Number);
        if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return undefined;
        const [a, b, c, d] = octets as [number, number, number, number];
        groups.push((a << 8) | b, (c << 8) | d);
      } else {
        if (!/^[0-9a-f]{1,4}$/.test(piece)) return undefined;
        groups.push(Number.parseInt(piece, 16));
      }
    }
    return groups;
  };
  const head = parse(halves[0] as string);
  const tail = halves.length === 2 ? parse(halves[1] as string) : [];
  if (head === undefined || tail === undefined) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}
