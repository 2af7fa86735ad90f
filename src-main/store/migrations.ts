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
  {
    version: 2,
    name: 'targets, luns, acls, portals, access requests, remote targets, stats',
    // STRICT tables; CHECK constraints are named after the RepoError code the
    // repositories raise for the same rule, triggers RAISE "CODE: message".
    // Timestamps are ISO 8601 UTC text, except stats_samples.at (ms since epoch).
    // CHAP secrets are never stored here: *_secret_ref names an entry of
    // secrets.json ("sec_" + 32 hex digits).
    up: `
      CREATE TABLE backstores (
        id         INTEGER PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE
                   CONSTRAINT BACKSTORE_INVALID CHECK (length(name) BETWEEN 1 AND 64 AND instr(name, '/') = 0),
        kind       TEXT NOT NULL CONSTRAINT BACKSTORE_INVALID CHECK (kind IN ('file', 'block', 'memory')),
        path       TEXT UNIQUE CONSTRAINT BACKSTORE_INVALID CHECK (path IS NULL OR length(path) > 0),
        size_bytes INTEGER CONSTRAINT BACKSTORE_INVALID CHECK (size_bytes IS NULL OR (size_bytes > 0 AND size_bytes % 512 = 0)),
        read_only  INTEGER NOT NULL DEFAULT 0 CONSTRAINT BACKSTORE_INVALID CHECK (read_only IN (0, 1)),
        thin       INTEGER NOT NULL DEFAULT 0 CONSTRAINT BACKSTORE_INVALID CHECK (thin IN (0, 1)),
        wwn        TEXT NOT NULL UNIQUE CONSTRAINT BACKSTORE_INVALID CHECK (length(wwn) BETWEEN 1 AND 128),
        created_at TEXT NOT NULL,
        CONSTRAINT BACKSTORE_INVALID CHECK ((kind = 'memory') = (path IS NULL)),
        CONSTRAINT BACKSTORE_INVALID CHECK (kind <> 'memory' OR size_bytes IS NOT NULL)
      ) STRICT;

      CREATE TABLE targets (
        id              INTEGER PRIMARY KEY,
        iqn             TEXT NOT NULL UNIQUE
                        CONSTRAINT INVALID_IQN CHECK (length(CAST(iqn AS BLOB)) BETWEEN 5 AND 223
                          AND substr(iqn, 1, 4) IN ('iqn.', 'eui.', 'naa.') AND iqn = lower(iqn)),
        alias           TEXT CONSTRAINT INVALID_INPUT CHECK (alias IS NULL OR length(alias) BETWEEN 1 AND 255),
        enabled         INTEGER NOT NULL DEFAULT 1 CONSTRAINT INVALID_INPUT CHECK (enabled IN (0, 1)),
        disabled_reason TEXT CONSTRAINT INVALID_INPUT CHECK (disabled_reason IS NULL OR (enabled = 0 AND length(disabled_reason) > 0)),
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
      ) STRICT;

      CREATE TABLE luns (
        id           INTEGER PRIMARY KEY,
        target_id    INTEGER NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
        lun          INTEGER NOT NULL CONSTRAINT LUN_OUT_OF_RANGE CHECK (lun BETWEEN 0 AND 16383),
        backstore_id INTEGER NOT NULL REFERENCES backstores (id), -- NO ACTION: a backstore in use cannot go
        read_only    INTEGER NOT NULL DEFAULT 0 CONSTRAINT INVALID_INPUT CHECK (read_only IN (0, 1)),
        created_at   TEXT NOT NULL,
        UNIQUE (target_id, lun)
      ) STRICT;
      CREATE INDEX luns_backstore ON luns (backstore_id);

      -- One backing store, at most one read-write LUN; a LUN on a read-only
      -- backstore is itself read-only.
      CREATE TRIGGER luns_readonly_backstore_insert BEFORE INSERT ON luns
      WHEN NEW.read_only = 0 AND (SELECT read_only FROM backstores WHERE id = NEW.backstore_id) = 1
      BEGIN SELECT RAISE(ABORT, 'BACKSTORE_IN_USE: a LUN on a read-only backstore must be read-only'); END;
      CREATE TRIGGER luns_readonly_backstore_update BEFORE UPDATE OF read_only, backstore_id ON luns
      WHEN NEW.read_only = 0 AND (SELECT read_only FROM backstores WHERE id = NEW.backstore_id) = 1
      BEGIN SELECT RAISE(ABORT, 'BACKSTORE_IN_USE: a LUN on a read-only backstore must be read-only'); END;
      CREATE TRIGGER luns_one_writer_insert BEFORE INSERT ON luns
      WHEN NEW.read_only = 0
        AND EXISTS (SELECT 1 FROM luns WHERE backstore_id = NEW.backstore_id AND read_only = 0)
      BEGIN SELECT RAISE(ABORT, 'BACKSTORE_IN_USE: this backing store is already a read-write LUN'); END;
      CREATE TRIGGER luns_one_writer_update BEFORE UPDATE OF read_only, backstore_id ON luns
      WHEN NEW.read_only = 0
        AND EXISTS (SELECT 1 FROM luns WHERE backstore_id = NEW.backstore_id AND read_only = 0 AND id <> NEW.id)
      BEGIN SELECT RAISE(ABORT, 'BACKSTORE_IN_USE: this backing store is already a read-write LUN'); END;
      CREATE TRIGGER backstores_readonly_update BEFORE UPDATE OF read_only ON backstores
      WHEN NEW.read_only = 1 AND EXISTS (SELECT 1 FROM luns WHERE backstore_id = NEW.id AND read_only = 0)
      BEGIN SELECT RAISE(ABORT, 'BACKSTORE_IN_USE: make its LUNs read-only before the backstore'); END;

      -- target_id NULL: a portal every target listens on.
      CREATE TABLE portals (
        id         INTEGER PRIMARY KEY,
        target_id  INTEGER REFERENCES targets (id) ON DELETE CASCADE,
        host       TEXT NOT NULL CONSTRAINT PORTAL_INVALID CHECK (length(host) BETWEEN 1 AND 255),
        port       INTEGER NOT NULL CONSTRAINT PORTAL_INVALID CHECK (port BETWEEN 1 AND 65535),
        created_at TEXT NOT NULL
      ) STRICT;
      CREATE UNIQUE INDEX portals_unique ON portals (ifnull(target_id, 0), host, port);

      CREATE TABLE acls (
        id                INTEGER PRIMARY KEY,
        target_id         INTEGER NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
        initiator_iqn     TEXT NOT NULL
                          CONSTRAINT INVALID_INITIATOR_NAME CHECK (length(CAST(initiator_iqn AS BLOB)) BETWEEN 1 AND 223),
        chap_user         TEXT CONSTRAINT INVALID_CHAP CHECK (chap_user IS NULL OR length(chap_user) BETWEEN 1 AND 255),
        chap_secret_ref   TEXT CONSTRAINT INVALID_CHAP CHECK (chap_secret_ref IS NULL
                            OR (length(chap_secret_ref) = 36 AND substr(chap_secret_ref, 1, 4) = 'sec_'
                                AND substr(chap_secret_ref, 5) NOT GLOB '*[^0-9a-f]*')),
        mutual_user       TEXT CONSTRAINT INVALID_CHAP CHECK (mutual_user IS NULL OR length(mutual_user) BETWEEN 1 AND 255),
        mutual_secret_ref TEXT CONSTRAINT INVALID_CHAP CHECK (mutual_secret_ref IS NULL
                            OR (length(mutual_secret_ref) = 36 AND substr(mutual_secret_ref, 1, 4) = 'sec_'
                                AND substr(mutual_secret_ref, 5) NOT GLOB '*[^0-9a-f]*')),
        created_at        TEXT NOT NULL,
        UNIQUE (target_id, initiator_iqn),
        CONSTRAINT INVALID_CHAP CHECK ((chap_user IS NULL) = (chap_secret_ref IS NULL)),
        CONSTRAINT INVALID_CHAP CHECK ((mutual_user IS NULL) = (mutual_secret_ref IS NULL)),
        CONSTRAINT INVALID_CHAP CHECK (mutual_user IS NULL OR chap_user IS NOT NULL)
      ) STRICT;

      -- Initiators the target refused for lack of an ACL, one row per
      -- (initiator, target). target_iqn is not a foreign key: the record
      -- outlives a removed target.
      CREATE TABLE access_requests (
        id            INTEGER PRIMARY KEY,
        initiator_iqn TEXT NOT NULL
                      CONSTRAINT INVALID_INITIATOR_NAME CHECK (length(CAST(initiator_iqn AS BLOB)) BETWEEN 1 AND 223),
        address       TEXT NOT NULL CONSTRAINT INVALID_INPUT CHECK (length(address) BETWEEN 1 AND 255),
        target_iqn    TEXT NOT NULL CONSTRAINT INVALID_IQN CHECK (length(CAST(target_iqn AS BLOB)) BETWEEN 1 AND 223),
        first_seen    TEXT NOT NULL,
        last_seen     TEXT NOT NULL,
        count         INTEGER NOT NULL DEFAULT 1 CONSTRAINT INVALID_INPUT CHECK (count >= 1),
        decision      TEXT CONSTRAINT INVALID_INPUT CHECK (decision IS NULL OR decision IN ('allowed', 'denied')),
        decided_at    TEXT,
        UNIQUE (initiator_iqn, target_iqn),
        CONSTRAINT INVALID_INPUT CHECK (last_seen >= first_seen),
        CONSTRAINT INVALID_INPUT CHECK ((decision IS NULL) = (decided_at IS NULL))
      ) STRICT;
      CREATE INDEX access_requests_pending ON access_requests (last_seen) WHERE decision IS NULL;

      CREATE TABLE remote_targets (
        id                INTEGER PRIMARY KEY,
        host              TEXT NOT NULL CONSTRAINT PORTAL_INVALID CHECK (length(host) BETWEEN 1 AND 255),
        port              INTEGER NOT NULL DEFAULT 3260 CONSTRAINT PORTAL_INVALID CHECK (port BETWEEN 1 AND 65535),
        iqn               TEXT NOT NULL CONSTRAINT INVALID_IQN CHECK (length(CAST(iqn AS BLOB)) BETWEEN 1 AND 223),
        chap_user         TEXT CONSTRAINT INVALID_CHAP CHECK (chap_user IS NULL OR length(chap_user) BETWEEN 1 AND 255),
        chap_secret_ref   TEXT CONSTRAINT INVALID_CHAP CHECK (chap_secret_ref IS NULL
                            OR (length(chap_secret_ref) = 36 AND substr(chap_secret_ref, 1, 4) = 'sec_'
                                AND substr(chap_secret_ref, 5) NOT GLOB '*[^0-9a-f]*')),
        mutual_user       TEXT CONSTRAINT INVALID_CHAP CHECK (mutual_user IS NULL OR length(mutual_user) BETWEEN 1 AND 255),
        mutual_secret_ref TEXT CONSTRAINT INVALID_CHAP CHECK (mutual_secret_ref IS NULL
                            OR (length(mutual_secret_ref) = 36 AND substr(mutual_secret_ref, 1, 4) = 'sec_'
                                AND substr(mutual_secret_ref, 5) NOT GLOB '*[^0-9a-f]*')),
        auto_connect      INTEGER NOT NULL DEFAULT 0 CONSTRAINT INVALID_INPUT CHECK (auto_connect IN (0, 1)),
        mount_lun         INTEGER NOT NULL DEFAULT 0 CONSTRAINT LUN_OUT_OF_RANGE CHECK (mount_lun BETWEEN 0 AND 16383),
        mount_point       TEXT CONSTRAINT INVALID_INPUT CHECK (mount_point IS NULL OR length(mount_point) > 0),
        created_at        TEXT NOT NULL,
        updated_at        TEXT NOT NULL,
        UNIQUE (host, port, iqn),
        CONSTRAINT INVALID_CHAP CHECK ((chap_user IS NULL) = (chap_secret_ref IS NULL)),
        CONSTRAINT INVALID_CHAP CHECK ((mutual_user IS NULL) = (mutual_secret_ref IS NULL)),
        CONSTRAINT INVALID_CHAP CHECK (mutual_user IS NULL OR chap_user IS NOT NULL)
      ) STRICT;
      CREATE UNIQUE INDEX remote_targets_mount_point ON remote_targets (mount_point) WHERE mount_point IS NOT NULL;

      -- Per-interval I/O counters: 1 s samples kept 10 minutes, 1 min
      -- samples 24 hours (the store prunes). at = start of the interval.
      CREATE TABLE stats_samples (
        id             INTEGER PRIMARY KEY,
        scope          TEXT NOT NULL CONSTRAINT STATS_INVALID CHECK (scope IN ('target', 'lun', 'session')),
        scope_id       TEXT NOT NULL CONSTRAINT STATS_INVALID CHECK (length(scope_id) BETWEEN 1 AND 512),
        resolution     TEXT NOT NULL CONSTRAINT STATS_INVALID CHECK (resolution IN ('1s', '1m')),
        at             INTEGER NOT NULL CONSTRAINT STATS_INVALID CHECK (at >= 0),
        read_bytes     INTEGER NOT NULL DEFAULT 0 CONSTRAINT STATS_INVALID CHECK (read_bytes >= 0),
        write_bytes    INTEGER NOT NULL DEFAULT 0 CONSTRAINT STATS_INVALID CHECK (write_bytes >= 0),
        read_ops       INTEGER NOT NULL DEFAULT 0 CONSTRAINT STATS_INVALID CHECK (read_ops >= 0),
        write_ops      INTEGER NOT NULL DEFAULT 0 CONSTRAINT STATS_INVALID CHECK (write_ops >= 0),
        latency_us_p50 INTEGER CONSTRAINT STATS_INVALID CHECK (latency_us_p50 IS NULL OR latency_us_p50 >= 0),
        latency_us_p99 INTEGER CONSTRAINT STATS_INVALID CHECK (latency_us_p99 IS NULL OR latency_us_p99 >= 0),
        CONSTRAINT STATS_INVALID CHECK (resolution <> '1m' OR at % 60000 = 0),
        CONSTRAINT STATS_INVALID CHECK (latency_us_p50 IS NULL OR latency_us_p99 IS NULL OR latency_us_p99 >= latency_us_p50)
      ) STRICT;
      CREATE UNIQUE INDEX stats_samples_series ON stats_samples (scope, scope_id, resolution, at);
      CREATE INDEX stats_samples_age ON stats_samples (resolution, at);
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
