/**
 * The trainer's end of one training channel: a ZeroMQ REQ socket connected to a simulator's REP env
 * server, speaking `../common/env-protocol.ts`. REQ allows one request in flight, so requests are
 * queued; a timeout leaves a REQ socket unusable, so the first one makes the channel dead for good —
 * the simulator is presumed gone, which is what the training run reports.
 */
import { Request } from 'zeromq';
import { decode, encode, type EnvReply, type EnvRequest } from '../common/env-protocol.js';

type OkReply = Extract<EnvReply, { ok: true }>;
/** The reply type matching a request type. */
export type ReplyOf<T extends EnvRequest['type']> = Extract<OkReply, { type: T }>;
type Refusal = Extract<EnvReply, { ok: false }>;

/** Why a request got no usable answer. */
export type EnvChannelErrorKind =
  /** No reply within the receive timeout, or the socket failed: the simulator stopped answering. */
  | 'unreachable'
  /** The simulator answered `ok: false` (see `refusal`). */
  | 'refused'
  /** The reply was not the protocol's. */
  | 'protocol'
  /** The channel was closed on our side while the request waited. */
  | 'closed';

/** A request on a channel that failed; `refusal` carries the simulator's answer when it refused. */
export class EnvChannelError extends Error {
  override readonly name = 'EnvChannelError';
  constructor(
    readonly kind: EnvChannelErrorKind,
    message: string,
    readonly refusal?: Refusal,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface EnvChannelOptions {
  /** Milliseconds to wait for each reply before the simulator counts as gone. */
  receiveTimeoutMs: number;
}

/** A receive timeout that fires this much later than due means this thread was busy, not the peer silent. */
const STALL_GRACE_MS = 100;
/** Extra waits granted after late timeouts before the simulator counts as gone anyway. */
const MAX_STALL_RETRIES = 3;

/** One REQ socket to one simulator. */
export class EnvChannel {
  private readonly socket: Request;
  private queue: Promise<unknown> = Promise.resolve();
  private dead?: EnvChannelError;
  private closed = false;
  private readonly receiveTimeoutMs: number;

  constructor(
    readonly isaacInstanceId: string,
    readonly endpoint: string,
    opts: EnvChannelOptions,
  ) {
    // linger 0: closing must not wait on a dead peer. Both timeouts bound every wait, so a simulator
    // that vanishes surfaces as an error instead of a loop hanging forever.
    this.receiveTimeoutMs = opts.receiveTimeoutMs;
    this.socket = new Request({ linger: 0, receiveTimeout: opts.receiveTimeoutMs, sendTimeout: opts.receiveTimeoutMs });
    this.socket.connect(endpoint);
  }

  /** True once a request timed out or failed: the socket cannot be used again. */
  get broken(): boolean {
    return this.dead !== undefined;
  }

  /**
   * Sends one request and resolves with its reply of the same type. Rejects with an
   * {@link EnvChannelError}: `refused` for an `ok: false` answer (the channel stays usable),
   * anything else breaks the channel.
   */
  request<T extends EnvRequest['type']>(req: Extract<EnvRequest, { type: T }>): Promise<ReplyOf<T>> {
    const run = this.queue.then(() => this.exchange(req));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async exchange<T extends EnvRequest['type']>(req: Extract<EnvRequest, { type: T }>): Promise<ReplyOf<T>> {
    if (this.closed) throw new EnvChannelError('closed', `channel to ${this.isaacInstanceId} is closed`);
    if (this.dead) throw this.dead;
    let frame: Buffer | undefined;
    try {
      await this.socket.send(encode(req));
      frame = await this.receive();
    } catch (e) {
      if (this.closed) throw new EnvChannelError('closed', `channel to ${this.isaacInstanceId} is closed`, undefined, { cause: e });
      this.dead = new EnvChannelError(
        'unreachable',
        `simulator ${this.isaacInstanceId} stopped answering on ${this.endpoint} (${req.type}: ${(e as Error).message})`,
        undefined,
        { cause: e },
      );
      throw this.dead;
    }
    let reply: EnvReply;
    try {
      reply = decode<EnvReply>(frame ?? Buffer.alloc(0));
    } catch (e) {
      throw this.protocolError(`simulator ${this.isaacInstanceId} sent a frame that is not JSON on ${this.endpoint}`, e);
    }
    if (typeof reply !== 'object' || reply === null) throw this.protocolError(`simulator ${this.isaacInstanceId} sent a non-object reply`);
    if (!reply.ok) {
      const r = reply as Refusal;
      throw new EnvChannelError('refused', `simulator ${this.isaacInstanceId} refused ${req.type} on ${this.endpoint}: ${r.error}: ${r.message}`, r);
    }
    if (reply.type !== req.type) {
      throw this.protocolError(`simulator ${this.isaacInstanceId} answered ${req.type} with ${String(reply.type)} on ${this.endpoint}`);
    }
    return reply as ReplyOf<T>;
  }

  /**
   * zeromq's receive timeout is a timer on this thread's event loop: when a learner update blocks
   * the loop past it, the timer fires before the reply already waiting in the socket is read. So a
   * timeout that fired late (the loop was stalled) earns another wait; only a timeout on time means
   * the simulator really kept silent. A REQ socket may receive again after a timeout.
   */
  private async receive(): Promise<Buffer | undefined> {
    for (let attempt = 0; ; attempt++) {
      const waitStart = performance.now();
      try {
        const [frame] = await this.socket.receive();
        return frame;
      } catch (e) {
        const late = performance.now() - waitStart - this.receiveTimeoutMs;
        const timedOut = (e as { code?: string }).code === 'EAGAIN';
        if (this.closed || !timedOut || late < STALL_GRACE_MS || attempt >= MAX_STALL_RETRIES) throw e;
      }
    }
  }

  private protocolError(message: string, cause?: unknown): EnvChannelError {
    // A REQ socket stays usable after a bad reply, but a peer that breaks the protocol once
    // cannot be trusted with the session's data afterwards.
    this.dead = new EnvChannelError('protocol', message, undefined, { cause });
    return this.dead;
  }

  /** Closes the socket; a request waiting on it rejects with kind `closed`. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }
}
