/**
 * Clients of the instances' own services (IsaacSimService, TrainingService), one channel per address,
 * reused across calls. Every call has a deadline: an instance that hangs must not hang a create.
 */
import * as grpc from '@grpc/grpc-js';
import { IsaacSimService } from '../gen/isaac/v1/isaac_sim_pb.js';
import { TrainingService } from '../gen/training/v1/training_pb.js';
import { createClient, type ClientOf } from '../rpc/grpc-adapter.js';

export type SimClient = ClientOf<typeof IsaacSimService>;
export type TrainerClient = ClientOf<typeof TrainingService>;

export interface InstanceClientsOptions {
  /** Deadline of each call to an instance. */
  callTimeoutMs: number;
  credentials?: grpc.ChannelCredentials;
}

export class InstanceClients {
  private readonly sims = new Map<string, SimClient>();
  private readonly trainers = new Map<string, TrainerClient>();
  constructor(readonly opts: InstanceClientsOptions) {}

  sim(address: string): SimClient {
    let c = this.sims.get(address);
    if (!c) this.sims.set(address, (c = createClient(IsaacSimService, address, { credentials: this.opts.credentials })));
    return c;
  }

  trainer(address: string): TrainerClient {
    let c = this.trainers.get(address);
    if (!c) this.trainers.set(address, (c = createClient(TrainingService, address, { credentials: this.opts.credentials })));
    return c;
  }

  get timeout() {
    return { timeoutMs: this.opts.callTimeoutMs };
  }

  close(): void {
    for (const c of this.sims.values()) c.close();
    for (const c of this.trainers.values()) c.close();
    this.sims.clear();
    this.trainers.clear();
  }
}
