/**
 * The wire protocol of a training channel: the trainer's ZeroMQ REQ socket talks to a simulator's
 * REP env server (bound at the channel's `tcp://host:port`). One JSON object per frame, UTF-8.
 * Every request carries the allocation epoch; a REP server answers a stale one with
 * `{ ok: false, error: 'STALE_EPOCH' }` and does nothing else.
 *
 * A simulator steps `envs` copies of the scene per request (parallel_envs / simulators).
 * In a HYBRID session a human may hold the simulator: then a `step` is refused with
 * `error: 'HUMAN_CONTROL'` (the AI's actions are never applied), and the human's transitions are
 * collected as demonstrations that the trainer fetches with `demos`.
 */

export type EnvRequest =
  | { type: 'hello'; session_id: string; epoch: string }
  | { type: 'reset'; epoch: string }
  | { type: 'step'; epoch: string; actions: number[][] }
  | { type: 'demos'; epoch: string; max?: number }
  | { type: 'close'; epoch: string };

/** One recorded transition of a human driving the env. */
export interface Transition {
  obs: number[];
  action: number[];
  reward: number;
  done: boolean;
  next_obs: number[];
}

export type EnvReply =
  | { ok: false; error: 'STALE_EPOCH' | 'HUMAN_CONTROL' | 'BAD_REQUEST' | 'CLOSED'; message: string; controller?: string }
  | { ok: true; type: 'hello'; instance_id: string; obs_dim: number; act_dim: number; envs: number; controller: string; robot: string }
  | { ok: true; type: 'reset'; obs: number[][] }
  | {
      ok: true;
      type: 'step';
      obs: number[][];
      rewards: number[];
      /** An env whose episode ended was reset: `obs` is already the new episode's first observation. */
      dones: boolean[];
      /** The return of each episode that ended in this step, for the envs where dones[i]. */
      episode_returns: (number | null)[];
    }
  | { ok: true; type: 'demos'; controller: string; transitions: Transition[]; remaining: number }
  | { ok: true; type: 'close' };

export function encode(msg: EnvRequest | EnvReply): Buffer {
  return Buffer.from(JSON.stringify(msg));
}

export function decode<T extends EnvRequest | EnvReply>(buf: Buffer | Uint8Array): T {
  return JSON.parse(Buffer.from(buf).toString('utf8')) as T;
}
