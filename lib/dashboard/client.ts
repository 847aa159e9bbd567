/// <reference lib="dom" />
/**
 * The dashboard page's script (runs in the browser, not in the daemon): polls /api/snapshot
 * every POLL_MS, keeps HISTORY points and draws them with uPlot (served by the daemon as
 * /uplot.js, a global). Every value from the server is written with textContent, never as HTML:
 * key names are client data. Compiled with the daemon (tsc) and served as /dashboard.js.
 *
 * window.memshard exposes the polls, the last snapshot and the charts, for the browser tests.
 */
import type UPlot from 'uplot';
import type { Snapshot } from './snapshot.js';

const POLL_MS = 1000;
/** Five minutes at one point a second. */
const HISTORY = 300;
const uPlotCtor = (globalThis as unknown as { uPlot: typeof UPlot }).uPlot;

const PALETTE = ['#2f7ed8', '#e4572e', '#17a589', '#f3a712', '#8e44ad', '#c0392b', '#16a085', '#7f8c8d', '#d35400', '#2c3e50', '#27ae60', '#e84393'];

interface Chart {
  plot: UPlot;
  /** Series names after the x axis, in order. */
  names: string[];
  /** data[0] is time (s), then one array per series. */
  data: Array<Array<number | null>>;
  el: HTMLElement;
}

const state = {
  polls: 0,
  errors: 0,
  last: null as Snapshot | null,
  charts: {} as Record<string, Chart>,
};
(window as unknown as { memshard: typeof state }).memshard = state;

const $ = (id: string): HTMLElement => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`dashboard: no #${id}`);
  return el;
};

function fmt(n: number | null | undefined, digits = 1): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(digits) + 'G';
  if (a >= 1e6) return (n / 1e6).toFixed(digits) + 'M';
  if (a >= 1e4) return (n / 1e3).toFixed(digits) + 'k';
  if (Number.isInteger(n)) return String(n);
  return n.toFixed(digits);
}

function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return (u === 0 ? String(Math.round(v)) : v.toFixed(1)) + ' ' + units[u];
}

/** A latency in seconds, shown in µs or ms. */
function duration(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return '–';
  if (s < 1e-3) return (s * 1e6).toFixed(0) + ' µs';
  if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + ' ms';
  return s.toFixed(2) + ' s';
}

function pct(r: number | null | undefined): string {
  return r === null || r === undefined || !Number.isFinite(r) ? '–' : (r * 100).toFixed(1) + '%';
}

/** Write a value into every element with data-stat=name (the tiles' totals). */
function setText(selector: string, text: string): void {
  document.querySelectorAll<HTMLElement>(selector).forEach((el) => {
    if (el.textContent !== text) el.textContent = text;
  });
}

function chartWidth(el: HTMLElement): number {
  return Math.max(200, Math.floor(el.clientWidth));
}

function makeChart(id: string, title: string, names: string[], yFormat: (v: number) => string, opts: { range?: [number, number] } = {}): Chart {
  const el = $(id);
  const series: UPlot.Series[] = [{}, ...names.map((name, i) => ({ label: name, stroke: PALETTE[i % PALETTE.length]!, width: 1.5, spanGaps: false }))];
  const options: UPlot.Options = {
    title,
    width: chartWidth(el),
    height: 180,
    series,
    // counts and sizes: from 0, so that a small change does not look like a cliff
    scales: { x: { time: true }, y: { range: opts.range ?? ((_u, _min, max) => [0, max > 0 ? max * 1.1 : 1]) } },
    axes: [{}, { values: (_u, vals) => vals.map((v) => (v === null ? '' : yFormat(v))), size: 72 }],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
  const data: Array<Array<number | null>> = [[], ...names.map(() => [])];
  const plot = new uPlotCtor(options, data as UPlot.AlignedData, el);
  const chart: Chart = { plot, names: [...names], data, el };
  state.charts[id] = chart;
  return chart;
}

/** A series for `name`, added the first time it is seen (earlier points are gaps). */
function ensureSeries(chart: Chart, name: string): number {
  let i = chart.names.indexOf(name);
  if (i >= 0) return i + 1;
  chart.names.push(name);
  i = chart.names.length;
  chart.data.push(new Array<number | null>(chart.data[0]!.length).fill(null));
  chart.plot.addSeries({ label: name, stroke: PALETTE[(i - 1) % PALETTE.length]!, width: 1.5 }, i);
  return i;
}

/** Append one point (values by series name; a missing one is a gap) and redraw. */
function push(chart: Chart, t: number, values: Record<string, number | null>): void {
  for (const name of Object.keys(values)) ensureSeries(chart, name);
  chart.data[0]!.push(t);
  chart.names.forEach((name, i) => chart.data[i + 1]!.push(values[name] ?? null));
  if (chart.data[0]!.length > HISTORY) for (const col of chart.data) col.shift();
  chart.plot.setData(chart.data as UPlot.AlignedData);
}

function row(cells: Array<string | number>, cls: Array<string | undefined> = []): HTMLTableRowElement {
  const tr = document.createElement('tr');
  cells.forEach((c, i) => {
    const td = document.createElement('td');
    td.textContent = String(c);
    const k = cls[i];
    if (k !== undefined) td.className = k;
    tr.appendChild(td);
  });
  return tr;
}

/** Replace a table's body; `bar` (0..1) per row draws a load bar in the last cell. */
function fillTable(id: string, rows: HTMLTableRowElement[], empty: string): void {
  const body = $(id).querySelector('tbody');
  if (body === null) return;
  if (rows.length === 0) rows = [row([empty], ['empty'])];
  body.replaceChildren(...rows);
}

function barCell(tr: HTMLTableRowElement, share: number): void {
  const td = document.createElement('td');
  td.className = 'bar';
  const span = document.createElement('span');
  span.style.width = Math.max(0, Math.min(100, share * 100)).toFixed(1) + '%';
  td.appendChild(span);
  tr.appendChild(td);
}

let charts: Record<'ops' | 'hits' | 'latency' | 'memory' | 'evictions' | 'connections' | 'threads' | 'shards', Chart> | null = null;

function setup(): NonNullable<typeof charts> {
  return {
    ops: makeChart('chart-ops', 'Requests per second, by command', [], (v) => fmt(v)),
    hits: makeChart('chart-hits', 'Get hit ratio', ['hit ratio'], (v) => v.toFixed(0) + '%', { range: [0, 100] }),
    latency: makeChart('chart-latency', 'Latency p99, by command', [], (v) => duration(v / 1000)),
    memory: makeChart('chart-memory', 'Item bytes against the limit', ['bytes', 'limit'], (v) => bytes(v)),
    evictions: makeChart('chart-evictions', 'Evictions and reclaims per second', ['evictions', 'reclaimed', 'expired unfetched'], (v) => fmt(v)),
    connections: makeChart('chart-connections', 'Connections', ['open', 'new per second'], (v) => fmt(v)),
    threads: makeChart('chart-threads', 'Requests per second, by serving thread', [], (v) => fmt(v)),
    shards: makeChart('chart-shards', 'Key operations per second, by shard', [], (v) => fmt(v)),
  };
}

function render(s: Snapshot): void {
  charts ??= setup();
  const t = s.time / 1000;
  const st = s.stats;
  // header
  setText('#uptime', fmt(st['uptime'] ?? 0, 0) + ' s');
  setText('#version', 'memshard ' + s.server.memshard + ' · ' + String(s.server.threads) + ' threads · pid ' + String(s.server.pid));
  setText('#updated', new Date(s.time).toLocaleTimeString());
  // tiles: rates of the interval, totals as `stats` has them
  const ops = s.commands.reduce((a, c) => a + c.rate, 0);
  setText('#tile-ops', fmt(ops));
  setText('#tile-hit', pct(s.rates.hit_ratio));
  setText('#tile-items', fmt(st['curr_items'] ?? 0));
  setText('#tile-bytes', bytes(st['bytes'] ?? 0));
  setText('#tile-limit', bytes(st['limit_maxbytes'] ?? 0));
  setText('#tile-evictions', fmt(s.rates['evictions'] ?? 0));
  setText('#tile-reclaimed', fmt(s.rates['reclaimed'] ?? 0));
  setText('#tile-conns', fmt(st['curr_connections'] ?? 0));
  setText('#tile-net', bytes(s.rates['bytes_read'] ?? 0) + '/s in · ' + bytes(s.rates['bytes_written'] ?? 0) + '/s out');
  const used = (st['limit_maxbytes'] ?? 0) > 0 ? (st['bytes'] ?? 0) / st['limit_maxbytes']! : 0;
  ($('tile-bytes-bar').firstElementChild as HTMLElement).style.width = (Math.min(1, used) * 100).toFixed(1) + '%';
  document.querySelectorAll<HTMLElement>('[data-stat]').forEach((el) => {
    const v = st[el.dataset['stat']!];
    el.textContent = v === undefined ? '–' : String(v);
  });

  // charts (the first snapshot has no interval: nothing to draw yet)
  if (s.interval > 0) {
    const byCommand: Record<string, number | null> = {};
    const p99: Record<string, number | null> = {};
    for (const c of s.commands) {
      byCommand[c.command] = c.rate;
      p99[c.command] = c.p99 === null ? null : c.p99 * 1000;
    }
    push(charts.ops, t, byCommand);
    push(charts.hits, t, { 'hit ratio': s.rates.hit_ratio === null ? null : s.rates.hit_ratio * 100 });
    push(charts.latency, t, p99);
    push(charts.memory, t, { bytes: st['bytes'] ?? 0, limit: st['limit_maxbytes'] ?? 0 });
    push(charts.evictions, t, { evictions: s.rates['evictions'] ?? 0, reclaimed: s.rates['reclaimed'] ?? 0, 'expired unfetched': s.rates['expired_unfetched'] ?? 0 });
    push(charts.connections, t, { open: st['curr_connections'] ?? 0, 'new per second': s.rates['total_connections'] ?? 0 });
    push(charts.threads, t, Object.fromEntries(s.threads.map((th) => ['thread ' + String(th.thread), th.rate])));
    push(charts.shards, t, Object.fromEntries(s.shards.map((sh) => ['shard ' + String(sh.shard), sh.rate])));
  }

  // tables
  fillTable('table-commands', s.commands.map((c) => row([c.command, fmt(c.rate), duration(c.p50), duration(c.p90), duration(c.p99), fmt(c.count)], ['name'])), 'no requests yet');
  const threadMax = Math.max(1e-9, ...s.threads.map((th) => th.rate));
  fillTable('table-threads', s.threads.map((th) => {
    const tr = row([th.thread, th.connections, fmt(th.rate), fmt(th.commands)]);
    barCell(tr, th.rate / threadMax);
    return tr;
  }), 'no threads');
  const shardMax = Math.max(1e-9, ...s.shards.map((sh) => sh.rate));
  fillTable('table-shards', s.shards.map((sh) => {
    const tr = row([sh.shard, fmt(sh.items), bytes(sh.bytes) + ' / ' + bytes(sh.limit), fmt(sh.rate), fmt(sh.evictions)]);
    barCell(tr, sh.rate / shardMax);
    return tr;
  }), 'no shards');
  fillTable('table-slabs', s.slabs.map((c) => row([c.id, bytes(c.chunk_size), c.pages, fmt(c.used_chunks) + ' / ' + fmt(c.chunks), fmt(c.items), bytes(c.mem_requested), fmt(c.evicted), fmt(c.evicted_rate)])), 'no slab pages in use yet');

  const hot = s.hotKeys;
  setText('#hot-window', hot.windowSeconds.toFixed(0) + ' s window');
  $('hot-off').hidden = hot.keys;
  for (const [id, dir] of [['hot-reads', hot.reads], ['hot-writes', hot.writes]] as const) {
    fillTable(id, dir.keys.map((k) => row([k.key, fmt(k.rate), fmt(k.count) + (k.error > 0 ? ' ± ' + fmt(k.error) : '')], ['key'])), hot.keys ? 'none in the window' : 'names hidden (--hot-keys)');
  }
  const hotMax = Math.max(1e-9, ...hot.shards.map((sh) => sh.rate));
  fillTable('hot-shards', hot.shards.map((sh) => {
    const tr = row([sh.shard, fmt(sh.reads), fmt(sh.writes), fmt(sh.rate)]);
    barCell(tr, sh.rate / hotMax);
    return tr;
  }), 'no shards');

  const cluster = $('cluster');
  cluster.hidden = s.cluster === null;
  if (s.cluster !== null) {
    setText('#cluster-version', 'config version ' + String(s.cluster.version));
    fillTable('table-cluster', s.cluster.nodes.map((n) => row([n.host, n.ip, n.port])), 'no nodes');
  }
}

function resize(): void {
  for (const c of Object.values(state.charts)) c.plot.setSize({ width: chartWidth(c.el), height: 180 });
}

async function poll(): Promise<void> {
  try {
    const res = await fetch('/api/snapshot', { cache: 'no-store', credentials: 'same-origin' });
    if (!res.ok) throw new Error('HTTP ' + String(res.status));
    const s = (await res.json()) as Snapshot;
    state.last = s;
    render(s);
    state.polls++;
    document.body.dataset['polls'] = String(state.polls);
    $('status').className = 'live';
    setText('#status', 'live');
  } catch (err) {
    state.errors++;
    $('status').className = 'stale';
    setText('#status', 'no data: ' + (err instanceof Error ? err.message : String(err)));
  } finally {
    setTimeout(() => void poll(), POLL_MS);
  }
}

let resizeTimer: number | undefined;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(resize, 100);
});
void poll();
