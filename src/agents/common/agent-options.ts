/**
 * What every reference agent is told at start, whatever kind of instance it hosts.
 */
import type { Logger } from 'pino';

export interface AgentOptions {
  /** Neuro's gRPC address (host:port), where instances register and heartbeat. */
  neuroAddress: string;
  /** The instance token, when Neuro requires one. */
  token?: string;
  /** Virtual instances to host. */
  count: number;
  /** Instance ids are `${idPrefix}${index}`; each kind of agent has its own default. */
  idPrefix?: string;
  /** Index of the first instance. Default 1. */
  startIndex?: number;
  /** Address Neuro and clients use to reach this agent (also what its servers bind when it is an IP). Default "127.0.0.1". */
  host?: string;
  /** Topology host name reported to Neuro. Default `host`. */
  hostLabel?: string;
  /** Default "zone-a". */
  zone?: string;
  /** 0 picks a free port. Default 0. */
  grpcPort?: number;
  /** Memory of each instance, GB; each kind of agent has its own default. */
  memoryGb?: number;
  /** GPUs each instance advertises; each kind of agent has its own default. */
  gpusPerInstance?: number;
  labels?: Record<string, string>;
  /** Overrides the heartbeat interval Neuro asks for. */
  heartbeatIntervalMs?: number;
  logger?: Logger;
  /** Register and heartbeat with Neuro. Default true. */
  registerWithNeuro?: boolean;
}
