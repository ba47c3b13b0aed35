/**
 * Serves the dashboard's static bundle (built by `npm run build` into dist/dashboard) on the HTTP
 * port: `/` and `/index.html`, the hashed files under `/assets/`, and the other top-level files of the
 * bundle. Everything else (metrics, health, the Connect API) is left to the other routes.
 * Files are read once per change (mtime) and kept in memory, gzipped for clients that accept it.
 */
import type http from 'node:http';
import { readFileSync, statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** dist/dashboard of this checkout (where `vite build` writes). */
export function defaultDashboardDir(): string {
  return fileURLToPath(new URL('../../dist/dashboard', import.meta.url));
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.svg', '.json', '.map', '.txt']);

const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  // The page talks to this origin (the API) and to the simulators' control WebSockets, wherever they are.
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

interface Cached {
  mtimeMs: number;
  size: number;
  body: Buffer;
  gzip?: Buffer;
  etag: string;
}

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Neuro</title>
<style>body{background:#0d1117;color:#e6edf3;font:15px system-ui,sans-serif;display:grid;place-items:center;height:100vh;margin:0}
code{background:#161b22;border:1px solid #30363d;border-radius:4px;padding:2px 6px}</style></head>
<body><main><h1>Neuro</h1><p>The dashboard is not built. Run <code>npm run build</code> and reload.</p>
<p>The API, <code>/metrics</code>, <code>/healthz</code> and <code>/readyz</code> are served meanwhile.</p></main></body></html>
`;

export interface DashboardHandlerOptions {
  /** The built bundle; default dist/dashboard. */
  dir?: string;
}

/** An HTTP handler for the dashboard; resolves false for paths that are not the dashboard's. */
export function createDashboardHandler(opts: DashboardHandlerOptions = {}): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean> {
  const root = resolve(opts.dir ?? defaultDashboardDir());
  const cache = new Map<string, Cached>();

  const load = (file: string): Cached | undefined => {
    let st;
    try {
      st = statSync(file);
    } catch {
      return undefined;
    }
    if (!st.isFile()) return undefined;
    const hit = cache.get(file);
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit;
    const body = readFileSync(file);
    const entry: Cached = {
      mtimeMs: st.mtimeMs,
      size: st.size,
      body,
      gzip: COMPRESSIBLE.has(extname(file)) && body.length > 512 ? gzipSync(body) : undefined,
      etag: `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`,
    };
    cache.set(file, entry);
    return entry;
  };

  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    let path: string;
    try {
      path = decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/');
    } catch {
      return false;
    }
    const isIndex = path === '/' || path === '/index.html';
    // Only the bundle's own paths: `/assets/...` and top-level files with an extension.
    if (!isIndex && !path.startsWith('/assets/') && !/^\/[^/]+\.[A-Za-z0-9]+$/.test(path)) return false;
    const file = resolve(join(root, isIndex ? 'index.html' : path));
    if (file !== root && !file.startsWith(root + sep)) return false;
    const entry = load(file);
    if (!entry) {
      if (!isIndex) return false;
      res.writeHead(503, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...SECURITY_HEADERS });
      res.end(req.method === 'HEAD' ? undefined : NOT_BUILT);
      return true;
    }
    const headers: Record<string, string> = {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      // Hashed asset names change with their content; the page itself must always be revalidated.
      'cache-control': path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      etag: entry.etag,
      vary: 'accept-encoding',
      ...SECURITY_HEADERS,
    };
    if (req.headers['if-none-match'] === entry.etag) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    const gzip = entry.gzip && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? entry.gzip! : entry.body;
    if (gzip) headers['content-encoding'] = 'gzip';
    headers['content-length'] = String(body.length);
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
