// The SQLite store: one better-sqlite3 file, spindle.db, in the data dir.
//
// Opening is careful never to modify a file it should not:
//   1. the data dir is created/probed, then spindle.lock is taken (one
//      Spindle per data dir);
//   2. an existing spindle.db is checked — header bytes first, then SQLite
//      reads a scratch COPY (with its -wal, if any) in a temp dir for
//      application_id, user_version and quick_check. Even a read-only SQLite
//      connection to a WAL file creates -wal/-shm next to it, so the original
//      is only read byte-wise by copyFile;
//   3. only a file that passed is opened read-write (WAL) and migrated.
import Database from 'better-sqlite3';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  linkSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDataDir } from './data-dir';
import {
  StoreError,
  corruptError,
  errnoCode,
  ioError,
  lockedByPidError,
  lockedByProgramError,
  migrationFailedError,
  newerVersionError,
  notADatabaseError,
} from './errors';
import { SPINDLE_APPLICATION_ID, assertMigrationsValid, migrations as shippedMigrations, type Migration } from './migrations';
import { createAccessRequestsRepo, type AccessRequestsRepo } from './repos/access-requests';
import { createAclOps, createAclsRepo, type AclsRepo } from './repos/acls';
import { createBackstoreOps, createBackstoresRepo, type BackstoresRepo } from './repos/backstores';
import { createRepoContext, type RepoContext } from './repos/common';
import { createLunOps, createLunsRepo, type LunsRepo } from './repos/luns';
import { createPortalOps, createPortalsRepo, type PortalsRepo } from './repos/portals';
import { createRemotesRepo, type RemotesRepo } from './repos/remotes';
import { createStatsRepo, type StatsRepo } from './repos/stats';
import { createTargetLookup } from './repos/target-lookup';
import { createTargetsRepo, type TargetsRepo } from './repos/targets';
import { isSecretRef, openFileSecretStore, type FileSecretStore, type SecretCipher } from './secrets';

export const DB_FILE_NAME = 'spindle.db';
export const LOCK_FILE_NAME = 'spindle.lock';
const BUSY_TIMEOUT_MS = 5000;
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

// ---- public types ---------------------------------------------------------

export type EventLevel = 'info' | 'warn' | 'error';

export interface EventRecord {
  id: number;
  /** ISO 8601, UTC. */
  at: string;
  level: EventLevel;
  source: string;
  message: string;
}

export interface SettingsRepo {
  /** Every stored setting, JSON-decoded. */
  getAll(): Record<string, unknown>;
  get(key: string): unknown | undefined;
  /** Upserts all entries in one transaction; values must be JSON-serialisable. */
  setMany(entries: Record<string, unknown>): void;
}

export interface EventLogRepo {
  append(level: EventLevel, source: string, message: string): EventRecord;
  /** Up to `limit` events, newest first. */
  recent(limit: number): EventRecord[];
}

export interface Store {
  /** Absolute path of spindle.db. */
  readonly path: string;
  readonly schemaVersion: number;
  readonly settings: SettingsRepo;
  readonly events: EventLogRepo;
  // The repositories below need schema 2; each is prepared on first use.
  readonly backstores: BackstoresRepo;
  readonly targets: TargetsRepo;
  readonly luns: LunsRepo;
  readonly acls: AclsRepo;
  readonly portals: PortalsRepo;
  readonly accessRequests: AccessRequestsRepo;
  readonly remotes: RemotesRepo;
  readonly stats: StatsRepo;
  /** Where CHAP secrets are kept (never the secrets themselves). */
  readonly secrets: { readonly path: string; readonly encrypted: boolean };
  /**
   * Runs `fn` in one transaction (nested calls become savepoints); `fn` must
   * be synchronous. Repository calls inside it join it, so several changes
   * commit together or not at all.
   */
  transaction<T>(fn: () => T): T;
  /** Closes the database and releases the data-dir lock. Idempotent. */
  close(): void;
}

export interface OpenStoreOptions {
  dataDir: string;
  /** better-sqlite3 `nativeBinding`: Electron passes the addon built for its ABI. */
  nativeBinding?: string;
  /** Tests only: replaces the shipped migration list. */
  migrations?: readonly Migration[];
  /**
   * Encrypts CHAP secrets at rest (the desktop shell passes one built on
   * Electron's safeStorage). Without it secrets.json holds them plain, mode 0600.
   */
  secretCipher?: SecretCipher;
  /** Tests only: called with the raw connection once the store is open (crash tests hook into it). */
  onConnection?: (db: Database.Database) => void;
}

// ---- openStore ------------------------------------------------------------

/** Opens (creating or upgrading) spindle.db in `dataDir`. Throws StoreError. */
export function openStore(options: OpenStoreOptions): Store {
  const list = options.migrations ?? shippedMigrations;
  assertMigrationsValid(list);
  const dataDir = ensureDataDir(options.dataDir);
  const file = join(dataDir, DB_FILE_NAME);
  const lock = acquireLock(dataDir);
  let db: Database.Database | undefined;
  try {
    checkExistingFile(file, list.length, options.nativeBinding);
    const secrets = openFileSecretStore(dataDir, options.secretCipher ? { cipher: options.secretCipher } : {});
    db = openReadWrite(file, options.nativeBinding);
    const schemaVersion = migrate(db, file, list);
    db.pragma('foreign_keys = ON');
    if (schemaVersion >= 2) dropUnreferencedSecrets(db, secrets);
    const store = createStore(db, file, schemaVersion, secrets, () => releaseLock(lock));
    options.onConnection?.(db);
    return store;
  } catch (err) {
    db?.close();
    releaseLock(lock);
    throw err;
  }
}

// ---- checking an existing file without touching it ------------------------

function checkExistingFile(file: string, known: number, nativeBinding: string | undefined): void {
  const stats = statIfExists(file);
  if (stats === undefined) {
    refuseOrphanWal(file);
    return;
  }
  if (!stats.isFile()) throw notADatabaseError(file, 'it is not a regular file');
  // A 0-byte file is a valid empty database to SQLite (and is what a crash
  // during the very first write in WAL mode leaves, next to a -wal file).
  if (stats.size > 0 && !hasSqliteHeader(file)) {
    throw notADatabaseError(file, "it does not start with the header 'SQLite format 3'");
  }
  withScratchCopy(file, (copy) => checkCopy(copy, file, known, nativeBinding));
}

/** A -wal without its database would be replayed into a new, empty one. */
function refuseOrphanWal(file: string): void {
  const wal = `${file}-wal`;
  if ((statIfExists(wal)?.size ?? 0) > 0) {
    throw corruptError(wal, `${DB_FILE_NAME}-wal exists but ${DB_FILE_NAME} does not; move the -wal file away`);
  }
}

function hasSqliteHeader(file: string): boolean {
  const head = Buffer.alloc(SQLITE_MAGIC.length);
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const n = readSync(fd, head, 0, head.length, 0);
    return n === head.length && head.equals(SQLITE_MAGIC);
  } catch (err) {
    throw ioError(file, err);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function withScratchCopy(file: string, fn: (copy: string) => void): void {
  let dir: string;
  try {
    dir = mkdtempSync(join(tmpdir(), 'spindle-check-'));
  } catch (err) {
    throw ioError(tmpdir(), err);
  }
  try {
    const copy = join(dir, DB_FILE_NAME);
    copyFileSync(file, copy);
    chmodSync(copy, 0o600); // a read-only original must not make the copy read-only
    const wal = `${file}-wal`;
    if ((statIfExists(wal)?.size ?? 0) > 0) copyFileSync(wal, `${copy}-wal`);
    fn(copy);
  } catch (err) {
    throw classifySqliteFailure(err, file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function checkCopy(copy: string, file: string, known: number, nativeBinding: string | undefined): void {
  const db = new Database(copy, { fileMustExist: true, nativeBinding });
  try {
    const appId = intPragma(db, 'application_id');
    const version = intPragma(db, 'user_version');
    if (!isSpindleDatabase(db, appId, version)) {
      throw notADatabaseError(file, 'it is a SQLite database, but not one Spindle created');
    }
    if (version > known) throw newerVersionError(file, version, known);
    const problems = db.prepare('PRAGMA quick_check').pluck().all().map(String);
    if (problems.length !== 1 || problems[0] !== 'ok') {
      throw corruptError(file, `SQLite quick_check: ${problems.slice(0, 3).join('; ')}`);
    }
  } finally {
    db.close();
  }
}

/** Ours, or empty (never migrated: e.g. migration 1 failed and rolled back). */
function isSpindleDatabase(db: Database.Database, appId: number, version: number): boolean {
  if (appId === SPINDLE_APPLICATION_ID) return true;
  if (appId !== 0 || version !== 0) return false;
  return db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get() === 0;
}

function classifySqliteFailure(err: unknown, file: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = errnoCode(err) ?? '';
  // The header matched, so "not a database" means a damaged header.
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return corruptError(file, `SQLite: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return lockedByProgramError(file, err);
  return ioError(file, err);
}

// ---- read-write open and migrations ---------------------------------------

function openReadWrite(file: string, nativeBinding: string | undefined): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(file, { nativeBinding, timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    throw ioError(file, err);
  }
  try {
    configureConnection(db, file);
    return db;
  } catch (err) {
    db.close();
    throw classifySqliteFailure(err, file);
  }
}

function configureConnection(db: Database.Database, file: string): void {
  // SQLite silently falls back to read-only when the file is write-protected.
  if (db.readonly) {
    throw new StoreError('STORE_IO', file, `Cannot write to spindle.db at ${file}: it is read-only. Fix its permissions, or use another --data DIR.`);
  }
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') {
    throw new StoreError(
      'STORE_IO',
      file,
      `Cannot use write-ahead logging for spindle.db at ${file} (journal_mode stayed ${String(mode)}); ` +
        'its file system may not support it. Use another --data DIR on a local disk.',
    );
  }
  db.pragma('synchronous = NORMAL');
}

/** Applies pending migrations, each in its own transaction; returns the resulting version. */
function migrate(db: Database.Database, file: string, list: readonly Migration[]): number {
  let current = intPragma(db, 'user_version');
  if (current > list.length) throw newerVersionError(file, current, list.length);
  // foreign_keys cannot change inside a transaction; OFF lets migrations rebuild tables.
  db.pragma('foreign_keys = OFF');
  for (const migration of list.slice(current)) {
    try {
      db.transaction(() => applyMigration(db, migration))();
    } catch (err) {
      throw migrationFailedError(file, migration, current, err);
    }
    current = migration.version;
  }
  return current;
}

function applyMigration(db: Database.Database, migration: Migration): void {
  if (typeof migration.up === 'string') db.exec(migration.up);
  else migration.up(db);
  const violations = db.prepare('PRAGMA foreign_key_check').all();
  if (violations.length > 0) throw new Error(`${violations.length} foreign key violation(s)`);
  db.pragma(`user_version = ${migration.version}`);
}

function intPragma(db: Database.Database, name: string): number {
  const value = db.pragma(name, { simple: true });
  if (typeof value !== 'number') throw new Error(`PRAGMA ${name} returned ${String(value)}`);
  return value;
}

// ---- the Store object and its repositories --------------------------------

/**
 * A crash between writing a secret and committing the row that names it (or
 * between deleting a row and its secret) leaves an unreferenced secret; drop
 * those. The reverse — a row naming a missing secret — cannot happen: secrets
 * are written before the row commits and deleted after.
 */
function dropUnreferencedSecrets(db: Database.Database, secrets: FileSecretStore): void {
  const refs = db
    .prepare(
      `SELECT chap_secret_ref FROM acls UNION SELECT mutual_secret_ref FROM acls
       UNION SELECT chap_secret_ref FROM remote_targets UNION SELECT mutual_secret_ref FROM remote_targets`,
    )
    .pluck()
    .all()
    .filter(isSecretRef);
  secrets.retainOnly(new Set(refs));
}

function createStore(db: Database.Database, file: string, schemaVersion: number, secrets: FileSecretStore, release: () => void): Store {
  let closed = false;
  const ctx: RepoContext = createRepoContext(db, secrets);
  const lazy = <T>(make: () => T): (() => T) => {
    let value: T | undefined;
    return () => (value ??= make());
  };
  const lookup = lazy(() => createTargetLookup(ctx));
  const backstoreOps = lazy(() => createBackstoreOps(ctx));
  const lunOps = lazy(() => createLunOps(ctx, backstoreOps()));
  const aclOps = lazy(() => createAclOps(ctx));
  const portalOps = lazy(() => createPortalOps(ctx));
  const backstores = lazy(() => createBackstoresRepo(ctx, backstoreOps()));
  const targets = lazy(() =>
    createTargetsRepo(ctx, lookup(), { backstores: backstoreOps(), luns: lunOps(), acls: aclOps(), portals: portalOps() }),
  );
  const luns = lazy(() => createLunsRepo(ctx, lunOps(), backstoreOps(), lookup()));
  const acls = lazy(() => createAclsRepo(ctx, aclOps(), lookup()));
  const portals = lazy(() => createPortalsRepo(ctx, portalOps(), lookup()));
  const accessRequests = lazy(() => createAccessRequestsRepo(ctx, aclOps(), lookup()));
  const remotes = lazy(() => createRemotesRepo(ctx));
  const stats = lazy(() => createStatsRepo(ctx));
  return Object.freeze({
    path: file,
    schemaVersion,
    settings: createSettingsRepo(db, file),
    events: createEventLogRepo(db),
    get backstores() {
      return backstores();
    },
    get targets() {
      return targets();
    },
    get luns() {
      return luns();
    },
    get acls() {
      return acls();
    },
    get portals() {
      return portals();
    },
    get accessRequests() {
      return accessRequests();
    },
    get remotes() {
      return remotes();
    },
    get stats() {
      return stats();
    },
    secrets: Object.freeze({ path: secrets.path, encrypted: secrets.encrypted }),
    transaction: <T>(fn: () => T): T => ctx.tx(fn),
    close(): void {
      if (closed) return;
      closed = true;
      try {
        db.close();
      } finally {
        release();
      }
    },
  });
}

function createSettingsRepo(db: Database.Database, file: string): SettingsRepo {
  const selectAll = db.prepare<[], { key: string; value: string }>('SELECT key, value FROM settings ORDER BY key');
  const selectOne = db.prepare<[string], string>('SELECT value FROM settings WHERE key = ?').pluck();
  const upsert = db.prepare<[string, string, string]>(
    `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
  );
  const upsertAll = db.transaction((rows: Array<[string, string]>, at: string) => {
    for (const [key, json] of rows) upsert.run(key, json, at);
  });
  const decode = (key: string, json: string): unknown => {
    try {
      return JSON.parse(json);
    } catch (err) {
      throw corruptError(file, `setting "${key}" is not valid JSON`, err);
    }
  };
  return {
    // fromEntries defines own properties, so a key like "__proto__" stays data.
    getAll: () => Object.fromEntries(selectAll.all().map((row) => [row.key, decode(row.key, row.value)])),
    get: (key) => {
      const json = selectOne.get(key);
      return json === undefined ? undefined : decode(key, json);
    },
    setMany: (entries) => {
      const rows = Object.entries(entries).map(([key, value]): [string, string] => [key, encodeSetting(key, value)]);
      upsertAll(rows, new Date().toISOString());
    },
  };
}

function encodeSetting(key: string, value: unknown): string {
  const json: string | undefined = JSON.stringify(value);
  if (json === undefined) throw new TypeError(`setting "${key}": ${typeof value} is not JSON-serialisable`);
  return json;
}

function createEventLogRepo(db: Database.Database): EventLogRepo {
  const insert = db.prepare<[string, EventLevel, string, string]>(
    'INSERT INTO event_log (at, level, source, message) VALUES (?, ?, ?, ?)',
  );
  const selectRecent = db.prepare<[number], EventRecord>(
    'SELECT id, at, level, source, message FROM event_log ORDER BY id DESC LIMIT ?',
  );
  return {
    append: (level, source, message) => {
      const at = new Date().toISOString();
      const { lastInsertRowid } = insert.run(at, level, source, message);
      return { id: Number(lastInsertRowid), at, level, source, message };
    },
    recent: (limit) => {
      if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
      return selectRecent.all(limit);
    },
  };
}

// ---- spindle.lock: one Spindle per data dir ------------------------------

/** Lock files this process holds; a lock naming our own pid but absent here is stale. */
const heldLocks = new Set<string>();
let exitHookInstalled = false;

function acquireLock(dataDir: string): string {
  const lockPath = join(dataDir, LOCK_FILE_NAME);
  for (let attempt = 0; attempt < 3; attempt++) {
    if (tryCreateLock(lockPath)) {
      heldLocks.add(lockPath);
      installExitHook();
      return lockPath;
    }
    const holder = readLockPid(lockPath);
    if (holder === 'gone') continue;
    if (holder !== 'garbage' && isHolderAlive(holder, lockPath)) throw lockedByPidError(dataDir, holder);
    removeFile(lockPath); // stale: its owner is dead, or it never held a pid
  }
  throw new StoreError('STORE_LOCKED', dataDir, `Another Spindle is starting on ${dataDir}. Try again, or use another --data DIR.`);
}

/**
 * Creates the lock atomically with its content: write a private temp file,
 * then hard-link it into place (link fails with EEXIST if a lock exists).
 * File systems without hard links fall back to an exclusive create.
 */
function tryCreateLock(lockPath: string): boolean {
  const content = `${process.pid}\n`;
  const temp = `${lockPath}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, content, { mode: 0o644 });
    try {
      linkSync(temp, lockPath);
      return true;
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') return false;
    }
    writeFileSync(lockPath, content, { flag: 'wx', mode: 0o644 });
    return true;
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return false;
    throw ioError(lockPath, err);
  } finally {
    removeFile(temp);
  }
}

function readLockPid(lockPath: string): number | 'gone' | 'garbage' {
  let text: string;
  try {
    text = readFileSync(lockPath, 'utf8').trim();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 'gone';
    throw ioError(lockPath, err);
  }
  const pid = /^\d+$/.test(text) ? Number(text) : NaN;
  return Number.isSafeInteger(pid) && pid > 0 ? pid : 'garbage';
}

function isHolderAlive(pid: number, lockPath: string): boolean {
  // Our pid in a lock we don't hold: left by an earlier process that had the
  // same pid (common in containers, where Spindle may always get the same one).
  if (pid === process.pid) return heldLocks.has(lockPath);
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) !== 'ESRCH'; // EPERM: alive, owned by another user
  }
}

function releaseLock(lockPath: string): void {
  if (!heldLocks.delete(lockPath)) return;
  // Remove it only if it is still ours (someone may have deleted and retaken it).
  if (readLockPid(lockPath) === process.pid) removeFile(lockPath);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const lockPath of [...heldLocks]) {
      try {
        releaseLock(lockPath);
      } catch {
        // exiting anyway; a leftover lock with a dead pid is taken over next time
      }
    }
  });
}

// ---- small fs helpers -----------------------------------------------------

function statIfExists(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw ioError(path, err);
  }
}

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw ioError(path, err);
  }
}
