/**
 * The dashboard's HTML and CSS (the script is client.ts, compiled to dashboard.js). No inline
 * script or style: the page is served with a Content-Security-Policy that allows only its own
 * files. Responsive: one column on a phone, a grid on a laptop.
 */

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>memshard dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/uplot.css">
<link rel="stylesheet" href="/dashboard.css">
<script src="/uplot.js" defer></script>
<script src="/dashboard.js" type="module"></script>
</head>
<body>
<header>
  <h1>memshard</h1>
  <span id="version"></span>
  <span>up <span id="uptime">–</span></span>
  <span id="status" class="stale">connecting…</span>
  <span class="right">updated <span id="updated">–</span> · <a href="/metrics">/metrics</a> · <a href="/api/snapshot">JSON</a></span>
</header>
<main>
<section class="tiles">
  <div class="tile"><h2>Requests/s</h2><b id="tile-ops">–</b><small>gets <span data-stat="cmd_get">–</span> · sets <span data-stat="cmd_set">–</span></small></div>
  <div class="tile"><h2>Hit ratio</h2><b id="tile-hit">–</b><small>hits <span data-stat="get_hits">–</span> · misses <span data-stat="get_misses">–</span></small></div>
  <div class="tile"><h2>Items</h2><b id="tile-items">–</b><small><span data-stat="curr_items">–</span> now · <span data-stat="total_items">–</span> stored</small></div>
  <div class="tile"><h2>Memory</h2><b id="tile-bytes">–</b><small>of <span id="tile-limit">–</span> (<span data-stat="bytes">–</span> bytes)</small><div class="meter" id="tile-bytes-bar"><span></span></div></div>
  <div class="tile"><h2>Evictions/s</h2><b id="tile-evictions">–</b><small><span data-stat="evictions">–</span> in all</small></div>
  <div class="tile"><h2>Reclaims/s</h2><b id="tile-reclaimed">–</b><small><span data-stat="reclaimed">–</span> in all</small></div>
  <div class="tile"><h2>Connections</h2><b id="tile-conns">–</b><small><span data-stat="total_connections">–</span> since start · <span data-stat="rejected_connections">–</span> rejected</small></div>
  <div class="tile"><h2>Network</h2><b id="tile-net" class="small">–</b></div>
</section>
<section class="charts">
  <div class="chart" id="chart-ops"></div>
  <div class="chart" id="chart-hits"></div>
  <div class="chart" id="chart-latency"></div>
  <div class="chart" id="chart-memory"></div>
  <div class="chart" id="chart-evictions"></div>
  <div class="chart" id="chart-connections"></div>
  <div class="chart" id="chart-threads"></div>
  <div class="chart" id="chart-shards"></div>
</section>
<section class="panels">
  <div class="panel wide">
    <h2>Hot keys <small id="hot-window"></small></h2>
    <p id="hot-off" class="note" hidden>Key names are not tracked: start memshard with <code>--hot-keys</code> to see them. Shard counts are always shown.</p>
    <div class="pair">
      <div class="scroll"><table id="hot-reads"><caption>Reads</caption><thead><tr><th>key</th><th>per s</th><th>count</th></tr></thead><tbody></tbody></table></div>
      <div class="scroll"><table id="hot-writes"><caption>Writes</caption><thead><tr><th>key</th><th>per s</th><th>count</th></tr></thead><tbody></tbody></table></div>
    </div>
    <div class="scroll"><table id="hot-shards"><caption>Hottest shards</caption><thead><tr><th>shard</th><th>reads</th><th>writes</th><th>per s</th><th></th></tr></thead><tbody></tbody></table></div>
  </div>
  <div class="panel scroll"><h2>Commands</h2><table id="table-commands"><thead><tr><th>command</th><th>per s</th><th>p50</th><th>p90</th><th>p99</th><th>total</th></tr></thead><tbody></tbody></table></div>
  <div class="panel scroll"><h2>Serving threads</h2><table id="table-threads"><thead><tr><th>thread</th><th>conns</th><th>req/s</th><th>total</th><th></th></tr></thead><tbody></tbody></table></div>
  <div class="panel scroll"><h2>Shards</h2><table id="table-shards"><thead><tr><th>shard</th><th>items</th><th>bytes / limit</th><th>ops/s</th><th>evicted</th><th></th></tr></thead><tbody></tbody></table></div>
  <div class="panel scroll wide"><h2>Memory by slab class</h2><table id="table-slabs"><thead><tr><th>class</th><th>chunk</th><th>pages</th><th>chunks used</th><th>items</th><th>requested</th><th>evicted</th><th>evicted/s</th></tr></thead><tbody></tbody></table></div>
  <div class="panel scroll" id="cluster" hidden><h2>Cluster <small id="cluster-version"></small></h2><table id="table-cluster"><thead><tr><th>host</th><th>ip</th><th>port</th></tr></thead><tbody></tbody></table></div>
</section>
</main>
</body>
</html>
`;

export const PAGE_CSS = `:root { color-scheme: light dark; --bg: #f6f7f9; --card: #fff; --fg: #1d2330; --muted: #667085; --line: #e3e6ea; --accent: #2f7ed8; }
@media (prefers-color-scheme: dark) { :root { --bg: #11151c; --card: #1a202a; --fg: #e6e9ef; --muted: #98a2b3; --line: #2a3140; --accent: #5aa0f0; } .uplot { color: var(--fg); } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: baseline; padding: .6rem 1rem; background: var(--card); border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.2rem; margin: 0; }
header .right { margin-left: auto; color: var(--muted); }
header a { color: var(--accent); }
#status { padding: 0 .5rem; border-radius: 1rem; font-size: .85rem; }
#status.live { background: #17a58933; color: #17a589; }
#status.stale { background: #e4572e33; color: #e4572e; }
main { padding: .8rem; display: grid; gap: .8rem; }
h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 .3rem; font-weight: 600; }
h2 small { text-transform: none; letter-spacing: 0; font-weight: 400; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: .6rem; }
.tile, .chart, .panel { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .6rem .8rem; min-width: 0; }
.tile b { display: block; font-size: 1.6rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.tile b.small { font-size: 1rem; }
.tile small { color: var(--muted); font-variant-numeric: tabular-nums; }
.meter { height: 6px; background: var(--line); border-radius: 3px; margin-top: .3rem; overflow: hidden; }
.meter span, td.bar span { display: block; height: 100%; background: var(--accent); }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 420px), 1fr)); gap: .6rem; }
.chart { padding: .3rem; overflow: hidden; }
.panels { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 420px), 1fr)); gap: .6rem; }
.panel.wide { grid-column: 1 / -1; }
.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 300px), 1fr)); gap: .6rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
caption { text-align: left; color: var(--muted); font-size: .8rem; padding: .2rem 0; }
th, td { text-align: right; padding: .2rem .4rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
td.key { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; max-width: 22rem; overflow: hidden; text-overflow: ellipsis; }
td.empty { color: var(--muted); text-align: left; }
td.bar { width: 25%; min-width: 60px; }
td.bar span { height: 8px; border-radius: 4px; }
.note { color: var(--muted); margin: .2rem 0 .5rem; }
code { font-family: ui-monospace, monospace; }
@media (max-width: 600px) { main { padding: .4rem; } .tile b { font-size: 1.25rem; } header .right { margin-left: 0; } }
`;
