/**
 * The ZeroMQ REP side of a training channel: one socket per session, bound where Neuro says, serving
 * the protocol of `../common/env-protocol.ts` against the session's envs.
 */
import { Reply } from 'zeromq';
import { decode, encode, type EnvReply, type EnvRequest } from '../common/env-protocol.js';
import type { InstanceStats, SimSession } from './session.js';

/** A bound REP socket answering every request with `handle`'s reply, one at a time. */
export class EnvServer {
  private closing?: Promise<void>;
  private readonly loop: Promise<void>;

  private constructor(
    private readonly socket: Reply,
    /** The endpoint as bound (the actual port when asked for `*`). */
    readonly endpoint: string,
    /** The endpoint as requested, to recognise a repeated bind. */
    readonly requested: string,
    handle: (msg: Buffer) => EnvReply,
    onError: (err: Error) => void,
  ) {
    this.loop = this.serve(handle).catch((e: Error) => {
      if (!this.closing) onError(e);
    });
  }

  /** Binds `endpoint` ("tcp://host:port") and starts serving. Rejects with zeromq's error (e.g. code EADDRINUSE). */
  static async bind(endpoint: string, handle: (msg: Buffer) => EnvReply, onError: (err: Error) => void): Promise<EnvServer> {
    // linger 0: a closed session must not hold its port (or pending replies) after it is gone.
    const socket = new Reply({ linger: 0, sendTimeout: 5000 });
    // A socket closed a moment ago (this port's previous session) frees its port in zeromq's I/O
    // thread, after close() returns: a few short retries cover that, a port really taken still fails.
    for (let attempt = 1; ; attempt++) {
      try {
        await socket.bind(endpoint);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= BIND_ATTEMPTS) {
          socket.close();
          throw e;
        }
        await new Promise((r) => setTimeout(r, BIND_RETRY_MS));
      }
    }
    return new EnvServer(socket, socket.lastEndpoint ?? endpoint, endpoint, handle, onError);
  }

  private async serve(handle: (msg: Buffer) => EnvReply): Promise<void> {
    for await (const [msg] of this.socket) {
      let reply: EnvReply;
      try {
        reply = handle(msg ?? Buffer.alloc(0));
      } catch (e) {
        // REP must answer every request, or the trainer's REQ socket is stuck for good.
        reply = { ok: false, error: 'BAD_REQUEST', message: (e as Error).message };
      }
      await this.socket.send(encode(reply));
    }
  }

  /**
   * Closes the socket (linger 0 frees the port). No unbind first: unbinding a REP socket whose peer
   * is mid-request, while a send is pending, aborted libzmq (pipe.cpp assertions) under the
   * benchmark's back-to-back gang cycles. Neuro rotates ports per simulator, so an immediate rebind of
   * the same port is not needed.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.socket.close();
      await this.loop;
    })();
    return this.closing;
  }
}

const BIND_ATTEMPTS = 8;
const BIND_RETRY_MS = 25;

type Failure = Extract<EnvReply, { ok: false }>;
const fail = (error: Failure['error'], message: string, controller?: string): Failure =>
  controller === undefined ? { ok: false, error, message } : { ok: false, error, message, controller };

const isNumberArray = (v: unknown, n: number): v is number[] =>
  Array.isArray(v) && v.length === n && v.every((x) => typeof x === 'number' && Number.isFinite(x));

/**
 * Serves one env-protocol request against `session`. `state.closed` is set by a `close` request:
 * the trainer is done, so only a new `hello` reopens the channel.
 */
export function handleEnvRequest(
  session: SimSession,
  instanceId: string,
  stats: InstanceStats,
  state: { closed: boolean },
  raw: Buffer,
): EnvReply {
  let req: EnvRequest;
  try {
    req = decode<EnvRequest>(raw);
  } catch {
    return fail('BAD_REQUEST', 'a request is one JSON object');
  }
  if (typeof req !== 'object' || req === null || typeof req.type !== 'string') return fail('BAD_REQUEST', 'a request needs a type');
  if (String(req.epoch) !== String(session.epoch)) {
    return fail('STALE_EPOCH', `epoch ${String(req.epoch)} is not this session's (${session.epoch})`);
  }
  if (session.closed) return fail('CLOSED', 'the session has ended');
  if (state.closed && req.type !== 'hello') return fail('CLOSED', 'the channel was closed; send hello to reopen it');
  const n = session.aiEnvs;
  switch (req.type) {
    case 'hello': {
      if (req.session_id !== session.id) return fail('BAD_REQUEST', `this channel serves session ${session.id}, not ${String(req.session_id)}`);
      state.closed = false;
      const env = session.env(0);
      return {
        ok: true,
        type: 'hello',
        instance_id: instanceId,
        obs_dim: env.obsDim,
        act_dim: env.actDim,
        envs: n,
        controller: session.controller,
        robot: session.robot.name,
      };
    }
    case 'reset': {
      const obs: number[][] = [];
      for (let i = 0; i < n; i++) {
        obs.push(session.env(i).reset());
        session.returns[i] = 0;
      }
      return { ok: true, type: 'reset', obs };
    }
    case 'step': {
      if (session.isHumanControlled()) {
        stats.aiStepsRefused++;
        return fail('HUMAN_CONTROL', `${session.controller} controls this simulator`, session.controller);
      }
      const actDim = session.env(0).actDim;
      const actions: unknown = req.actions;
      if (!Array.isArray(actions) || actions.length !== n || !actions.every((a) => isNumberArray(a, actDim))) {
        return fail('BAD_REQUEST', `actions must be ${n} arrays of ${actDim} finite numbers`);
      }
      const obs: number[][] = [];
      const rewards: number[] = [];
      const dones: boolean[] = [];
      const episodeReturns: (number | null)[] = [];
      for (let i = 0; i < n; i++) {
        const env = session.env(i);
        if (env.done) env.reset();
        const r = env.step(actions[i] as number[]);
        const ret = (session.returns[i] ?? 0) + r.reward;
        rewards.push(r.reward);
        dones.push(r.done);
        if (r.done) {
          episodeReturns.push(ret);
          session.returns[i] = 0;
          obs.push(env.reset());
        } else {
          episodeReturns.push(null);
          session.returns[i] = ret;
          obs.push(r.obs);
        }
      }
      stats.aiStepsApplied++;
      session.countSteps(n);
      return { ok: true, type: 'step', obs, rewards, dones, episode_returns: episodeReturns };
    }
    case 'demos': {
      const max = req.max;
      if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 0)) {
        return fail('BAD_REQUEST', 'max must be a non-negative integer');
      }
      const { transitions, remaining } = session.takeDemos(max);
      return { ok: true, type: 'demos', controller: session.controller, transitions, remaining };
    }
    case 'close':
      state.closed = true;
      return { ok: true, type: 'close' };
    default:
      return fail('BAD_REQUEST', `unknown request type ${JSON.stringify((req as { type: unknown }).type)}`);
  }
}
