/**
 * Test support for the dashboard: the bundle built when its sources changed, a Neuro process that
 * serves the dashboard and the Connect API on its HTTP port, and Debian's Chromium through
 * playwright-core. Not imported by production code.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FAST_HEARTBEATS, procOf, startNeuro, tempDir, type Proc } from '../../testing/processes.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const BUNDLE = join(REPO, 'dist/dashboard');
export const ARTIFACTS = join(REPO, 'artifacts/dashboard');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function newest(dir: string, skip: (p: string) => boolean): number {
  let t = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (skip(p)) continue;
    const st = statSync(p);
    t = Math.max(t, st.isDirectory() ? newest(p, skip) : st.mtimeMs);
  }
  return t;
}

/** Builds dist/dashboard (vite build) unless it is newer than every source; one build at a time across processes. */
export async function ensureBundle(): Promise<void> {
  const index = join(BUNDLE, 'index.html');
  const skip = (p: string) => p.endsWith('.test.ts') || p.includes(`${join('dashboard', 'testing')}`);
  const fresh = () =>
    existsSync(index) &&
    statSync(index).mtimeMs >= Math.max(newest(join(REPO, 'src/dashboard'), skip), newest(join(REPO, 'src/gen'), () => false), statSync(join(REPO, 'vite.config.ts')).mtimeMs);
  if (fresh()) return;
  mkdirSync(join(REPO, 'dist'), { recursive: true });
  const lock = join(REPO, 'dist/.dashboard-build-lock');
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another test process is building; a lock older than 2 minutes is stale.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 120_000) rmSync(lock, { recursive: true, force: true });
      } catch {
        /* gone meanwhile */
      }
      if (Date.now() > deadline) throw new Error('timed out waiting for another dashboard build');
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    if (fresh()) return;
    const r = spawnSync(process.execPath, [join(REPO, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], { cwd: REPO, encoding: 'utf8', env: { ...process.env, CI: '1' } });
    if (r.status !== 0) throw new Error(`vite build failed:\n${r.stdout}\n${r.stderr}`);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export interface DashboardNeuroProc extends Proc {
  grpcPort: number;
  /** The HTTP port serving the dashboard and the Connect API. */
  httpPort: number;
  /** gRPC address for agents and the CLI. */
  address: string;
  /** The dashboard's URL. */
  url: string;
  /** Whether Neuro's own HTTP port serves the dashboard (src/server/neuro.ts wires createHttpExtras). */
  wired: boolean;
}

export interface DashboardNeuroOptions {
  token?: string;
  env?: Record<string, string>;
}

async function servesDashboard(httpPort: number): Promise<boolean> {
  try {
    const page = await fetch(`http://127.0.0.1:${httpPort}/`);
    const html = await page.text();
    if (!html.includes('id="app"')) return false;
    const api = await fetch(`http://127.0.0.1:${httpPort}/neuro.v1.NeuroOrchestratorService/GetResourcePoolStatus`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"summary_only":true}' });
    return api.status === 200 || api.status === 401;
  } catch {
    return false;
  }
}

function runServeScript(env: Record<string, string>): Proc {
  const script = fileURLToPath(new URL('./serve.ts', import.meta.url));
  return procOf(spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
}

/**
 * A Neuro process serving the dashboard: `neuro serve` itself when its HTTP port has the dashboard
 * (once the lead wires createHttpExtras into src/server/neuro.ts), else src/dashboard/testing/serve.ts
 * (startNeuro in-process plus the extras on a second port).
 */
export async function startDashboardNeuro(o: DashboardNeuroOptions = {}): Promise<DashboardNeuroProc> {
  await ensureBundle();
  const env = { ...(o.token ? { NEURO_TOKEN: o.token } : {}), ...o.env };
  if (process.env.NEURO_DASHBOARD_FALLBACK !== '1') {
    const real = await startNeuro({ env });
    if (await servesDashboard(real.httpPort)) return { ...real, url: `http://127.0.0.1:${real.httpPort}/`, wired: true };
    await real.kill('SIGKILL');
  }
  const p = runServeScript({
    NEURO_LOG_LEVEL: 'info',
    NEURO_GRPC_HOST: '127.0.0.1',
    NEURO_HTTP_HOST: '127.0.0.1',
    NEURO_GRPC_PORT: '0',
    NEURO_HTTP_PORT: '0',
    NEURO_DATA_DIR: tempDir(),
    ...FAST_HEARTBEATS,
    ...env,
  });
  const m = await p.line(/"msg":"dashboard serving","grpcPort":(\d+),"httpPort":(\d+)/);
  const grpcPort = Number(m[1]);
  const httpPort = Number(m[2]);
  return { ...p, grpcPort, httpPort, address: `127.0.0.1:${grpcPort}`, url: `http://127.0.0.1:${httpPort}/`, wired: false };
}

/** The launch options of Debian's Chromium (no browser download). */
export function chromiumOptions() {
  return {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  };
}

export function haveChromium(): boolean {
  return existsSync(CHROMIUM);
}

export function screenshotPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}
