/**
 * memcached's -l: a comma-separated list of interfaces, each `host`, `host:port` or `[v6]:port`,
 * with memcached 1.6's `notls:` prefix for a plaintext listener beside TLS ones (-Z). Pure.
 */

export interface ListenerSpec {
  /** undefined: every interface. */
  host: string | undefined;
  port: number;
  /** With -Z, every listener speaks TLS unless it was given as `notls:`. */
  tls: boolean;
}

export class ListenerError extends Error {}

const NOTLS = 'notls:';

/** The listeners for -l `inter` (undefined: all interfaces) and -p `port`. */
export function parseListeners(inter: string | undefined, port: number, tlsEnabled: boolean): ListenerSpec[] {
  if (inter === undefined) return [{ host: undefined, port, tls: tlsEnabled }];
  const specs: ListenerSpec[] = [];
  for (let item of inter.split(',')) {
    item = item.trim();
    if (item === '') continue;
    let tls = tlsEnabled;
    if (item.startsWith(NOTLS)) {
      if (!tlsEnabled) throw new ListenerError("'notls' option is valid only when SSL is enabled");
      tls = false;
      item = item.slice(NOTLS.length);
    }
    const [host, itemPort] = hostAndPort(item, port);
    if (!specs.some((s) => s.host === host && s.port === itemPort)) specs.push({ host, port: itemPort, tls });
  }
  if (specs.length === 0) throw new ListenerError(`no interface in '${inter}'`);
  return specs;
}

function hostAndPort(item: string, port: number): [string | undefined, number] {
  let host = item;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(item);
  if (v6 !== null) {
    host = v6[1]!;
    portText = v6[2];
  } else if (item.split(':').length === 2) {
    [host, portText] = item.split(':') as [string, string];
  }
  if (portText === undefined) return [host === '' ? undefined : host, port];
  const n = /^\d+$/.test(portText) ? Number(portText) : NaN;
  if (!(n >= 0 && n <= 65535)) throw new ListenerError(`bad port '${portText}' in '${item}'`);
  return [host === '' ? undefined : host, n];
}
