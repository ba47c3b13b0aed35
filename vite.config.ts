// The dashboard's bundle (`npm run build`): src/dashboard → dist/dashboard, which Neuro serves on its
// HTTP port (src/server/dashboard.ts). `npx vite` serves the source with hot reload and proxies the
// API to a running Neuro (NEURO_HTTP, default http://127.0.0.1:8090).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const neuro = process.env.NEURO_HTTP ?? 'http://127.0.0.1:8090';

export default defineConfig({
  root: here('./src/dashboard'),
  publicDir: here('./src/dashboard/public'),
  base: '/',
  logLevel: process.env.CI ? 'warn' : 'info',
  build: {
    outDir: here('./dist/dashboard'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      '/neuro.v1.NeuroOrchestratorService': { target: neuro, changeOrigin: true },
    },
  },
});
