/**
 * The dashboard (/ on --metrics-port) in headless Chromium: Debian's /usr/bin/chromium driven by
 * playwright-core (no browser download; CHROMIUM_BIN overrides the path; .ci/run installs it).
 * While a load runs: the page loads with no console error, its charts gain points, its numbers
 * agree with `stats`, and the hot-keys table names the key the load made hot. Then basic auth
 * with -Y credentials (401 without, 200 with, /metrics still open), --metrics-public, and the
 * read-only surface (nothing but GET/HEAD).
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import t from 'tap';
import { freePort, rawClient, startDaemon, type Daemon, type RawClient } from './helpers/daemon.js';

const CHROMIUM = process.env['CHROMIUM_BIN'] ?? '/usr/bin/chromium';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** GET with headers; the status, headers and body whatever the status. */
function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers: { connection: 'close', ...headers }, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** The metrics port opens just after the memcached port: wait for it. */
async function waitHttp(url: string, headers: Record<string, string> = {}): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await get(url, headers).then(() => true, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${url} never answered`);
    await sleep(100);
  }
}

async function stats(c: RawClient): Promise<Map<string, number>> {
  c.send('stats\r\n');
  const reply = await c.readUntil('END\r\n', 5000);
  const m = new Map<string, number>();
  for (const line of reply.split('\r\n')) {
    const s = /^STAT (\S+) (\S+)$/.exec(line);
    if (s) m.set(s[1]!, Number(s[2]));
  }
  return m;
}

const HOT = 'session:hottest';

/**
 * A steady load until stop(): `conns` connections, each one request at a time; half the gets go
 * to HOT, the rest over 200 keys, one request in ten a set.
 */
function load(port: number, conns: number): { stop: () => Promise<void> } {
  let running = true;
  const loops = Array.from({ length: conns }, async (_, n) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.setNoDelay(true);
    await new Promise<void>((res, rej) => sock.once('connect', res).once('error', rej));
    let pending = '';
    let wake: (() => void) | null = null;
    sock.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      wake?.();
    });
    const until = async (end: string) => {
      while (!pending.includes(end)) await new Promise<void>((res) => (wake = res));
      pending = pending.slice(pending.indexOf(end) + end.length);
    };
    for (let i = 0; running; i++) {
      const key = i % 2 === 0 ? HOT : `page:${(i * 7 + n) % 200}`;
      if (i % 10 === 3) {
        sock.write(`set ${key} 0 0 5\r\nvalue\r\n`);
        await until('STORED\r\n');
      } else {
        sock.write(`get ${key}\r\n`);
        await until('END\r\n');
      }
    }
    sock.destroy();
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

let browser: Browser;
t.before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
});
t.teardown(() => browser?.close());

/** A page that records console errors and uncaught exceptions. */
async function openPage(url: string, credentials?: { username: string; password: string }): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...(credentials === undefined ? {} : { httpCredentials: credentials }) });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  await page.goto(url);
  return { page, errors };
}

const polls = (page: Page): Promise<number> => page.evaluate(() => (window as unknown as { memshard: { polls: number } }).memshard.polls);

async function waitPolls(page: Page, n: number): Promise<void> {
  await page.waitForFunction((n) => (window as unknown as { memshard: { polls: number } }).memshard.polls >= n, n, { timeout: 15_000 });
}

/** The numbers the page shows for data-stat elements (the tiles' totals), by stat name. */
function shown(page: Page): Promise<Record<string, number>> {
  return page.evaluate(() => {
    const out: Record<string, number> = {};
    document.querySelectorAll<HTMLElement>('[data-stat]').forEach((el) => (out[el.dataset['stat']!] = Number(el.textContent)));
    return out;
  });
}

t.test('under load: no console error, charts move, numbers agree with stats, the hot key is named', async (t) => {
  const metricsPort = await freePort();
  const d = await startDaemon(['-t', '2', '-m', '16', '--hot-keys', '--metrics-port', String(metricsPort)]);
  t.teardown(() => d.stop());
  const base = `http://127.0.0.1:${metricsPort}`;
  await waitHttp(`${base}/metrics`);
  const traffic = load(d.port, 4);
  const { page, errors } = await openPage(`${base}/`);
  const probe = await rawClient(d.port);
  t.teardown(() => probe.close());

  await waitPolls(page, 3);
  const points = (id: string) => page.evaluate((id) => (window as unknown as { memshard: { charts: Record<string, { data: Array<Array<number | null>> }> } }).memshard.charts[id]!.data[0]!.length, id);
  const before = await points('chart-ops');
  await waitPolls(page, (await polls(page)) + 3);
  const after = await points('chart-ops');
  t.ok(after >= before + 2, `the request chart gained points while the load ran (${before} -> ${after})`);
  const getSeries = await page.evaluate(() => {
    const c = (window as unknown as { memshard: { charts: Record<string, { names: string[]; data: Array<Array<number | null>> }> } }).memshard.charts['chart-ops']!;
    return c.data[c.names.indexOf('get') + 1] ?? [];
  });
  t.ok(Math.max(...getSeries.map((v) => v ?? 0)) > 0, `the get series shows traffic (max ${Math.max(...getSeries.map((v) => v ?? 0)).toFixed(0)}/s)`);
  const latency = await page.evaluate(() => (window as unknown as { memshard: { charts: Record<string, { names: string[] }> } }).memshard.charts['chart-latency']!.names);
  t.ok(latency.includes('get') && latency.includes('set'), `latency by command: ${latency.join(', ')}`);

  // Counters only grow: a value the page shows from a snapshot taken between two `stats` replies
  // lies between them. The page's poll is waited for after the first reply, so its snapshot is
  // taken after it; the second reply is asked for once the page shows it.
  const s1 = await stats(probe);
  const t1 = Date.now();
  await waitPolls(page, (await polls(page)) + 2);
  const onPage = await shown(page);
  const snapRate = await page.evaluate(() => (window as unknown as { memshard: { last: { rates: Record<string, number> } } }).memshard.last.rates['cmd_get']!);
  const s2 = await stats(probe);
  const t2 = Date.now();
  for (const name of ['cmd_get', 'get_hits', 'get_misses', 'cmd_set', 'total_items', 'total_connections']) {
    t.ok(s1.get(name)! <= onPage[name]! && onPage[name]! <= s2.get(name)!, `${name}: stats ${s1.get(name)} <= page ${onPage[name]} <= stats ${s2.get(name)}`);
  }
  // The page's rate covers about one second of the same steady load as the two readings (~2-3 s):
  // a factor of 3 either way leaves room for a busy 2-core machine and still fails a rate off by
  // a unit (per ms, per minute) or taken from the wrong counter.
  const statsRate = (s2.get('cmd_get')! - s1.get('cmd_get')!) / ((t2 - t1) / 1000);
  t.ok(snapRate > statsRate / 3 && snapRate < statsRate * 3, `get rate: page ${snapRate.toFixed(0)}/s, stats ${statsRate.toFixed(0)}/s`);

  const firstHot = await page.textContent('#hot-reads tbody tr:first-child td.key');
  t.equal(firstHot, HOT, 'the hot-keys table names the hot key first');
  t.ok(await page.isHidden('#hot-off'), 'no "names hidden" note with --hot-keys');

  await traffic.stop();
  // Load stopped: the next snapshots and `stats` read the same numbers, gauges included.
  await waitPolls(page, (await polls(page)) + 2);
  const still = await shown(page);
  const s3 = await stats(probe);
  for (const name of ['cmd_get', 'get_hits', 'cmd_set', 'curr_items', 'total_items', 'bytes', 'evictions', 'reclaimed']) {
    t.equal(still[name], s3.get(name), `${name} idle: page ${still[name]} = stats ${s3.get(name)}`);
  }
  const limit = await page.textContent('#tile-limit');
  t.equal(limit, '16.0 MiB', 'the memory limit is -m');
  const slabRows = await page.locator('#table-slabs tbody tr').count();
  t.ok(slabRows >= 1, `slab classes listed (${slabRows})`);
  t.equal(await page.locator('#table-threads tbody tr').count(), 2, 'one row per thread');
  t.equal(await page.locator('#table-shards tbody tr').count(), 2, 'one row per shard');
  t.ok(await page.isHidden('#cluster'), 'no cluster panel without Auto Discovery');

  // a phone's width: the page still renders without horizontal scrolling of the whole page
  await page.setViewportSize({ width: 390, height: 844 });
  await waitPolls(page, (await polls(page)) + 1);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  t.ok(overflow <= 1, `no page-wide horizontal scroll at 390 px (${overflow} px)`);
  t.same(errors, [], 'no console error or uncaught exception');
});

t.test('-Y and -S credentials: the dashboard asks for them, /metrics stays open; --metrics-public opens it', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memshard-dash-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const authFile = path.join(dir, 'auth');
  fs.writeFileSync(authFile, 'ops:s3cret\n');
  const good = { authorization: `Basic ${Buffer.from('ops:s3cret').toString('base64')}` };
  const wrong = { authorization: `Basic ${Buffer.from('ops:guess').toString('base64')}` };
  const daemons: Daemon[] = [];
  t.teardown(() => Promise.all(daemons.map((d) => d.stop())));

  const port = await freePort();
  daemons.push(await startDaemon(['-Y', authFile, '--hot-keys', '--metrics-port', String(port)]));
  const base = `http://127.0.0.1:${port}`;
  await waitHttp(`${base}/metrics`);
  for (const p of ['/', '/api/snapshot', '/dashboard.js', '/uplot.js']) {
    const none = await get(`${base}${p}`);
    t.equal(none.status, 401, `${p} without credentials: 401`);
    t.match(String(none.headers['www-authenticate']), /^Basic realm="memshard"/, `${p}: asks for basic auth`);
    t.equal((await get(`${base}${p}`, wrong)).status, 401, `${p} with a wrong password: 401`);
    t.equal((await get(`${base}${p}`, good)).status, 200, `${p} with the credentials: 200`);
  }
  const metrics = await get(`${base}/metrics`);
  t.equal(metrics.status, 200, '/metrics needs no credentials (Prometheus scrapes it as before)');
  t.match(metrics.body, /^memcached_up 1$/m);

  const { page, errors } = await openPage(`${base}/`, { username: 'ops', password: 's3cret' });
  await waitPolls(page, 2);
  t.same(errors, [], 'with the credentials the page polls with no error');

  // read-only: only GET and HEAD are answered
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    t.equal((await get(`${base}/api/snapshot`, good, method)).status, 405, `${method} /api/snapshot: 405`);
  }
  t.equal((await get(`${base}/api/snapshot?flush=1`, good)).status, 200, 'a query string is ignored');

  const openPort = await freePort();
  daemons.push(await startDaemon(['-Y', authFile, '--metrics-public', '--metrics-port', String(openPort)]));
  await waitHttp(`http://127.0.0.1:${openPort}/metrics`);
  t.equal((await get(`http://127.0.0.1:${openPort}/`)).status, 200, '--metrics-public: / without credentials');
  t.equal((await get(`http://127.0.0.1:${openPort}/api/snapshot`)).status, 200, '--metrics-public: /api/snapshot without credentials');

  // -S: the SASL password file's users, the same way
  const saslPort = await freePort();
  daemons.push(await startDaemon(['-S', '--sasl-pwdb', authFile, '--metrics-port', String(saslPort)]));
  await waitHttp(`http://127.0.0.1:${saslPort}/metrics`);
  t.equal((await get(`http://127.0.0.1:${saslPort}/api/snapshot`)).status, 401, '-S: /api/snapshot without credentials: 401');
  t.equal((await get(`http://127.0.0.1:${saslPort}/api/snapshot`, good)).status, 200, '-S: with the SASL user: 200');
});

t.test('--cluster-nodes: the cluster panel lists the nodes `config get cluster` gives', async (t) => {
  const metricsPort = await freePort();
  const nodes = 'cache-b.example|10.0.0.2|11212,cache-a.example|10.0.0.1|11211';
  const d = await startDaemon(['--cluster-nodes', nodes, '--metrics-port', String(metricsPort)]);
  t.teardown(() => d.stop());
  await waitHttp(`http://127.0.0.1:${metricsPort}/metrics`);
  const c = await rawClient(d.port);
  c.send('config get cluster\r\n');
  const config = await c.readUntil('END\r\n', 3000);
  await c.close();
  const line = config.split('\n')[2]!.trim();
  const { page, errors } = await openPage(`http://127.0.0.1:${metricsPort}/`);
  await waitPolls(page, 1);
  t.ok(await page.isVisible('#cluster'), 'the cluster panel is shown');
  const rows = await page.$$eval('#table-cluster tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '').join('|')));
  t.same(rows.join(' '), line, `the same nodes, in the same order: ${line}`);
  t.match(await page.textContent('#cluster-version'), /^config version 1$/, 'its config version');
  t.same(errors, [], 'no console error');
});
