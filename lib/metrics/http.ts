/**
 * The /metrics endpoint, on its own port like memcached_exporter (9150 by default).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Exporter } from './exporter.js';

const LANDING = '<html><head><title>memshard</title></head><body><h1>memshard</h1><p><a href="/metrics">Metrics</a></p></body></html>\n';

export async function serveMetrics(
  exporter: Exporter,
  port: number,
  host: string | undefined,
  log: (level: number, msg: string) => void,
  /** More read-only routes (the dashboard, lib/dashboard/routes.ts): true when one answered. */
  routes?: (req: http.IncomingMessage, res: http.ServerResponse, path: string) => boolean,
): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    } else if (path !== '/metrics' && routes?.(req, res, path) === true) {
      // answered by the dashboard
    } else if (path === '/metrics') {
      exporter.scrape().then(
        (body) => res.writeHead(200, { 'Content-Type': exporter.registry.contentType }).end(body),
        (err: unknown) => {
          log(1, `metrics scrape failed: ${String(err)}`);
          res.writeHead(500, { 'Content-Type': 'text/plain' }).end('scrape failed\n');
        },
      );
    } else if (path === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' }).end(LANDING);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  log(1, `metrics on http://${address.address}:${address.port}/metrics${routes === undefined ? '' : `, dashboard on http://${address.address}:${address.port}/`}`);
  return server;
}
