/**
 * The dashboard's HTTP routes on the metrics port: the page (/), its script and styles, uPlot
 * (from the installed `uplot` package: no CDN, works offline) and the JSON snapshot
 * (/api/snapshot). All of it is read-only (the server answers GET and HEAD only, and nothing here
 * takes a parameter). With -S/-Y credentials every route here asks for them (HTTP basic auth),
 * unless --metrics-public; /metrics is not one of these routes and stays as it was.
 */
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { createRequire } from 'node:module';
import type { Credentials } from '../auth.js';
import { PAGE_CSS, PAGE_HTML } from './page.js';
import type { SnapshotBuilder } from './snapshot.js';

const require = createRequire(import.meta.url);

/** Only the page's own files; no inline script or style, no framing. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Asset {
  type: string;
  body: Buffer;
}

function assets(): Map<string, Asset> {
  const file = (path: string | URL): Buffer => readFileSync(path);
  const js = 'text/javascript; charset=utf-8';
  const css = 'text/css; charset=utf-8';
  return new Map<string, Asset>([
    ['/', { type: 'text/html; charset=utf-8', body: Buffer.from(PAGE_HTML) }],
    ['/dashboard.css', { type: css, body: Buffer.from(PAGE_CSS) }],
    // without its source map comment: the map is not shipped
    ['/dashboard.js', { type: js, body: Buffer.from(file(new URL('./client.js', import.meta.url)).toString('utf8').replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n')) }],
    ['/uplot.js', { type: js, body: file(require.resolve('uplot/dist/uPlot.iife.min.js')) }],
    ['/uplot.css', { type: css, body: file(require.resolve('uplot/dist/uPlot.min.css')) }],
  ]);
}

export interface DashboardOptions {
  snapshots: SnapshotBuilder;
  /** The -S and -Y password files; empty, or --metrics-public: no login. */
  credentials: Credentials[];
  log: (level: number, msg: string) => void;
}

/** True when `user:password` of an `Authorization: Basic` header is in one of the files. */
export function basicAuthOk(header: string | undefined, credentials: readonly Credentials[]): boolean {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (m === null) return false;
  const decoded = Buffer.from(m[1]!, 'base64');
  const colon = decoded.indexOf(0x3a);
  if (colon <= 0) return false;
  const user = decoded.subarray(0, colon).toString('utf8');
  const password = decoded.subarray(colon + 1);
  // every file is checked, so that the time taken does not say which one has the user
  let ok = false;
  for (const c of credentials) ok = c.check(user, password) || ok;
  return ok;
}

/**
 * The handler for the dashboard's paths: answers and returns true, or returns false for a path
 * that is not its own (the metrics server answers those).
 */
export function dashboardRoutes(opts: DashboardOptions): (req: http.IncomingMessage, res: http.ServerResponse, path: string) => boolean {
  const files = assets();
  const headers = (type: string): http.OutgoingHttpHeaders => ({
    'Content-Type': type,
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  });
  return (req, res, path) => {
    const route = path === '/index.html' ? '/' : path;
    if (route !== '/api/snapshot' && !files.has(route)) return false;
    if (opts.credentials.length > 0 && !basicAuthOk(req.headers.authorization, opts.credentials)) {
      res.writeHead(401, { ...headers('text/plain; charset=utf-8'), 'WWW-Authenticate': 'Basic realm="memshard", charset="UTF-8"' }).end('credentials required\n');
      return true;
    }
    const asset = files.get(route);
    if (asset !== undefined) {
      res.writeHead(200, headers(asset.type)).end(asset.body);
      return true;
    }
    opts.snapshots.snapshot().then(
      (s) => res.writeHead(200, headers('application/json')).end(JSON.stringify(s)),
      (err: unknown) => {
        opts.log(1, `dashboard snapshot failed: ${String(err)}`);
        res.writeHead(500, headers('text/plain; charset=utf-8')).end('snapshot failed\n');
      },
    );
    return true;
  };
}
