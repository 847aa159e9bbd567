/**
 * ElastiCache Auto Discovery's configuration: the node list and its version, and the exact reply
 * to `config get cluster`. Pure.
 */

export interface ClusterNode {
  host: string;
  /** May be empty (ElastiCache keeps the pipes). */
  ip: string;
  port: number;
}

export class ClusterConfigError extends Error {}

/** One `host|ip|port` entry (a bare `host:port` or `host` is taken too, with the default port). */
export function parseNode(text: string, defaultPort: number): ClusterNode {
  const entry = text.trim();
  const parts = entry.split('|');
  if (parts.length === 3) {
    const port = Number(parts[2]);
    if (parts[0] === '' || !Number.isInteger(port) || port < 1 || port > 65535) throw new ClusterConfigError(`bad node '${entry}' (host|ip|port)`);
    return { host: parts[0]!, ip: parts[1]!, port };
  }
  if (parts.length !== 1 || entry === '') throw new ClusterConfigError(`bad node '${entry}' (host|ip|port)`);
  const colon = entry.lastIndexOf(':');
  if (colon < 0) return { host: entry, ip: '', port: defaultPort };
  const port = Number(entry.slice(colon + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ClusterConfigError(`bad node '${entry}' (host|ip|port)`);
  return { host: entry.slice(0, colon), ip: '', port };
}

/** `--cluster-nodes a|ip|port,b|ip|port`. */
export function parseNodeList(text: string, defaultPort: number): ClusterNode[] {
  return text.split(',').filter((s) => s.trim() !== '').map((s) => parseNode(s, defaultPort));
}

/** A `--cluster-file`: one node per line (or several, space-separated), `#` comments. */
export function parseNodeFile(text: string, defaultPort: number): ClusterNode[] {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '')
    .flatMap((line) => line.split(/\s+/).map((s) => parseNode(s, defaultPort)));
}

/** ElastiCache's node line: `host|ip|port` entries, space-separated, in host order, each once. */
export function nodeLine(nodes: readonly ClusterNode[]): string {
  const entries = [...new Set(nodes.map((n) => `${n.host}|${n.ip}|${n.port}`))];
  return entries.sort().join(' ');
}

/** `CONFIG cluster 0 <bytes>\r\n<version>\n<nodes>\n\r\nEND\r\n` (the byte count covers version and node lines). */
export function renderClusterConfig(version: number, line: string): string {
  const payload = `${version}\n${line}\n`;
  return `CONFIG cluster 0 ${Buffer.byteLength(payload, 'latin1')}\r\n${payload}\r\nEND\r\n`;
}

/** The config payload alone (the binary protocol's value). */
export function clusterPayload(version: number, line: string): string {
  return `${version}\n${line}\n`;
}
