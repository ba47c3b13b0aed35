/**
 * InstanceRegistryService handlers: how instances join, beat and report.
 */
import { NeuroError, type FieldViolation } from '../core/errors.js';
import { InstanceKind, InstanceRegistryService } from '../gen/neuro/v1/registry_pb.js';
import type { Orchestrator } from '../service/orchestrator.js';
import type { ServiceHandlers } from './grpc-adapter.js';
import { beatFromProto, progressFromProto, specFromProto } from './convert.js';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';

type Methods<S> = S extends GenService<infer T extends GenServiceMethods> ? T : never;

export interface RegistryHandlersOptions {
  heartbeatIntervalMs: number;
  heartbeatGraceMs: number;
  /** Called for every beat message, for the heartbeat CPU metric. */
  onBeats?: (n: number) => void;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function registryHandlers(o: Orchestrator, opts: RegistryHandlersOptions): ServiceHandlers<Methods<typeof InstanceRegistryService>> {
  return {
    async register(req) {
      const v: FieldViolation[] = [];
      req.instances.forEach((s, k) => {
        const f = `instances[${k}]`;
        if (!ID.test(s.instanceId)) v.push({ field: `${f}.instance_id`, description: 'must be 1-128 letters, digits and . _ : -' });
        if (s.kind !== InstanceKind.SIMULATOR && s.kind !== InstanceKind.TRAINER) v.push({ field: `${f}.kind`, description: 'must be INSTANCE_KIND_SIMULATOR or INSTANCE_KIND_TRAINER' });
        if (!/^[^\s]+:\d+$/.test(s.grpcAddress)) v.push({ field: `${f}.grpc_address`, description: 'must be host:port' });
        if (s.kind === InstanceKind.SIMULATOR && s.zmqPortMax < s.zmqPortMin) v.push({ field: `${f}.zmq_port_max`, description: 'is below zmq_port_min' });
      });
      if (v.length) throw NeuroError.invalid(v);
      await o.register(req.instances.map(specFromProto));
      return { success: true, message: `${req.instances.length} registered`, heartbeatIntervalMs: opts.heartbeatIntervalMs, heartbeatGraceMs: opts.heartbeatGraceMs };
    },
    heartbeat(stream) {
      stream.onMessage((req) => {
        opts.onBeats?.(req.beats.length);
        const directives = o.heartbeat(req.beats.map(beatFromProto));
        // Answer only when there is something to say: a reply per beat would double the stream's cost.
        if (directives.length) {
          stream.send({
            directives: directives.map((d) => ({ instanceId: d.instanceId, reregister: d.reregister, stop: d.stop.map((s) => ({ sessionId: s.sessionId, epoch: BigInt(s.epoch), reason: s.reason })) })),
            heartbeatIntervalMs: opts.heartbeatIntervalMs,
          });
        }
      });
      stream.onEnd(() => {});
    },
    async deregister(req) {
      await o.deregister(req.instanceIds);
      return { success: true, message: `${req.instanceIds.length} deregistered` };
    },
    async reportProgress(req) {
      const r = await o.report(req.instanceId, req.sessionId, Number(req.epoch), {
        progress: req.progress ? progressFromProto(req.progress) : null,
        channelsConnected: req.channelsConnected,
        completed: req.completed,
        failure: req.failure,
        control: req.control ? { simulatorId: req.control.isaacInstanceId, controller: req.control.controller || 'ai', reason: req.control.reason, demonstrations: Number(req.control.demonstrations) } : null,
      });
      return { success: true, message: r.stop ? 'stop' : '', stop: r.stop };
    },
  };
}
