/**
 * Separate hosts for the cluster tests. As root, each host is a network namespace of its own
 * (`ip netns` + a veth pair to the test's namespace, a /24 per host): its node binds an address
 * only that host has, and a host can be unplugged (its end of the link down), so a client sees
 * what a vanished machine looks like: timeouts, not refused connections. Where namespaces cannot
 * be made (not root, no iproute2, no CAP_SYS_ADMIN), the hosts are loopback addresses 127.0.0.x.
 */
import { spawnSync } from 'node:child_process';

export interface Host {
  /** The address its node listens on and clients connect to. */
  readonly address: string;
  /** A command line that runs `argv` on this host. */
  command(argv: string[]): { file: string; args: string[] };
  /** Takes the host off the network, or puts it back (namespace hosts only). */
  setPlugged(plugged: boolean): void;
}

export interface Hosts {
  readonly hosts: Host[];
  /** 'netns', or 'loopback' with the reason namespaces could not be used. */
  readonly kind: 'netns' | 'loopback';
  readonly why: string;
  /** Deletes the namespaces and links this made (call after the nodes have stopped). */
  remove(): void;
}

function ip(args: string[]): string | null {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return r.error.message;
  return r.status === 0 ? null : (r.stderr || `ip ${args.join(' ')} exited ${r.status}`).trim();
}

/** The test's own host, at a loopback address. */
export function loopbackHost(address: string): Host {
  return {
    address,
    command: (argv) => ({ file: argv[0]!, args: argv.slice(1) }),
    setPlugged: () => {
      throw new Error('a loopback address cannot be unplugged');
    },
  };
}

function loopbackHosts(count: number, why: string): Hosts {
  const hosts = Array.from({ length: count }, (_, i) => loopbackHost(`127.0.0.${i + 2}`));
  return { hosts, kind: 'loopback', why, remove: () => {} };
}

/** `count` hosts, in namespaces named after this process (so parallel runs do not collide). */
export function makeHosts(count: number): Hosts {
  if (process.getuid?.() !== 0) return loopbackHosts(count, 'not root');
  const tag = process.pid % 100_000;
  // fixed addresses, so that a ketama ring over them is the same every run; another run's
  // (or anything else's) 10.213/16 on this machine moves this one to a net named by the pid
  const inUse = spawnSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8' }).stdout ?? '';
  const net = inUse.includes(' 10.213.') ? `10.${100 + (process.pid % 100)}` : '10.213';
  const made: { ns: string; link: string }[] = [];
  const remove = () => {
    for (const { ns, link } of made) {
      ip(['netns', 'del', ns]);
      ip(['link', 'del', link]); // gone with the namespace, unless a process still holds it
    }
  };
  const hosts: Host[] = [];
  for (let i = 0; i < count; i++) {
    const ns = `memshard-${tag}-${i}`;
    const outer = `ms${tag}h${i}`;
    const inner = `ms${tag}p${i}`;
    const address = `${net}.${i}.2`;
    const steps = [
      ['netns', 'add', ns],
      ['link', 'add', outer, 'type', 'veth', 'peer', 'name', inner, 'netns', ns],
      ['addr', 'add', `${net}.${i}.1/24`, 'dev', outer],
      ['link', 'set', outer, 'up'],
      ['-n', ns, 'addr', 'add', `${address}/24`, 'dev', inner],
      ['-n', ns, 'link', 'set', inner, 'up'],
      ['-n', ns, 'link', 'set', 'lo', 'up'],
      // a container may let a namespace be made but not entered (no mount rights for /sys)
      ['netns', 'exec', ns, 'true'],
    ];
    made.push({ ns, link: outer });
    let failed: string | null = null;
    for (const step of steps) if ((failed = ip(step)) !== null) break;
    if (failed !== null) {
      remove();
      return loopbackHosts(count, `network namespaces unavailable (${failed})`);
    }
    hosts.push({
      address,
      // `ip netns exec` execs the command in place: the child's pid is the command's
      command: (argv) => ({ file: 'ip', args: ['netns', 'exec', ns, ...argv] }),
      setPlugged: (plugged) => {
        const err = ip(['-n', ns, 'link', 'set', inner, plugged ? 'up' : 'down']);
        if (err !== null) throw new Error(err);
      },
    });
  }
  return { hosts, kind: 'netns', why: '', remove };
}
