/**
 * How a reference agent joins Neuro: it registers every instance it hosts in one call, then keeps one
 * long-lived Heartbeat stream carrying all their beats in one message per interval (so the cost to Neuro
 * grows with agent processes, not with instances), applies the directives Neuro sends back, and
 * reconnects with backoff when Neuro goes away (re-registering first, as a restarted Neuro may ask).
 */
import * as grpc from '@grpc/grpc-js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import {
  InstanceRegistryService,
  type HeartbeatResponse,
  type InstanceBeatSchema,
  type InstanceSpecSchema,
  type ReportProgressRequestSchema,
  type ReportProgressResponse,
} from '../../gen/neuro/v1/registry_pb.js';
import { createClient, type ClientOf } from '../../rpc/grpc-adapter.js';

type RegistryServiceClient = ClientOf<typeof InstanceRegistryService>;

export type InstanceSpecInit = MessageInitShape<typeof InstanceSpecSchema>;
export type InstanceBeatInit = MessageInitShape<typeof InstanceBeatSchema>;

/** One instance an agent hosts, as the registry client sees it. */
export interface HostedInstance {
  spec(): InstanceSpecInit;
  beat(): InstanceBeatInit;
  /** Neuro has ended this session: stop it and free what it holds. */
  stopSession(sessionId: string, epoch: bigint, reason: string): void;
}

export interface RegistryClientOptions {
  /** Neuro's gRPC address, host:port. */
  neuroAddress: string;
  /** The instance token, when Neuro requires one. */
  token?: string;
  /** Overrides the interval Neuro asks for (tests). */
  intervalMs?: number;
  credentials?: grpc.ChannelCredentials;
  onError?: (err: Error) => void;
}

const BEATS_PER_MESSAGE = 1000;

export class RegistryClient {
  private readonly client: RegistryServiceClient;
  private readonly instances = new Map<string, HostedInstance>();
  private stream?: grpc.ClientDuplexStream<unknown, HeartbeatResponse>;
  private timer?: NodeJS.Timeout;
  private intervalMs: number;
  private stopped = false;
  private backoffMs = 100;
  private connecting?: Promise<void>;
  /** Resolves after the first successful registration. */
  readonly ready: Promise<void>;
  private markReady!: () => void;

  constructor(private readonly opts: RegistryClientOptions) {
    const metadata = new grpc.Metadata();
    if (opts.token) metadata.set('authorization', `Bearer ${opts.token}`);
    this.client = createClient(InstanceRegistryService, opts.neuroAddress, { metadata, credentials: opts.credentials });
    this.intervalMs = opts.intervalMs ?? 1000;
    this.ready = new Promise((r) => (this.markReady = r));
  }

  add(id: string, instance: HostedInstance): void {
    this.instances.set(id, instance);
  }

  /** Stops beating for one instance (it died or left); Neuro sees it go unhealthy after the grace. */
  remove(id: string): void {
    this.instances.delete(id);
  }

  /** Registers everything and starts heartbeating; retries in the background until Neuro answers. */
  start(): Promise<void> {
    void this.connect();
    return this.ready;
  }

  /** Tells Neuro these instances are leaving (best effort). */
  async deregister(ids = [...this.instances.keys()]): Promise<void> {
    try {
      await this.client.deregister({ instanceIds: ids }, { timeoutMs: 2000 });
    } catch {
      // Neuro marks them unhealthy after the grace period anyway.
    }
  }

  reportProgress(req: MessageInitShape<typeof ReportProgressRequestSchema>): Promise<ReportProgressResponse> {
    return this.client.reportProgress(req, { timeoutMs: 5000 });
  }

  /** Stops heartbeating; Neuro sees the instances go unhealthy after the grace period. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.stream?.cancel();
    this.client.close();
  }

  private connect(): Promise<void> {
    if (this.connecting) return this.connecting;
    this.connecting = (async () => {
      while (!this.stopped) {
        try {
          // In messages of at most BEATS_PER_MESSAGE, for the same reason as the beats.
          const all = [...this.instances.values()];
          let res: Awaited<ReturnType<RegistryServiceClient['register']>> | undefined;
          for (let k = 0; k < all.length || !res; k += BEATS_PER_MESSAGE) {
            res = await this.client.register({ instances: all.slice(k, k + BEATS_PER_MESSAGE).map((i) => i.spec()) }, { timeoutMs: 5000 });
          }
          if (!this.opts.intervalMs && res.heartbeatIntervalMs) this.intervalMs = res.heartbeatIntervalMs;
          this.openStream();
          this.backoffMs = 100;
          this.markReady();
          return;
        } catch (e) {
          this.opts.onError?.(e as Error);
          await new Promise((r) => setTimeout(r, this.backoffMs));
          this.backoffMs = Math.min(this.backoffMs * 2, 1000);
        }
      }
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private openStream(): void {
    const stream = this.client.heartbeat() as grpc.ClientDuplexStream<unknown, HeartbeatResponse>;
    this.stream = stream;
    let dead = false;
    const lost = () => {
      if (dead) return;
      dead = true;
      if (this.timer) clearInterval(this.timer);
      this.timer = undefined;
      if (!this.stopped) setTimeout(() => void this.connect(), this.backoffMs);
    };
    stream.on('data', (res: HeartbeatResponse) => this.apply(res));
    stream.on('error', (e) => {
      this.opts.onError?.(e);
      lost();
    });
    stream.on('end', lost);
    const beat = () => {
      if (dead) return;
      this.writeBeats(stream);
    };
    beat();
    this.timer = setInterval(beat, this.intervalMs);
    this.timer.unref();
  }

  /**
   * One interval's beats, in messages of at most BEATS_PER_MESSAGE: Neuro handles each message in one
   * go, and a huge one (100,000 instances) would keep all its decoded beats alive long enough to be
   * promoted to the old generation, which is what made Neuro's memory grow with pool size.
   */
  private writeBeats(stream: grpc.ClientDuplexStream<unknown, HeartbeatResponse>): void {
    const all = [...this.instances.keys()];
    const chunks = Math.ceil(all.length / BEATS_PER_MESSAGE);
    // The messages of one interval are spread over its first half rather than sent back to back, so
    // Neuro never has a burst of them queued in front of a create. Each beat is built when sent.
    const gap = chunks > 1 ? this.intervalMs / 2 / chunks : 0;
    for (let k = 0; k < chunks; k++) {
      const send = () => {
        if (stream.destroyed || this.stopped) return;
        const beats: InstanceBeatInit[] = [];
        // An instance removed (killed) since the interval began beats no more.
        for (const id of all.slice(k * BEATS_PER_MESSAGE, (k + 1) * BEATS_PER_MESSAGE)) {
          const inst = this.instances.get(id);
          if (inst) beats.push(inst.beat());
        }
        if (beats.length) stream.write({ beats });
      };
      if (k === 0) send();
      else setTimeout(send, gap * k).unref();
    }
  }

  private apply(res: HeartbeatResponse): void {
    const reregister: string[] = [];
    for (const d of res.directives) {
      const inst = this.instances.get(d.instanceId);
      if (!inst) continue;
      for (const s of d.stop) inst.stopSession(s.sessionId, s.epoch, s.reason);
      if (d.reregister) reregister.push(d.instanceId);
    }
    if (reregister.length) {
      const specs = reregister.map((id) => this.instances.get(id)!.spec());
      this.client.register({ instances: specs }, { timeoutMs: 5000 }).catch((e) => this.opts.onError?.(e as Error));
    }
    if (res.heartbeatIntervalMs && !this.opts.intervalMs && res.heartbeatIntervalMs !== this.intervalMs && this.timer) {
      // Neuro stretches the interval as the pool grows; follow it on the next reconnect-free tick.
      this.intervalMs = res.heartbeatIntervalMs;
      clearInterval(this.timer);
      const stream = this.stream!;
      this.timer = setInterval(() => this.writeBeats(stream), this.intervalMs);
      this.timer.unref();
    }
  }
}
