/**
 * The dashboard's client of NeuroOrchestratorService: Connect JSON over the page's own origin,
 * `authorization: Bearer <token>` when the operator gave one, and long-lived streams that reconnect.
 */
import { Code, ConnectError, createClient, type Client, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-web';
import { BadRequestSchema, ErrorInfoSchema } from '../gen/google/rpc/error_details_pb.js';
import { NeuroOrchestratorService } from '../gen/neuro/v1/neuro_orchestrator_pb.js';

export type Api = Client<typeof NeuroOrchestratorService>;

const TOKEN_KEY = 'neuro.token';
const USER_KEY = 'neuro.user';

let token = sessionStorage.getItem(TOKEN_KEY) ?? '';

export function getToken(): string {
  return token;
}

export function setToken(t: string): void {
  token = t;
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Fired on `window` when a call is refused for want of a (valid) token. */
export const UNAUTHENTICATED_EVENT = 'neuro:unauthenticated';

const auth: Interceptor = (next) => async (req) => {
  if (token) req.header.set('authorization', `Bearer ${token}`);
  try {
    return await next(req);
  } catch (e) {
    if (e instanceof ConnectError && e.code === Code.Unauthenticated) window.dispatchEvent(new Event(UNAUTHENTICATED_EVENT));
    throw e;
  }
};

export const api: Api = createClient(NeuroOrchestratorService, createConnectTransport({ baseUrl: location.origin, interceptors: [auth] }));

const USER_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/** The operator's name, used for TakeControl and on the control WebSocket. */
export function getUser(): string {
  return localStorage.getItem(USER_KEY) || 'operator';
}

export function setUser(u: string): boolean {
  const v = u.trim();
  if (!USER_RE.test(v) || v === 'ai') return false;
  localStorage.setItem(USER_KEY, v);
  return true;
}

export function validUser(u: string): boolean {
  return USER_RE.test(u) && u !== 'ai';
}

export interface ErrorView {
  code: string;
  reason: string;
  message: string;
  /** field path → what is wrong with it */
  fields: Map<string, string>;
}

/** What an operator should read about a failed call. */
export function describeError(e: unknown): ErrorView {
  const err = ConnectError.from(e);
  const fields = new Map<string, string>();
  for (const br of err.findDetails(BadRequestSchema)) for (const v of br.fieldViolations) fields.set(v.field, v.description);
  const info = err.findDetails(ErrorInfoSchema)[0];
  return { code: Code[err.code] ?? String(err.code), reason: info?.reason ?? '', message: err.rawMessage || err.message, fields };
}

export function errorText(e: unknown): string {
  const v = describeError(e);
  return `${v.message}${v.reason && v.reason !== v.message ? ` (${v.reason})` : ''}`;
}

export function isCode(e: unknown, code: Code): boolean {
  return e instanceof ConnectError && e.code === code;
}

export type LinkState = 'connecting' | 'up' | 'down';

export interface WatchOptions<T> {
  open: (signal: AbortSignal) => AsyncIterable<T>;
  onMessage: (msg: T) => void;
  onState?: (state: LinkState, err?: unknown) => void;
  /** Whether the stream should be opened again after it ended normally (default true). */
  reopenOnEnd?: boolean;
  /** Stop for good on these codes (default: NotFound, InvalidArgument). */
  fatal?: Code[];
}

/** Keeps a server stream open, reconnecting with backoff; returns the function that stops it. */
export function watch<T>(o: WatchOptions<T>): () => void {
  const ac = new AbortController();
  const fatal = new Set(o.fatal ?? [Code.NotFound, Code.InvalidArgument]);
  void (async () => {
    let delay = 500;
    while (!ac.signal.aborted) {
      o.onState?.('connecting');
      let got = false;
      try {
        for await (const msg of o.open(ac.signal)) {
          if (!got) {
            got = true;
            delay = 500;
            o.onState?.('up');
          }
          o.onMessage(msg);
        }
        if (ac.signal.aborted) return;
        if (o.reopenOnEnd === false) {
          o.onState?.('down');
          return;
        }
      } catch (e) {
        if (ac.signal.aborted) return;
        o.onState?.('down', e);
        if (e instanceof ConnectError && (fatal.has(e.code) || e.code === Code.Unauthenticated)) return;
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 8000);
    }
  })();
  return () => ac.abort();
}
