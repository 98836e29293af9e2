import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A network namespace joined to this one by a veth pair: a second machine for a test, whose link can be cut
 * so that its packets vanish without a FIN or RST. Needs root and `ip` (iproute2) on Linux.
 */
export interface NetNamespace {
  readonly name: string;
  /** This side of the veth (IPv4 /30). */
  readonly hostAddress: string;
  /** The namespace's side. */
  readonly peerAddress: string;
  /** IPv6 (a ULA /64) on both sides, or `undefined` where IPv6 is off. */
  readonly hostAddress6: string | undefined;
  readonly peerAddress6: string | undefined;
  /** Run this Node binary inside the namespace with `args`; killed by {@link NetNamespace.remove}. */
  spawnNode(args: readonly string[]): ChildProcess;
  /**
   * Set the namespace's side of the veth down: whatever this side sends it is dropped (this side's veth
   * loses its carrier but keeps its address and route), and nothing from inside gets out.
   */
  cutLink(): Promise<void>;
  /** Kill what runs inside, delete the namespace and the veth. Idempotent; never throws. */
  remove(): Promise<void>;
}

const PREFIX = 'sse-dp-';

/** Why network namespaces cannot be used here, or `undefined` when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'creating a network namespace needs root (CI runs as root)';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'ip (Debian package iproute2) is not installed';
  }
  return undefined;
}

let created = 0;

/** Create a namespace with a veth pair to it, both ends up and addressed. */
export async function createNetns(): Promise<NetNamespace> {
  await removeStale();
  const n = created++;
  const name = `${PREFIX}${process.pid}-${n}`;
  // Interface names have at most 15 characters.
  const hostLink = `dph${process.pid}x${n}`;
  const peerLink = `dpn${process.pid}x${n}`;
  // One /30 per (pid, n) in 10.240.0.0/14, far from the 10.0.x.x of most clouds.
  const block = ((process.pid % 16_384) * 4 + (n % 4)) % 65_536;
  const net = `10.${240 + (block >> 14)}.${(block >> 6) & 255}`;
  const base = (block & 63) * 4;
  const hostAddress = `${net}.${base + 1}`;
  const peerAddress = `${net}.${base + 2}`;
  const net6 = `fd00:5e5:${block.toString(16)}`;
  const children = new Set<ChildProcess>();
  let removed = false;

  const remove = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    for (const child of children) child.kill('SIGKILL');
    await ip('netns', 'del', name).catch(() => undefined);
    await ip('link', 'del', hostLink).catch(() => undefined);
  };

  try {
    await ip('netns', 'add', name);
    await ip('link', 'add', hostLink, 'type', 'veth', 'peer', 'name', peerLink);
    await ip('link', 'set', peerLink, 'netns', name);
    await ip('addr', 'add', `${hostAddress}/30`, 'dev', hostLink);
    await ip('-n', name, 'addr', 'add', `${peerAddress}/30`, 'dev', peerLink);
    let ipv6 = true;
    try {
      await ip('-6', 'addr', 'add', `${net6}::1/64`, 'dev', hostLink, 'nodad');
      await ip('-n', name, '-6', 'addr', 'add', `${net6}::2/64`, 'dev', peerLink, 'nodad');
    } catch {
      ipv6 = false;
    }
    await ip('link', 'set', hostLink, 'up');
    await ip('-n', name, 'link', 'set', peerLink, 'up');
    await ip('-n', name, 'link', 'set', 'lo', 'up');
    return {
      name,
      hostAddress,
      peerAddress,
      hostAddress6: ipv6 ? `${net6}::1` : undefined,
      peerAddress6: ipv6 ? `${net6}::2` : undefined,
      spawnNode(args) {
        const child = spawn('ip', ['netns', 'exec', name, process.execPath, ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.add(child);
        child.on('exit', () => children.delete(child));
        return child;
      },
      cutLink: async () => {
        await ip('-n', name, 'link', 'set', peerLink, 'down');
      },
      remove,
    };
  } catch (error) {
    await remove();
    throw error;
  }
}

async function ip(...args: string[]): Promise<void> {
  await run('ip', args);
}

/** Namespaces left by a test process that died before its cleanup ran. */
async function removeStale(): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'list']).catch(() => ({ stdout: '' }));
  for (const line of stdout.split('\n')) {
    const match = new RegExp(`^(${PREFIX}(\\d+)-\\d+)`).exec(line);
    if (match === null || Number(match[2]) === process.pid || alive(Number(match[2]))) continue;
    await ip('netns', 'del', match[1] as string).catch(() => undefined);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
