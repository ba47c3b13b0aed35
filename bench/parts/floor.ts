/**
 * 1. The floor: a no-op unary call (grpc.health.v1 Health/Check) through Neuro's gRPC stack and client,
 * to a server in its own process. What no Neuro call can beat on this machine.
 */
import { Health } from '../../src/gen/grpc/health/v1/health_pb.js';
import { createClient } from '../../src/rpc/grpc-adapter.js';
import { closedLoop, sequential } from '../lib/load.js';
import { cpuMs, startFloorServer } from '../lib/procs.js';
import type { Part } from './common.js';

export const floor: Part = async (sizes) => {
  const server = await startFloorServer();
  const c = createClient(Health, server.address);
  const notes: string[] = [];
  try {
    const check = async () => {
      await c.check({ service: '' });
    };
    await sequential(Math.min(500, sizes.floorCalls), check); // warm-up: connection, JIT
    const lat = await sequential(sizes.floorCalls, check);
    const cpu0 = cpuMs(server.pid);
    const self0 = process.cpuUsage();
    const t = await closedLoop(64, sizes.throughputMs, sizes.warmupMs, check);
    const cpu = cpuMs(server.pid) - cpu0;
    const self = process.cpuUsage(self0);
    if (lat.errors || t.errors) notes.push(`floor: ${lat.errors + t.errors} errors; first: ${lat.firstError ?? t.firstError}`);
    return {
      figures: {
        'floor.p50_ms': lat.p50,
        'floor.p99_ms': lat.p99,
        'floor.c64_per_s': t.perSecond,
        'floor.c64_p50_ms': t.p50,
        'floor.c64_server_cpu_ms_per_call': cpu / t.allOps,
        'floor.c64_client_cpu_ms_per_call': (self.user + self.system) / 1000 / t.allOps,
      },
      notes,
    };
  } finally {
    c.close();
    await server.kill('SIGKILL');
  }
};
