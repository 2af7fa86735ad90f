// The schema history of spindle.db. Append only: never edit or renumber a
// migration that has shipped. The store runs each pending migration in its own
// transaction together with the `PRAGMA user_version = N` bump, with
// foreign_keys OFF (so table rebuilds work) and a foreign_key_check before
// commit. A migration must not BEGIN/COMMIT itself.
import type Database from 'better-sqlite3';

export interface Migration {
  /** 1, 2, 3, ... without gaps; becomes `PRAGMA user_version`. */
  readonly version: number;
  readonly name: string;
  /** SQL (may hold several statements) or a function using the connection. */
  readonly up: string | ((db: Database.Database) => void);
}

/** `PRAGMA application_id` of every spindle.db: 'SPND' as a 32-bit big-endian integer. */
export const SPINDLE_APPLICATION_ID = 0x53504e44;

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'settings and event log',
    up: `
      CREATE TABLE settings (
        key        TEXT PRIMARY KEY,
        value      TEXT NOT NULL, -- JSON
        updated_at TEXT NOT NULL  -- ISO 8601, UTC
      );
      CREATE TABLE event_log (
        id      INTEGER PRIMARY KEY,
        at      TEXT NOT NULL,    -- ISO 8601, UTC
        level   TEXT NOT NULL CHECK (level IN ('info', 'warn', 'error')),
        source  TEXT NOT NULL,
        message TEXT NOT NULL
      );
      PRAGMA application_id = ${SPINDLE_APPLICATION_ID};
    `,
  },
];

/** Throws unless `list` is numbered 1..N in order without gaps (a programming error). */
export function assertMigrationsValid(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migration #${i} ("${m.name}") has version ${m.version}; expected ${i + 1}`);
    }
  });
}

assertMigrationsValid(migrations);

/** The schema version this build writes and the newest it can open. */
export const LATEST_SCHEMA_VERSION: number = migrations.length;
