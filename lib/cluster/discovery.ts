/**
 * Where the Auto Discovery node list comes from (main thread): `--cluster-nodes`, a
 * `--cluster-file` (reloaded when it changes and on SIGHUP), or `--cluster-dns` (every address a
 * name resolves to, resolved again every interval: a Kubernetes headless service lists its pods
 * so). The version starts at 1 and goes up by one whenever the node line changes, never otherwise.
 */
import { lookup } from 'node:dns/promises';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { nodeLine, parseNodeFile, parseNodeList, type ClusterNode } from './config.js';

export interface ClusterSource {
  nodes: string | undefined;
  file: string | undefined;
  dns: string | undefined;
  dnsIntervalSeconds: number;
  /** The port of entries that give none (the daemon's -p). */
  defaultPort: number;
}

export interface ClusterView {
  version: number;
  line: string;
}

/** How often a cluster file is looked at for changes. */
const FILE_POLL_MS = 1000;

export class ClusterDiscovery {
  private view: ClusterView | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly source: ClusterSource,
    private readonly changed: (view: ClusterView) => void,
    private readonly log: (level: number, msg: string) => void,
  ) {}

  /** Loads the list once (a bad file or an unresolvable name fails the start), then follows it. */
  async start(): Promise<void> {
    await this.refresh(true);
    const { file, dns, dnsIntervalSeconds } = this.source;
    if (file !== undefined) watchFile(file, { interval: FILE_POLL_MS }, () => void this.refresh(false));
    if (dns !== undefined) {
      this.timer = setInterval(() => void this.refresh(false), dnsIntervalSeconds * 1000);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.source.file !== undefined) unwatchFile(this.source.file);
    if (this.timer !== null) clearInterval(this.timer);
  }

  get current(): ClusterView | null {
    return this.view;
  }

  /** Read the source again (SIGHUP); a failure after the start keeps the last good list. */
  async refresh(atStart: boolean): Promise<void> {
    let nodes: ClusterNode[];
    try {
      nodes = await this.read();
    } catch (err) {
      if (atStart) throw err;
      this.log(1, `cluster: keeping the last node list: ${(err as Error).message}`);
      return;
    }
    const line = nodeLine(nodes);
    if (this.view !== null && this.view.line === line) return;
    this.view = { version: (this.view?.version ?? 0) + 1, line };
    this.log(1, `cluster: version ${this.view.version}: ${line}`);
    this.changed(this.view);
  }

  private async read(): Promise<ClusterNode[]> {
    const { nodes, file, dns, defaultPort } = this.source;
    if (nodes !== undefined) return parseNodeList(nodes, defaultPort);
    if (file !== undefined) return parseNodeFile(readFileSync(file, 'latin1'), defaultPort);
    const [name, portText] = splitHostPort(dns!);
    const port = portText === undefined ? defaultPort : Number(portText);
    const addresses = await lookup(name, { all: true });
    // a headless service gives addresses only: each node is named by its address
    return addresses.map((a) => ({ host: a.address, ip: a.address, port }));
  }
}

function splitHostPort(text: string): [string, string | undefined] {
  const colon = text.lastIndexOf(':');
  return colon < 0 || text.includes(']') || text.indexOf(':') !== colon ? [text, undefined] : [text.slice(0, colon), text.slice(colon + 1)];
}
