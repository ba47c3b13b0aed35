/**
 * IsaacSimService over the agent's virtual instances: each request names its instance and is
 * routed to it; the instance applies the epoch rules.
 */
import type * as grpc from '@grpc/grpc-js';
import { IsaacSimService } from '../../gen/isaac/v1/isaac_sim_pb.js';
import { NeuroError } from '../../core/errors.js';
import { addService } from '../../rpc/grpc-adapter.js';
import type { SimInstance } from './instance.js';

/** Adds IsaacSimService to `server`, routing by `instance_id` through `instances`. */
export function addIsaacSimService(server: grpc.Server, instances: ReadonlyMap<string, SimInstance>): void {
  const route = (id: string): SimInstance => {
    const inst = instances.get(id);
    if (!inst) throw NeuroError.notFound('instance', id);
    return inst;
  };
  addService(server, IsaacSimService, {
    createSession: (req) => route(req.instanceId).createSession(req),
    startSimulation: (req) => route(req.instanceId).startSimulation(req.sessionId, req.epoch),
    stopSimulation: (req) => route(req.instanceId).stopSimulation(req.sessionId, req.epoch),
    destroySession: (req) => route(req.instanceId).destroySession(req),
    bindEnvServer: (req) => route(req.instanceId).bindEnvServer(req),
    setControlSource: (req) => route(req.instanceId).setControlSource(req),
    getStatus: (req) => route(req.instanceId).getStatus(),
  });
}
