/**
 * Neuro's configuration: defaults, then a JSON config file, then NEURO_* environment variables, then
 * command-line flags — each overriding the one before. Every setting is named in the README.
 */
import { readFileSync } from 'node:fs';
import type { InstanceKind } from '../core/model.js';

export interface StaticInstance {
  id: string;
  kind: InstanceKind;
  address: string;
  host?: string;
  zone?: string;
  gpus?: string[];
  memoryGb?: number;
  labels?: Record<string, string>;
  controlWsBase?: string;
  zmqHost?: string;
  zmqPortMin?: number;
  zmqPortMax?: number;
}

export interface NeuroConfig {
  grpc: {
    host: string;
    port: number;
    /** Largest message accepted, bytes. */
    maxMessageBytes: number;
    /** Largest message sent, bytes: a pool status of 100,000 instances is about 7 MB. */
    maxSendMessageBytes: number;
    maxConcurrentStreams: number;
    keepaliveTimeMs: number;
    keepaliveTimeoutMs: number;
    /** PEM files; both set = TLS on the gRPC port. */
    tlsCert: string;
    tlsKey: string;
  };
  http: { host: string; port: number };
  /** Where the SQLite store lives (neuro.db inside). */
  dataDir: string;
  /** NORMAL survives a crash of Neuro; FULL also a power loss. */
  storeSync: 'NORMAL' | 'FULL';
  /** Bearer token callers (Nexus, CLI, dashboard) must send; empty = none required. */
  callerToken: string;
  /** Bearer token instances must send to the registry; empty = none required. */
  instanceToken: string;
  heartbeatIntervalMs: number;
  heartbeatGraceMs: number;
  schedulerPolicy: 'spread' | 'pack';
  schedulerCandidateLimit: number;
  /** `{session_id}` and `{instance_id}` are replaced. */
  webrtcSignalingUrl: string;
  /** Deadline of each call Neuro makes to an instance. */
  instanceCallTimeoutMs: number;
  /** How instances reach Neuro's gRPC port (for progress reports); default 127.0.0.1:<grpc port>. */
  advertiseAddress: string;
  /** Ended sessions are kept this long. */
  retentionHours: number;
  logLevel: string;
  staticInstances: StaticInstance[];
}

export const DEFAULT_CONFIG: NeuroConfig = {
  grpc: {
    host: '0.0.0.0',
    port: 50051,
    maxMessageBytes: 4 * 1024 * 1024,
    maxSendMessageBytes: 64 * 1024 * 1024,
    maxConcurrentStreams: 1000,
    keepaliveTimeMs: 30_000,
    keepaliveTimeoutMs: 10_000,
    tlsCert: '',
    tlsKey: '',
  },
  http: { host: '0.0.0.0', port: 8090 },
  dataDir: './data',
  storeSync: 'NORMAL',
  callerToken: '',
  instanceToken: '',
  heartbeatIntervalMs: 1000,
  heartbeatGraceMs: 3000,
  schedulerPolicy: 'spread',
  schedulerCandidateLimit: 8,
  webrtcSignalingUrl: 'ws://nexus:8080/api/webrtc/signaling/isaac-sim/{session_id}',
  instanceCallTimeoutMs: 5000,
  advertiseAddress: '',
  retentionHours: 24,
  logLevel: 'info',
  staticInstances: [],
};

/** Environment variable → setting. */
const ENV: Record<string, (c: NeuroConfig, v: string) => void> = {
  NEURO_GRPC_HOST: (c, v) => (c.grpc.host = v),
  NEURO_GRPC_PORT: (c, v) => (c.grpc.port = int('NEURO_GRPC_PORT', v)),
  NEURO_HTTP_HOST: (c, v) => (c.http.host = v),
  NEURO_HTTP_PORT: (c, v) => (c.http.port = int('NEURO_HTTP_PORT', v)),
  NEURO_DATA_DIR: (c, v) => (c.dataDir = v),
  NEURO_STORE_SYNC: (c, v) => (c.storeSync = v === 'FULL' ? 'FULL' : 'NORMAL'),
  NEURO_TOKEN: (c, v) => (c.callerToken = v),
  NEURO_INSTANCE_TOKEN: (c, v) => (c.instanceToken = v),
  NEURO_TLS_CERT: (c, v) => (c.grpc.tlsCert = v),
  NEURO_TLS_KEY: (c, v) => (c.grpc.tlsKey = v),
  NEURO_MAX_MESSAGE_BYTES: (c, v) => (c.grpc.maxMessageBytes = int('NEURO_MAX_MESSAGE_BYTES', v)),
  NEURO_HEARTBEAT_INTERVAL_MS: (c, v) => (c.heartbeatIntervalMs = int('NEURO_HEARTBEAT_INTERVAL_MS', v)),
  NEURO_HEARTBEAT_GRACE_MS: (c, v) => (c.heartbeatGraceMs = int('NEURO_HEARTBEAT_GRACE_MS', v)),
  NEURO_SCHEDULER_POLICY: (c, v) => (c.schedulerPolicy = v === 'pack' ? 'pack' : 'spread'),
  NEURO_WEBRTC_SIGNALING_URL: (c, v) => (c.webrtcSignalingUrl = v),
  NEURO_INSTANCE_CALL_TIMEOUT_MS: (c, v) => (c.instanceCallTimeoutMs = int('NEURO_INSTANCE_CALL_TIMEOUT_MS', v)),
  NEURO_ADVERTISE_ADDRESS: (c, v) => (c.advertiseAddress = v),
  NEURO_RETENTION_HOURS: (c, v) => (c.retentionHours = Number(v)),
  NEURO_LOG_LEVEL: (c, v) => (c.logLevel = v),
};

function int(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

function merge<T>(base: T, over: unknown): T {
  if (!over || typeof over !== 'object' || Array.isArray(over)) return (over ?? base) as T;
  const out = { ...(base as object) } as Record<string, unknown>;
  for (const [k, v] of Object.entries(over as Record<string, unknown>)) {
    if (!(k in out)) throw new Error(`unknown setting ${JSON.stringify(k)} in config file`);
    const b = out[k];
    out[k] = b && typeof b === 'object' && !Array.isArray(b) ? merge(b, v) : v;
  }
  return out as T;
}

/** Builds the configuration: defaults ← file ← environment ← overrides (flags). */
export type ConfigOverrides = Partial<Omit<NeuroConfig, 'grpc' | 'http'>> & { grpc?: Partial<NeuroConfig['grpc']>; http?: Partial<NeuroConfig['http']> };

export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; overrides?: ConfigOverrides } = {}): NeuroConfig {
  let c: NeuroConfig = structuredClone(DEFAULT_CONFIG);
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.NEURO_CONFIG;
  if (file) c = merge(c, JSON.parse(readFileSync(file, 'utf8')));
  for (const [k, set] of Object.entries(ENV)) {
    const v = env[k];
    if (v !== undefined && v !== '') set(c, v);
  }
  if (opts.overrides) c = merge(c, opts.overrides);
  if (!c.advertiseAddress) c.advertiseAddress = `127.0.0.1:${c.grpc.port}`;
  if (!!c.grpc.tlsCert !== !!c.grpc.tlsKey) throw new Error('TLS needs both grpc.tlsCert and grpc.tlsKey');
  return c;
}
