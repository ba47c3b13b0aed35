/**
 * The HTTP/1.1 port: Prometheus metrics, liveness and readiness. Light traffic only; the API's hot path
 * is the gRPC port.
 */
import http from 'node:http';
import type { Metrics } from './metrics.js';

export interface HttpRoutes {
  metrics: Metrics;
  /** Ready: store loaded, gRPC bound, not shutting down. */
  ready: () => boolean;
  /** Extra handlers tried before the built-in routes (the dashboard, Connect); return true if handled. */
  extra?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;
}

export function createHttpServer(routes: HttpRoutes): http.Server {
  return http.createServer(async (req, res) => {
    try {
      if (routes.extra && (await routes.extra(req, res))) return;
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/metrics') {
        const body = await routes.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': routes.metrics.registry.contentType });
        res.end(body);
      } else if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok\n');
      } else if (path === '/readyz') {
        const ok = routes.ready();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
        res.end(ok ? 'ready\n' : 'not ready\n');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
      }
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`${(e as Error).message}\n`);
    }
  });
}
