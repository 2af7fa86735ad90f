// Schema 2: the upgrade from schema 1, and the constraints that make bad
// states impossible even for code that bypasses the repositories.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { LATEST_SCHEMA_VERSION, RepoError, migrations, openStore, type Store } from '../../src-main/store/index';

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'spindle-schema-test-'));
  roots.push(dir);
  return dir;
}

/** A store plus its raw connection (through the tests-only hook). */
function openRaw(): { store: Store; db: Database.Database } {
  let raw: Database.Database | undefined;
  const store = openStore({ dataDir: tempDir(), onConnection: (db) => (raw = db) });
  assert.ok(raw);
  return { store, db: raw };
}

const NOW = '2026-01-01T00:00:00.000Z';
const REF = `sec_${'ab'.repeat(16)}`;
const REF2 = `sec_${'cd'.repeat(16)}`;

/** Runs `sql` and asserts SQLite refuses it with `code`, naming `constraint` (a CHECK name, a trigger message or a unique column). */
function refused(db: Database.Database, sql: string, params: unknown[], code: string, constraint: RegExp): void {
  let caught: unknown;
  try {
    db.prepare(sql).run(...params);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof Error, `expected ${code} for: ${sql} ${JSON.stringify(params)}`);
  assert.equal((caught as { code?: string }).code, code, caught.message);
  assert.match(caught.message, constraint);
}

function seed(db: Database.Database): { target: number; file: number; mem: number } {
  const target = Number(
    db.prepare('INSERT INTO targets (iqn, created_at, updated_at) VALUES (?, ?, ?)').run('iqn.2026-01.net.example:t1', NOW, NOW).lastInsertRowid,
  );
  const file = Number(
    db
      .prepare("INSERT INTO backstores (name, kind, path, size_bytes, wwn, created_at) VALUES ('disk', 'file', '/srv/disk.img', 1048576, 'w1', ?)")
      .run(NOW).lastInsertRowid,
  );
  const mem = Number(
    db.prepare("INSERT INTO backstores (name, kind, size_bytes, wwn, created_at) VALUES ('mem', 'memory', 1048576, 'w2', ?)").run(NOW).lastInsertRowid,
  );
  return { target, file, mem };
}

describe('migration 1 -> 2', () => {
  test('a schema-1 file with settings and events is upgraded and keeps them', () => {
    const dir = tempDir();
    const v1 = openStore({ dataDir: dir, migrations: migrations.slice(0, 1) });
    assert.equal(v1.schemaVersion, 1);
    v1.settings.setMany({ theme: 'dark', defaultPortal: '0.0.0.0:3260', nested: { a: [1, 2] } });
    v1.events.append('info', 'service', 'started (v1)');
    v1.close();
    const raw = new Database(join(dir, 'spindle.db'), { readonly: true });
    assert.equal(raw.pragma('user_version', { simple: true }), 1);
    assert.equal(raw.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'targets'").pluck().get(), 0);
    raw.close();

    const store = openStore({ dataDir: dir });
    assert.equal(store.schemaVersion, 2);
    assert.equal(LATEST_SCHEMA_VERSION, 2);
    assert.deepEqual(store.settings.getAll(), { theme: 'dark', defaultPortal: '0.0.0.0:3260', nested: { a: [1, 2] } });
    assert.deepEqual(
      store.events.recent(5).map((e) => e.message),
      ['started (v1)'],
    );
    // the new tables work straight away
    const t = store.targets.create({ iqn: 'iqn.2026-01.net.example:after-upgrade', luns: [{ lun: 0, backstore: { kind: 'memory', sizeBytes: 4096 } }] });
    assert.equal(t.luns.length, 1);
    store.close();

    const check = new Database(join(dir, 'spindle.db'), { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), 2);
    const tables = check.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all();
    assert.deepEqual(tables, [
      'access_requests', 'acls', 'backstores', 'event_log', 'luns', 'portals', 'remote_targets', 'settings', 'stats_samples', 'targets',
    ]);
    assert.deepEqual(check.prepare('PRAGMA foreign_key_check').all(), []);
    check.close();
  });

  test('the v2 tables are STRICT: a value of the wrong type is refused', () => {
    const { store, db } = openRaw();
    refused(db, 'INSERT INTO targets (iqn, enabled, created_at, updated_at) VALUES (?, ?, ?, ?)', ['iqn.2026-01.net.example:x', 'yes', NOW, NOW], 'SQLITE_CONSTRAINT_DATATYPE', /cannot store TEXT value in INTEGER column targets\.enabled/);
    store.close();
  });
});

describe('constraints (raw SQL, bypassing the repositories)', () => {
  test('backstores', () => {
    const { store, db } = openRaw();
    seed(db);
    const ins = 'INSERT INTO backstores (name, kind, path, size_bytes, read_only, thin, wwn, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)';
    const check = 'SQLITE_CONSTRAINT_CHECK';
    refused(db, ins, ['a', 'tape', '/dev/st0', null, 0, 0, 'x1', NOW], check, /BACKSTORE_INVALID/);
    refused(db, ins, ['a', 'memory', '/x', 4096, 0, 0, 'x1', NOW], check, /BACKSTORE_INVALID/);
    refused(db, ins, ['a', 'file', null, 4096, 0, 0, 'x1', NOW], check, /BACKSTORE_INVALID/);
    refused(db, ins, ['a', 'memory', null, null, 0, 0, 'x1', NOW], check, /BACKSTORE_INVALID/);
    refused(db, ins, ['a', 'file', '/a.img', 1000, 0, 0, 'x1', NOW], check, /BACKSTORE_INVALID/);
    refused(db, ins, ['a', 'file', '/a.img', 4096, 2, 0, 'x1', NOW], check, /BACKSTORE_INVALID/);
    refused(db, ins, ['a/b', 'file', '/a.img', 4096, 0, 0, 'x1', NOW], check, /BACKSTORE_INVALID/);
    refused(db, ins, ['a', 'file', '/srv/disk.img', 4096, 0, 0, 'x1', NOW], 'SQLITE_CONSTRAINT_UNIQUE', /backstores\.path/);
    refused(db, ins, ['disk', 'file', '/other.img', 4096, 0, 0, 'x1', NOW], 'SQLITE_CONSTRAINT_UNIQUE', /backstores\.name/);
    refused(db, ins, ['a', 'file', '/other.img', 4096, 0, 0, 'w1', NOW], 'SQLITE_CONSTRAINT_UNIQUE', /backstores\.wwn/);
    store.close();
  });

  test('targets', () => {
    const { store, db } = openRaw();
    seed(db);
    const ins = 'INSERT INTO targets (iqn, alias, enabled, disabled_reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)';
    refused(db, ins, ['disk1', null, 1, null, NOW, NOW], 'SQLITE_CONSTRAINT_CHECK', /INVALID_IQN/);
    refused(db, ins, ['iqn.2026-01.net.example:UPPER', null, 1, null, NOW, NOW], 'SQLITE_CONSTRAINT_CHECK', /INVALID_IQN/);
    refused(db, ins, ['iqn.2026-01.net.example:t2', null, 1, 'file missing', NOW, NOW], 'SQLITE_CONSTRAINT_CHECK', /INVALID_INPUT/);
    refused(db, ins, ['iqn.2026-01.net.example:t2', '', 1, null, NOW, NOW], 'SQLITE_CONSTRAINT_CHECK', /INVALID_INPUT/);
    refused(db, ins, ['iqn.2026-01.net.example:t1', null, 1, null, NOW, NOW], 'SQLITE_CONSTRAINT_UNIQUE', /targets\.iqn/);
    db.prepare(ins).run('iqn.2026-01.net.example:t2', null, 0, 'file missing', NOW, NOW); // disabled with a reason is fine
    store.close();
  });

  test('luns: range, uniqueness, foreign keys and the one-writer rule', () => {
    const { store, db } = openRaw();
    const { target, file, mem } = seed(db);
    const ins = 'INSERT INTO luns (target_id, lun, backstore_id, read_only, created_at) VALUES (?, ?, ?, ?, ?)';
    refused(db, ins, [target, 16384, file, 0, NOW], 'SQLITE_CONSTRAINT_CHECK', /LUN_OUT_OF_RANGE/);
    refused(db, ins, [target, -1, file, 0, NOW], 'SQLITE_CONSTRAINT_CHECK', /LUN_OUT_OF_RANGE/);
    refused(db, ins, [999, 0, file, 0, NOW], 'SQLITE_CONSTRAINT_FOREIGNKEY', /FOREIGN KEY/);
    refused(db, ins, [target, 0, 999, 0, NOW], 'SQLITE_CONSTRAINT_FOREIGNKEY', /FOREIGN KEY/);
    db.prepare(ins).run(target, 0, file, 0, NOW);
    db.prepare(ins).run(target, 16383, mem, 0, NOW);
    refused(db, ins, [target, 0, mem, 1, NOW], 'SQLITE_CONSTRAINT_UNIQUE', /luns\.target_id, luns\.lun/);
    // a second read-write LUN on the same backing store
    refused(db, ins, [target, 1, file, 0, NOW], 'SQLITE_CONSTRAINT_TRIGGER', /^BACKSTORE_IN_USE:/);
    // read-only sharing is fine, but it cannot be flipped to read-write
    const ro = Number(db.prepare(ins).run(target, 1, file, 1, NOW).lastInsertRowid);
    refused(db, 'UPDATE luns SET read_only = 0 WHERE id = ?', [ro], 'SQLITE_CONSTRAINT_TRIGGER', /^BACKSTORE_IN_USE:/);
    // a backstore with a read-write LUN cannot become read-only underneath it
    refused(db, 'UPDATE backstores SET read_only = 1 WHERE id = ?', [file], 'SQLITE_CONSTRAINT_TRIGGER', /^BACKSTORE_IN_USE:/);
    // a LUN on a read-only backstore must be read-only
    const roStore = Number(
      db.prepare("INSERT INTO backstores (name, kind, path, read_only, wwn, created_at) VALUES ('iso', 'file', '/iso.img', 1, 'w3', ?)").run(NOW).lastInsertRowid,
    );
    refused(db, ins, [target, 2, roStore, 0, NOW], 'SQLITE_CONSTRAINT_TRIGGER', /^BACKSTORE_IN_USE: a LUN on a read-only backstore/);
    // a backstore in use cannot be deleted
    refused(db, 'DELETE FROM backstores WHERE id = ?', [file], 'SQLITE_CONSTRAINT_FOREIGNKEY', /FOREIGN KEY/);
    store.close();
  });

  test('portals, ACLs, access requests, remote targets, stats', () => {
    const { store, db } = openRaw();
    const { target } = seed(db);
    const portal = 'INSERT INTO portals (target_id, host, port, created_at) VALUES (?, ?, ?, ?)';
    refused(db, portal, [null, '0.0.0.0', 0, NOW], 'SQLITE_CONSTRAINT_CHECK', /PORTAL_INVALID/);
    refused(db, portal, [null, '0.0.0.0', 65536, NOW], 'SQLITE_CONSTRAINT_CHECK', /PORTAL_INVALID/);
    refused(db, portal, [null, '', 3260, NOW], 'SQLITE_CONSTRAINT_CHECK', /PORTAL_INVALID/);
    db.prepare(portal).run(null, '0.0.0.0', 3260, NOW);
    db.prepare(portal).run(target, '0.0.0.0', 3260, NOW); // the same address as a target's own portal is a different row
    refused(db, portal, [null, '0.0.0.0', 3260, NOW], 'SQLITE_CONSTRAINT_UNIQUE', /portals_unique/);

    const acl = 'INSERT INTO acls (target_id, initiator_iqn, chap_user, chap_secret_ref, mutual_user, mutual_secret_ref, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)';
    refused(db, acl, [target, 'iqn.x:a', 'user', null, null, null, NOW], 'SQLITE_CONSTRAINT_CHECK', /INVALID_CHAP/);
    refused(db, acl, [target, 'iqn.x:a', null, null, 'm', REF2, NOW], 'SQLITE_CONSTRAINT_CHECK', /INVALID_CHAP/);
    // a secret in the clear where a reference belongs
    refused(db, acl, [target, 'iqn.x:a', 'user', 'my-secret-12345', null, null, NOW], 'SQLITE_CONSTRAINT_CHECK', /INVALID_CHAP/);
    refused(db, acl, [target, '', null, null, null, null, NOW], 'SQLITE_CONSTRAINT_CHECK', /INVALID_INITIATOR_NAME/);
    db.prepare(acl).run(target, 'iqn.x:a', 'user', REF, 'm', REF2, NOW);
    refused(db, acl, [target, 'iqn.x:a', null, null, null, null, NOW], 'SQLITE_CONSTRAINT_UNIQUE', /acls\.target_id, acls\.initiator_iqn/);

    const req = 'INSERT INTO access_requests (initiator_iqn, address, target_iqn, first_seen, last_seen, count, decision, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)';
    refused(db, req, ['iqn.x:b', '10.0.0.2', 'iqn.t', NOW, NOW, 1, 'maybe', NOW], 'SQLITE_CONSTRAINT_CHECK', /INVALID_INPUT/);
    refused(db, req, ['iqn.x:b', '10.0.0.2', 'iqn.t', NOW, NOW, 1, 'allowed', null], 'SQLITE_CONSTRAINT_CHECK', /INVALID_INPUT/);
    refused(db, req, ['iqn.x:b', '10.0.0.2', 'iqn.t', NOW, NOW, 0, null, null], 'SQLITE_CONSTRAINT_CHECK', /INVALID_INPUT/);
    refused(db, req, ['iqn.x:b', '10.0.0.2', 'iqn.t', NOW, '2025-01-01T00:00:00.000Z', 1, null, null], 'SQLITE_CONSTRAINT_CHECK', /INVALID_INPUT/);
    db.prepare(req).run('iqn.x:b', '10.0.0.2', 'iqn.t', NOW, NOW, 1, null, null);
    refused(db, req, ['iqn.x:b', '10.0.0.3', 'iqn.t', NOW, NOW, 1, null, null], 'SQLITE_CONSTRAINT_UNIQUE', /access_requests\.initiator_iqn, access_requests\.target_iqn/);

    const remote = 'INSERT INTO remote_targets (host, port, iqn, mount_lun, mount_point, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)';
    refused(db, remote, ['nas', 70000, 'iqn.r', 0, null, NOW, NOW], 'SQLITE_CONSTRAINT_CHECK', /PORTAL_INVALID/);
    refused(db, remote, ['nas', 3260, 'iqn.r', 20000, null, NOW, NOW], 'SQLITE_CONSTRAINT_CHECK', /LUN_OUT_OF_RANGE/);
    db.prepare(remote).run('nas', 3260, 'iqn.r', 0, '/mnt/a', NOW, NOW);
    refused(db, remote, ['nas', 3260, 'iqn.r', 0, null, NOW, NOW], 'SQLITE_CONSTRAINT_UNIQUE', /remote_targets\.host, remote_targets\.port, remote_targets\.iqn/);
    refused(db, remote, ['nas', 3260, 'iqn.r2', 0, '/mnt/a', NOW, NOW], 'SQLITE_CONSTRAINT_UNIQUE', /remote_targets\.mount_point/);

    const stat = 'INSERT INTO stats_samples (scope, scope_id, resolution, at, read_bytes, latency_us_p50, latency_us_p99) VALUES (?, ?, ?, ?, ?, ?, ?)';
    refused(db, stat, ['disk', 'x', '1s', 1000, 0, null, null], 'SQLITE_CONSTRAINT_CHECK', /STATS_INVALID/);
    refused(db, stat, ['lun', 'x', '5s', 1000, 0, null, null], 'SQLITE_CONSTRAINT_CHECK', /STATS_INVALID/);
    refused(db, stat, ['lun', 'x', '1m', 61_000, 0, null, null], 'SQLITE_CONSTRAINT_CHECK', /STATS_INVALID/);
    refused(db, stat, ['lun', 'x', '1s', 1000, -5, null, null], 'SQLITE_CONSTRAINT_CHECK', /STATS_INVALID/);
    refused(db, stat, ['lun', 'x', '1s', 1000, 0, 900, 100], 'SQLITE_CONSTRAINT_CHECK', /STATS_INVALID/);
    db.prepare(stat).run('lun', 'x', '1s', 1000, 0, 100, 900);
    refused(db, stat, ['lun', 'x', '1s', 1000, 5, null, null], 'SQLITE_CONSTRAINT_UNIQUE', /stats_samples\.scope/);
    store.close();
  });

  test('deleting a target cascades to its LUNs, ACLs and own portals, not to shared portals', () => {
    const { store, db } = openRaw();
    const { target, file } = seed(db);
    db.prepare('INSERT INTO luns (target_id, lun, backstore_id, created_at) VALUES (?, 0, ?, ?)').run(target, file, NOW);
    db.prepare("INSERT INTO acls (target_id, initiator_iqn, created_at) VALUES (?, 'iqn.x:a', ?)").run(target, NOW);
    db.prepare("INSERT INTO portals (target_id, host, port, created_at) VALUES (?, '10.0.0.1', 3260, ?)").run(target, NOW);
    db.prepare("INSERT INTO portals (target_id, host, port, created_at) VALUES (NULL, '0.0.0.0', 3260, ?)").run(NOW);
    db.prepare('DELETE FROM targets WHERE id = ?').run(target);
    const count = (table: string) => db.prepare(`SELECT count(*) FROM ${table}`).pluck().get();
    assert.equal(count('luns'), 0);
    assert.equal(count('acls'), 0);
    assert.equal(count('portals'), 1);
    assert.equal(count('backstores'), 2, 'backstores are not owned by targets');
    store.close();
  });

  test('a constraint that fires inside a repository transaction leaves as a RepoError with its code', () => {
    const { store, db } = openRaw();
    const { target, file, mem } = seed(db);
    db.prepare('INSERT INTO luns (target_id, lun, backstore_id, created_at) VALUES (?, 0, ?, ?)').run(target, file, NOW);
    const cases: Array<[string, unknown[], string]> = [
      ['INSERT INTO luns (target_id, lun, backstore_id, created_at) VALUES (?, 1, ?, ?)', [target, file, NOW], 'BACKSTORE_IN_USE'],
      ['INSERT INTO luns (target_id, lun, backstore_id, created_at) VALUES (?, 20000, ?, ?)', [target, mem, NOW], 'LUN_OUT_OF_RANGE'],
      ["INSERT INTO portals (host, port, created_at) VALUES ('x', 0, ?)", [NOW], 'PORTAL_INVALID'],
      ["INSERT INTO targets (iqn, created_at, updated_at) VALUES ('iqn.2026-01.net.example:t1', ?, ?)", [NOW, NOW], 'TARGET_EXISTS'],
      ["INSERT INTO acls (target_id, initiator_iqn, chap_user, created_at) VALUES (?, 'iqn.x:a', 'u', ?)", [target, NOW], 'INVALID_CHAP'],
    ];
    for (const [sql, params, code] of cases) {
      assert.throws(
        () => store.transaction(() => db.prepare(sql).run(...params)),
        (err: unknown) => err instanceof RepoError && err.code === code,
        `${sql} -> ${code}`,
      );
    }
    store.close();
  });
});
