/**
 * The public API on the HTTP port as Connect (JSON or binary) and gRPC-Web, for browsers and curl,
 * through @connectrpc/connect-node. The handlers are the very ones the gRPC port serves: a small
 * adapter turns our `ServiceHandlers` (unary: (req, ctx) => response; server streaming:
 * (req, stream{send, drained}, ctx) => Promise<void>) into a Connect `ServiceImpl` (async generators
 * for streams). Errors keep their code and details (google.rpc.ErrorInfo, BadRequest, ...).
 *
 * `createHttpExtras` is what Neuro's HTTP server plugs into its `extra` hook: this API plus the
 * dashboard's static bundle (./dashboard.ts).
 */
import type http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { create, type DescMethod, type DescService } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { Code, ConnectError, createContextKey, createContextValues, type ConnectRouter, type HandlerContext } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { NeuroError } from '../core/errors.js';
import { BadRequestSchema, ErrorInfoSchema, QuotaFailureSchema, ResourceInfoSchema } from '../gen/google/rpc/error_details_pb.js';
import { NeuroOrchestratorService } from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import type { CallContext, CallObserver, ServerStream, ServiceHandlers } from '../rpc/grpc-adapter.js';
import { ERROR_DOMAIN, grpcCode } from '../rpc/status.js';
import { createDashboardHandler, defaultDashboardDir } from './dashboard.js';

type Methods<S> = S extends GenService<infer T extends GenServiceMethods> ? T : never;
export type OrchestratorHandlers = ServiceHandlers<Methods<typeof NeuroOrchestratorService>>;

/** Messages a stream may hold for a slow client before it is ended (it reconnects and gets a fresh snapshot). */
const MAX_QUEUED = 512;
/** `drained()` waits while more than this many messages are queued. */
const DRAIN_BELOW = 16;

const PEER = createContextKey<string>('', { description: 'remote address' });

/** A NeuroError (or anything thrown) as a ConnectError with the same code and google.rpc details. */
export function toConnectError(e: unknown): ConnectError {
  if (e instanceof ConnectError) return e;
  const err = NeuroError.from(e);
  const details: ConstructorParameters<typeof ConnectError>[3] = [
    { desc: ErrorInfoSchema, value: { reason: err.reason, domain: ERROR_DOMAIN, metadata: err.details.metadata ?? {} } },
  ];
  if (err.details.fieldViolations?.length) details.push({ desc: BadRequestSchema, value: { fieldViolations: err.details.fieldViolations } });
  if (err.details.quotaViolations?.length) details.push({ desc: QuotaFailureSchema, value: { violations: err.details.quotaViolations } });
  if (err.details.resource) {
    const r = err.details.resource;
    details.push({ desc: ResourceInfoSchema, value: { resourceType: r.type, resourceName: r.name, description: r.description ?? '' } });
  }
  // Connect's codes are gRPC's numbers.
  return new ConnectError(err.message, grpcCode(err.code) as number as Code, undefined, details, err);
}

function metadataOf(headers: Headers): grpc.Metadata {
  const md = new grpc.Metadata();
  headers.forEach((value, key) => {
    if (key.endsWith('-bin')) return;
    try {
      md.add(key, value);
    } catch {
      // A header grpc-js refuses as metadata is of no use to a handler.
    }
  });
  return md;
}

/** Our CallContext over a Connect HandlerContext; `cancel` is for the adapter's own reasons (slow client, generator closed). */
function callContext(context: HandlerContext): { ctx: CallContext; cancel: () => void } {
  const ac = new AbortController();
  const cancel = () => ac.abort();
  if (context.signal.aborted) cancel();
  else context.signal.addEventListener('abort', cancel, { once: true });
  let metadata: grpc.Metadata | undefined;
  return {
    cancel,
    ctx: {
      get metadata() {
        return (metadata ??= metadataOf(context.requestHeader));
      },
      get peer() {
        return context.values.get(PEER) || 'unknown';
      },
      cancelled: () => ac.signal.aborted,
      onCancel(cb) {
        if (ac.signal.aborted) cb();
        else ac.signal.addEventListener('abort', () => cb(), { once: true });
      },
    },
  };
}

export interface ConnectImplOptions {
  /** Observes every finished call (the same metrics as the gRPC port). */
  observe?: CallObserver;
  /** Runs before every handler (authentication); throws to refuse the call. */
  gate?: (context: HandlerContext) => void;
}

type AnyFn = (...a: unknown[]) => unknown;
type Impl = (req: unknown, context: HandlerContext) => unknown;

/**
 * A Connect ServiceImpl of `service` from our typed handlers: unary handlers are called as they are,
 * server-streaming ones get a `stream` whose messages an async generator yields, with backpressure.
 */
export function toConnectImpl<T extends GenServiceMethods>(
  service: GenService<T>,
  handlers: ServiceHandlers<T>,
  options: ConnectImplOptions = {},
): Record<string, Impl> {
  const desc = service as unknown as DescService;
  const impl: Record<string, Impl> = {};
  for (const m of desc.methods) {
    const h = (handlers as Record<string, unknown>)[m.localName];
    if (typeof h !== 'function') throw new Error(`no handler for ${desc.typeName}.${m.name}`);
    if (m.methodKind === 'unary') impl[m.localName] = unary(m, h as AnyFn, options);
    else if (m.methodKind === 'server_streaming') impl[m.localName] = serverStreaming(m, h as AnyFn, options);
    else throw new Error(`${m.methodKind} methods are not served over Connect`);
  }
  return impl;
}

function finish(options: ConnectImplOptions, m: DescMethod, start: bigint, code: number, err?: NeuroError): void {
  options.observe?.(m, code as grpc.status, Number(process.hrtime.bigint() - start) / 1e9, err);
}

function unary(m: DescMethod, h: AnyFn, options: ConnectImplOptions): Impl {
  return async (req: unknown, context: HandlerContext) => {
    const start = process.hrtime.bigint();
    const { ctx } = callContext(context);
    try {
      options.gate?.(context);
      const res = await h(req, ctx);
      finish(options, m, start, 0);
      return res;
    } catch (e) {
      const ce = toConnectError(e);
      finish(options, m, start, ce.code, NeuroError.from(e));
      throw ce;
    }
  };
}

function serverStreaming(m: DescMethod, h: AnyFn, options: ConnectImplOptions): Impl {
  const output = m.output;
  const toMessage = (o: unknown) => (o && (o as { $typeName?: string }).$typeName === output.typeName ? o : create(output, o as never));
  return async function* (req: unknown, context: HandlerContext) {
    const start = process.hrtime.bigint();
    try {
      options.gate?.(context);
    } catch (e) {
      const ce = toConnectError(e);
      finish(options, m, start, ce.code, NeuroError.from(e));
      throw ce;
    }
    const { ctx, cancel } = callContext(context);
    const queue: unknown[] = [];
    let wake: (() => void) | undefined;
    let drainers: Array<() => void> = [];
    let done = false;
    let failure: unknown;
    let overflow = false;
    const poke = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const releaseDrainers = () => {
      const d = drainers;
      drainers = [];
      for (const r of d) r();
    };
    const stream: ServerStream<unknown> = {
      send(msg) {
        if (ctx.cancelled() || done) return;
        if (queue.length >= MAX_QUEUED) {
          overflow = true;
          cancel();
          poke();
          return;
        }
        queue.push(toMessage(msg));
        poke();
      },
      drained() {
        if (queue.length <= DRAIN_BELOW || ctx.cancelled()) return Promise.resolve();
        return new Promise<void>((resolve) => drainers.push(resolve));
      },
    };
    ctx.onCancel(() => {
      releaseDrainers();
      poke();
    });
    let code = 0;
    let err: NeuroError | undefined;
    try {
      Promise.resolve()
        .then(() => h(req, stream, ctx))
        .then(
          () => {
            done = true;
            poke();
          },
          (e: unknown) => {
            failure = e;
            done = true;
            poke();
          },
        );
      for (;;) {
        while (queue.length && !overflow) {
          const msg = queue.shift();
          if (queue.length <= DRAIN_BELOW) releaseDrainers();
          yield msg;
        }
        if (overflow) {
          throw new NeuroError('RESOURCE_EXHAUSTED', 'CLIENT_TOO_SLOW', `the client did not read ${MAX_QUEUED} messages in time; reconnect for a fresh snapshot`);
        }
        if (done) break;
        if (ctx.cancelled()) {
          code = 1;
          return;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
      if (failure !== undefined) throw failure;
    } catch (e) {
      const ce = toConnectError(e);
      code = ce.code;
      err = NeuroError.from(e);
      throw ce;
    } finally {
      // Normal end, error, or the client went away: the handler must stop either way.
      cancel();
      releaseDrainers();
      finish(options, m, start, code || (context.signal.aborted && !done ? 1 : 0), err);
    }
  };
}

/** Refuses calls without `authorization: Bearer <token>` (when a token is configured), before the body is read. */
export function bearerGate(token: string): ((context: HandlerContext) => void) | undefined {
  if (!token) return undefined;
  const want = Buffer.from(`Bearer ${token}`);
  return (context) => {
    const got = context.requestHeader.get('authorization');
    const info = (reason: string) => [{ desc: ErrorInfoSchema, value: { reason, domain: ERROR_DOMAIN } }];
    if (got === null) throw new ConnectError('caller calls need "authorization: Bearer <token>"', Code.Unauthenticated, undefined, info('TOKEN_MISSING'));
    const b = Buffer.from(got);
    if (b.length !== want.length || !timingSafeEqual(b, want)) throw new ConnectError('the caller token is not valid', Code.Unauthenticated, undefined, info('TOKEN_INVALID'));
  };
}

export interface ConnectHandlerOptions extends ConnectImplOptions {
  handlers: OrchestratorHandlers;
  /** Bearer token callers must send; empty = none required. */
  callerToken: string;
  /** Largest request message accepted, bytes (default 4 MiB, as on the gRPC port). */
  readMaxBytes?: number;
  /** Aborted when Neuro shuts down: open streams end. */
  shutdown?: AbortSignal;
}

/** Serves NeuroOrchestratorService as Connect and gRPC-Web at `/neuro.v1.NeuroOrchestratorService/*`; other paths are not handled (false). */
export function createConnectHandler(opts: ConnectHandlerOptions): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean> {
  const impl = toConnectImpl(NeuroOrchestratorService, opts.handlers, { ...opts, gate: bearerGate(opts.callerToken) });
  const prefix = `/${NeuroOrchestratorService.typeName}/`;
  const adapter = connectNodeAdapter({
    routes: (router: ConnectRouter) => {
      router.service(NeuroOrchestratorService, impl as never);
    },
    // gRPC proper needs HTTP/2 and is served on the gRPC port.
    grpc: false,
    grpcWeb: true,
    connect: true,
    readMaxBytes: opts.readMaxBytes ?? 4 * 1024 * 1024,
    shutdownSignal: opts.shutdown,
    contextValues: (req) => createContextValues().set(PEER, `${req.socket?.remoteAddress ?? ''}:${req.socket?.remotePort ?? ''}`),
  });
  return async (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (!path.startsWith(prefix)) return false;
    // The adapter answers every outcome itself, errors included.
    adapter(req, res);
    return true;
  };
}

export interface HttpExtrasOptions extends ConnectHandlerOptions {
  /** The built dashboard (`npm run build`); default `dist/dashboard` of this checkout. */
  staticDir?: string;
}

/**
 * What Neuro's HTTP port adds to metrics and health: the API as Connect/gRPC-Web, and the dashboard at `/`.
 * Returns true when it handled the request.
 */
export function createHttpExtras(opts: HttpExtrasOptions): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean> {
  const api = createConnectHandler(opts);
  const dashboard = createDashboardHandler({ dir: opts.staticDir ?? defaultDashboardDir() });
  return async (req, res) => (await api(req, res)) || (await dashboard(req, res));
}
