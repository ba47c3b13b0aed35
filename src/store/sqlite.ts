/**
 * The embedded store: SQLite in WAL mode through better-sqlite3. The engine's changes of one command are
 * written in one transaction before anyone is answered, so what a caller was told survives a kill -9
 * (WAL with synchronous=NORMAL is durable against a process crash; FULL also against power loss, by
 * option). Rows are JSON documents of the domain model: the store knows nothing of the rules.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Changes, Snapshot } from '../core/engine.js';
import type { Instance, Session } from '../core/model.js';

export interface SqliteStoreOptions {
  /** File path, or ':memory:'. */
  path: string;
  /** 'NORMAL' survives a crash of Neuro; 'FULL' also a crash of the machine. */
  synchronous?: 'NORMAL' | 'FULL';
}

const SCHEMA_VERSION = 1;

export class SqliteStore {
  private readonly db: Database.Database;
  private readonly putInstance: Database.Statement;
  private readonly delInstance: Database.Statement;
  private readonly putSession: Database.Statement;
  private readonly delSession: Database.Statement;
  private readonly putMeta: Database.Statement;
  private readonly tx: (c: Changes) => void;

  constructor(readonly opts: SqliteStoreOptions) {
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
    this.db = new Database(opts.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous ?? 'NORMAL'}`);
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, data TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY, mode TEXT NOT NULL, state TEXT NOT NULL, created_at INTEGER NOT NULL, data TEXT NOT NULL
      );
    `);
    const version = this.db.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).get() as { value: string } | undefined;
    if (!version) this.db.prepare(`INSERT INTO meta (key, value) VALUES ('schema_version', ?)`).run(String(SCHEMA_VERSION));
    else if (Number(version.value) > SCHEMA_VERSION) throw new Error(`store ${opts.path} has schema ${version.value}, newer than this Neuro (${SCHEMA_VERSION})`);
    this.putInstance = this.db.prepare('INSERT OR REPLACE INTO instances (id, data) VALUES (?, ?)');
    this.delInstance = this.db.prepare('DELETE FROM instances WHERE id = ?');
    this.putSession = this.db.prepare('INSERT OR REPLACE INTO sessions (id, mode, state, created_at, data) VALUES (?, ?, ?, ?, ?)');
    this.delSession = this.db.prepare('DELETE FROM sessions WHERE id = ?');
    this.putMeta = this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
    this.tx = this.db.transaction((c: Changes) => {
      for (const i of c.instances) this.putInstance.run(i.spec.id, JSON.stringify(i));
      for (const id of c.removedInstances) this.delInstance.run(id);
      for (const s of c.sessions) this.putSession.run(s.id, s.mode, s.state, s.createdAt, JSON.stringify(s));
      for (const id of c.purgedSessions) this.delSession.run(id);
      if (c.epoch !== null) this.putMeta.run('epoch', String(c.epoch));
    });
  }

  /** Everything kept, in creation order. */
  load(): Snapshot {
    const epoch = this.db.prepare(`SELECT value FROM meta WHERE key = 'epoch'`).get() as { value: string } | undefined;
    const instances = (this.db.prepare('SELECT data FROM instances ORDER BY rowid').all() as { data: string }[]).map((r) => JSON.parse(r.data) as Instance);
    const sessions = (this.db.prepare('SELECT data FROM sessions ORDER BY created_at, rowid').all() as { data: string }[]).map((r) => JSON.parse(r.data) as Session);
    return { epoch: epoch ? Number(epoch.value) : 0, instances, sessions };
  }

  /** Writes one command's changes atomically. */
  commit(c: Changes): void {
    if (!c.instances.length && !c.removedInstances.length && !c.sessions.length && !c.purgedSessions.length && c.epoch === null) return;
    this.tx(c);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
