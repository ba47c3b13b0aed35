/**
 * What every page shares: the live pool (one WatchResourcePool stream for the whole app), the link
 * state, and navigation.
 */
import type { ApplyResult, PoolModel } from './pool-model.js';
import type { LinkState } from './api.js';

export interface App {
  readonly pool: PoolModel;
  readonly link: LinkState;
  /** Called after every pool message; returns the unsubscribe function. */
  onPool(cb: (r: ApplyResult) => void): () => void;
  navigate(hash: string): void;
  /** Opens the create-session dialog. */
  openCreate(): void;
}

/** A page: its element and what to do when the user leaves it. */
export interface Page {
  el: HTMLElement;
  dispose(): void;
}

export const SESSION_STATE_NAMES = ['PENDING', 'INITIALIZING', 'READY', 'RUNNING', 'STOPPING', 'TERMINATED', 'COMPLETED', 'FAILED'] as const;
export const TERMINAL = new Set(['TERMINATED', 'COMPLETED', 'FAILED']);
