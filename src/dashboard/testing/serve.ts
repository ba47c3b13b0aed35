/**
 * Neuro with the dashboard and the Connect API, for tests and local use until src/server/neuro.ts
 * wires `createHttpExtras` into its own HTTP port: `startNeuro` in-process (gRPC, registry, its HTTP
 * port), plus a second HTTP server with the extras on the same handlers.
 *
 *   node --import tsx src/dashboard/testing/serve.ts     (settings from NEURO_* as for `neuro serve`;
 *                                                         NEURO_DASHBOARD_PORT for the extra port)
 */
import http from 'node:http';
import { loadConfig, type NeuroConfig } from '../../server/config.js';
import { createHttpExtras } from '../../server/connect.js';
import { ALGORITHMS, startNeuro, type NeuroServer } from '../../server/neuro.js';
import { orchestratorHandlers } from '../../rpc/orchestrator-service.js';
import { onSignals } from '../../cli/signals.js';

export interface DashboardNeuro {
  server: NeuroServer;
  /** The port serving the dashboard, the Connect API, and (passed through) nothing else. */
  dashboardPort: number;
  stop(): Promise<void>;
}

export async function startNeuroWithDashboard(config: NeuroConfig, port = 0, staticDir?: string): Promise<DashboardNeuro> {
  const server = await startNeuro(config);
  const shutdown = new AbortController();
  const handlers = orchestratorHandlers(server.orchestrator, {
    urls: { webrtc: (sid, iid) => config.webrtcSignalingUrl.replaceAll('{session_id}', sid).replaceAll('{instance_id}', iid) },
    algorithms: ALGORITHMS,
    poolWatchIntervalMs: 200,
    shutdown: shutdown.signal,
  });
  const extras = createHttpExtras({ handlers, callerToken: config.callerToken, staticDir, shutdown: shutdown.signal });
  const httpServer = http.createServer(async (req, res) => {
    try {
      if (await extras(req, res)) return;
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`${(e as Error).message}\n`);
    }
  });
  const dashboardPort = await new Promise<number>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(port, config.http.host, () => resolve((httpServer.address() as { port: number }).port));
  });
  return {
    server,
    dashboardPort,
    async stop() {
      shutdown.abort();
      await new Promise<void>((resolve) => {
        httpServer.close(() => resolve());
        httpServer.closeAllConnections();
      });
      await server.stop();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const config = loadConfig();
  const n = await startNeuroWithDashboard(config, Number(process.env.NEURO_DASHBOARD_PORT ?? 0));
  // The same shape as Neuro's own "neuro serving" line, with the dashboard's port as the HTTP port.
  process.stdout.write(`${JSON.stringify({ msg: 'dashboard serving', grpcPort: n.server.grpcPort, httpPort: n.dashboardPort, neuroHttpPort: n.server.httpPort })}\n`);
  onSignals(() => n.stop());
}
