import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import {
  LATEST_SCHEMA_VERSION,
  SPINDLE_APPLICATION_ID,
  StoreError,
  assertMigrationsValid,
  migrations,
  openStore,
  type Migration,
  type StoreErrorCode,
} from '../../src-main/store/index';

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'spindle-store-test-'));
  roots.push(dir);
  return dir;
}

/** Every file in `dir` with its sha256 and mtime, to prove nothing changed. */
function snapshot(dir: string): Record<string, { sha256: string; mtimeMs: number; size: number }> {
  const out: Record<string, { sha256: string; mtimeMs: number; size: number }> = {};
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const stats = statSync(path);
    out[name] = { sha256: createHash('sha256').update(readFileSync(path)).digest('hex'), mtimeMs: stats.mtimeMs, size: stats.size };
  }
  return out;
}

function expectStoreError(fn: () => unknown, code: StoreErrorCode, message?: RegExp): StoreError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof StoreError, `expected StoreError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}

/** Asserts opening `dir` fails with `code` and leaves every file in it exactly as it was. */
function expectRefusedUntouched(dir: string, code: StoreErrorCode, message?: RegExp): StoreError {
  const before = snapshot(dir);
  const err = expectStoreError(() => openStore({ dataDir: dir }), code, message);
  assert.deepEqual(snapshot(dir), before, 'files in the data dir changed (or -wal/-shm/lock files were left behind)');
  assert.match(err.message, /not changed/);
  return err;
}

/** A data dir holding a real, cleanly closed spindle.db with some data in it. */
function populatedDir(): string {
  const dir = tempDir();
  const store = openStore({ dataDir: dir });
  const entries: Record<string, unknown> = {};
  for (let i = 0; i < 200; i++) entries[`key${i}`] = { i, text: 'x'.repeat(50) };
  store.settings.setMany(entries);
  for (let i = 0; i < 50; i++) store.events.append('info', 'test', `event ${i}`);
  store.close();
  return dir;
}

function headerOf(file: string): Buffer {
  return readFileSync(file).subarray(0, 100);
}

function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  assert.ok(child.pid !== undefined && child.pid > 0);
  return child.pid;
}

describe('openStore: a fresh data dir', () => {
  test('creates the dir (0700) and spindle.db in WAL mode at the latest schema', () => {
    const dir = join(tempDir(), 'nested', 'data');
    const store = openStore({ dataDir: dir });
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(store.path, join(dir, 'spindle.db'));
    assert.equal(store.schemaVersion, LATEST_SCHEMA_VERSION);
    const raw = new Database(store.path, { readonly: true });
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(raw.pragma('user_version', { simple: true }), LATEST_SCHEMA_VERSION);
    raw.close();
    store.close();
    const header = headerOf(join(dir, 'spindle.db'));
    assert.equal(header.readUInt8(18), 2, 'file format write version: WAL');
    assert.equal(header.readUInt32BE(60), LATEST_SCHEMA_VERSION, 'user_version');
    assert.equal(header.readUInt32BE(68), SPINDLE_APPLICATION_ID, 'application_id');
  });

  test('a 0-byte spindle.db is an empty database and gets the schema', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'spindle.db'), '');
    const store = openStore({ dataDir: dir });
    assert.equal(store.schemaVersion, LATEST_SCHEMA_VERSION);
    store.close();
  });
});

describe('settings and events', () => {
  test('settings round-trip survives close and reopen', () => {
    const dir = tempDir();
    const values = { theme: 'dark', diskPollSeconds: 5, nested: { list: [1, null, 'a'] }, off: false, nothing: null };
    let store = openStore({ dataDir: dir });
    store.settings.setMany(values);
    store.settings.setMany({ theme: 'light' });
    assert.equal(store.settings.get('theme'), 'light');
    assert.equal(store.settings.get('missing'), undefined);
    store.close();

    store = openStore({ dataDir: dir });
    assert.deepEqual(store.settings.getAll(), { ...values, theme: 'light' });
    assert.deepEqual(store.settings.get('nested'), { list: [1, null, 'a'] });
    store.close();
  });

  test('setMany is all-or-nothing and rejects values JSON cannot encode', () => {
    const store = openStore({ dataDir: tempDir() });
    assert.throws(() => store.settings.setMany({ good: 1, bad: undefined }), TypeError);
    assert.throws(() => store.settings.setMany({ good: 1, bad: 10n }), TypeError);
    assert.deepEqual(store.settings.getAll(), {});
    store.close();
  });

  test('a key named __proto__ is stored as plain data', () => {
    const store = openStore({ dataDir: tempDir() });
    store.settings.setMany(JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, unknown>);
    const all = store.settings.getAll();
    assert.deepEqual(Object.keys(all), ['__proto__']);
    assert.equal(Object.getPrototypeOf(all), Object.prototype);
    store.close();
  });

  test('event log appends and lists newest first, across reopen', () => {
    const dir = tempDir();
    let store = openStore({ dataDir: dir });
    const first = store.events.append('info', 'target', 'listening on 0.0.0.0:3260');
    store.events.append('warn', 'target', 'refused iqn.x');
    store.events.append('error', 'initiator', 'connection lost');
    assert.match(first.at, /^\d{4}-\d\d-\d\dT/);
    store.close();

    store = openStore({ dataDir: dir });
    const recent = store.events.recent(2);
    assert.deepEqual(recent.map((e) => [e.level, e.source, e.message]), [
      ['error', 'initiator', 'connection lost'],
      ['warn', 'target', 'refused iqn.x'],
    ]);
    assert.equal(store.events.recent(10).length, 3);
    assert.deepEqual(store.events.recent(10).at(-1), first);
    assert.throws(() => store.events.append('debug' as 'info', 's', 'm'), /CHECK constraint/);
    assert.throws(() => store.events.recent(-1), RangeError);
    store.close();
  });

  test('transaction() commits or rolls back as a whole', () => {
    const store = openStore({ dataDir: tempDir() });
    assert.throws(() =>
      store.transaction(() => {
        store.settings.setMany({ a: 1 });
        store.events.append('info', 't', 'm');
        throw new Error('abort');
      }),
    );
    assert.deepEqual(store.settings.getAll(), {});
    assert.equal(store.events.recent(10).length, 0);
    assert.equal(store.transaction(() => (store.settings.setMany({ a: 2 }), 'done')), 'done');
    assert.equal(store.settings.get('a'), 2);
    store.close();
    store.close(); // idempotent
  });
});

describe('files Spindle must refuse and leave byte-for-byte unchanged', () => {
  test('garbage bytes → STORE_NOT_A_DATABASE, no -wal/-shm/lock left', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'spindle.db'), Buffer.from('this is not a database\n'.repeat(300)));
    expectRefusedUntouched(dir, 'STORE_NOT_A_DATABASE', /not a Spindle database .*SQLite format 3/);
  });

  test('SQLite header followed by garbage → STORE_CORRUPT', () => {
    const dir = tempDir();
    const junk = Buffer.alloc(8192, 0xa5);
    Buffer.from('SQLite format 3\0', 'latin1').copy(junk);
    writeFileSync(join(dir, 'spindle.db'), junk);
    expectRefusedUntouched(dir, 'STORE_CORRUPT', /is damaged/);
  });

  test('a real db with junk over page 2 → STORE_CORRUPT', () => {
    const dir = populatedDir();
    const file = join(dir, 'spindle.db');
    const pageSize = headerOf(file).readUInt16BE(16);
    assert.ok(statSync(file).size >= pageSize * 3, 'db should span several pages');
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, pageSize);
    closeSync(fd);
    expectRefusedUntouched(dir, 'STORE_CORRUPT', /is damaged \((SQLite quick_check|SQLite): /);
  });

  test('user_version = latest+5 → STORE_NEWER_VERSION', () => {
    const dir = populatedDir();
    const raw = new Database(join(dir, 'spindle.db'));
    raw.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 5}`);
    raw.close();
    const known = LATEST_SCHEMA_VERSION;
    expectRefusedUntouched(
      dir,
      'STORE_NEWER_VERSION',
      new RegExp(`newer Spindle \\(schema ${known + 5}; this version knows ${known}\\)`),
    );
  });

  test("another application's SQLite db → STORE_NOT_A_DATABASE", () => {
    const dir = tempDir();
    const raw = new Database(join(dir, 'spindle.db'));
    raw.exec('CREATE TABLE photos(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO photos(name) VALUES (\'cat\');');
    raw.close();
    expectRefusedUntouched(dir, 'STORE_NOT_A_DATABASE', /not one Spindle created/);
  });

  test('a -wal file without spindle.db → STORE_CORRUPT', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'spindle.db-wal'), Buffer.alloc(4096, 1));
    expectRefusedUntouched(dir, 'STORE_CORRUPT', /-wal exists/);
  });
});

describe('data dir problems', () => {
  test('a data dir under a regular file fails even as root → DATA_DIR_UNWRITABLE', () => {
    const file = join(tempDir(), 'plainfile');
    writeFileSync(file, 'x');
    const dir = join(file, 'sub');
    expectStoreError(
      () => openStore({ dataDir: dir }),
      'DATA_DIR_UNWRITABLE',
      new RegExp(`^Cannot write to data directory ${dir}: .* — choose another with --data DIR or fix its permissions\\.$`),
    );
  });

  test('a data dir that is a regular file → DATA_DIR_UNWRITABLE', () => {
    const file = join(tempDir(), 'plainfile');
    writeFileSync(file, 'x');
    expectStoreError(() => openStore({ dataDir: file }), 'DATA_DIR_UNWRITABLE');
    assert.equal(readFileSync(file, 'utf8'), 'x');
  });

  test('a chmod 0500 data dir → DATA_DIR_UNWRITABLE (skipped as root: root ignores modes)', {
    skip: process.getuid?.() === 0,
  }, () => {
    const dir = join(tempDir(), 'ro');
    mkdirSync(dir, { mode: 0o500 });
    chmodSync(dir, 0o500);
    expectStoreError(() => openStore({ dataDir: dir }), 'DATA_DIR_UNWRITABLE', /permission denied/);
  });
});

describe('one Spindle per data dir', () => {
  test('a second open while the first is open → STORE_LOCKED; released on close', () => {
    const dir = tempDir();
    const first = openStore({ dataDir: dir });
    assert.equal(readFileSync(join(dir, 'spindle.lock'), 'utf8').trim(), String(process.pid));
    expectStoreError(
      () => openStore({ dataDir: dir }),
      'STORE_LOCKED',
      new RegExp(`^Another Spindle \\(pid ${process.pid}\\) is using ${dir}\\. Stop it, or use another --data DIR\\.$`),
    );
    first.settings.setMany({ stillWorks: true });
    first.close();
    assert.equal(existsSync(join(dir, 'spindle.lock')), false);
    const second = openStore({ dataDir: dir });
    assert.equal(second.settings.get('stillWorks'), true);
    second.close();
  });

  test('a lock held by another live process → STORE_LOCKED naming its pid', async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      assert.ok(child.pid !== undefined);
      writeFileSync(join(dir, 'spindle.lock'), `${child.pid}\n`);
      expectStoreError(() => openStore({ dataDir: dir }), 'STORE_LOCKED', new RegExp(`pid ${child.pid}\\b`));
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('a stale lock (dead pid) is taken over', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'spindle.lock'), `${deadPid()}\n`);
    const store = openStore({ dataDir: dir });
    assert.equal(readFileSync(join(dir, 'spindle.lock'), 'utf8').trim(), String(process.pid));
    store.close();
  });

  test('a lock naming our own pid that this process does not hold is stale', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'spindle.lock'), `${process.pid}\n`);
    openStore({ dataDir: dir }).close();
  });

  test('a lock file without a pid is taken over', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'spindle.lock'), 'garbage');
    openStore({ dataDir: dir }).close();
  });

  test('after a crash (SIGKILL) the stale lock is taken over and WAL data is kept', () => {
    const dir = tempDir();
    const storeUrl = new URL('../../src-main/store/index.ts', import.meta.url).href;
    const script = `
      import { openStore } from ${JSON.stringify(storeUrl)};
      const store = openStore({ dataDir: ${JSON.stringify(dir)} });
      store.settings.setMany({ beforeCrash: 'kept' });
      process.kill(process.pid, 'SIGKILL');`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    assert.ok(statSync(join(dir, 'spindle.db-wal')).size > 0, 'the crash should leave a non-empty -wal');
    assert.equal(readFileSync(join(dir, 'spindle.lock'), 'utf8').trim(), String(child.pid));
    const store = openStore({ dataDir: dir });
    assert.equal(store.settings.get('beforeCrash'), 'kept');
    store.close();
  });
});

describe('migrations', () => {
  test('are numbered 1..N without gaps, and LATEST_SCHEMA_VERSION is N', () => {
    assert.ok(migrations.length >= 1);
    assert.deepEqual(
      migrations.map((m) => m.version),
      migrations.map((_, i) => i + 1),
    );
    assert.equal(LATEST_SCHEMA_VERSION, migrations.length);
    assert.equal(new Set(migrations.map((m) => m.name)).size, migrations.length, 'names are unique');
  });

  test('a list with a gap is rejected', () => {
    const gapped: Migration[] = [...migrations, { version: migrations.length + 2, name: 'gap', up: '' }];
    assert.throws(() => assertMigrationsValid(gapped), /expected/);
    assert.throws(() => openStore({ dataDir: tempDir(), migrations: gapped }), /expected/);
  });

  test('an existing db is upgraded by a new migration', () => {
    const dir = populatedDir();
    const next: Migration = { version: LATEST_SCHEMA_VERSION + 1, name: 'add t2', up: 'CREATE TABLE t2(x);' };
    const store = openStore({ dataDir: dir, migrations: [...migrations, next] });
    assert.equal(store.schemaVersion, LATEST_SCHEMA_VERSION + 1);
    assert.equal(store.settings.get('key7') !== undefined, true);
    store.close();
  });

  const failing: Array<[string, Migration['up']]> = [
    [
      'a function migration that throws midway',
      (db) => {
        db.exec('CREATE TABLE t2(x); INSERT INTO t2 VALUES (1);');
        db.exec("UPDATE settings SET value = '\"changed\"'");
        throw new Error('boom');
      },
    ],
    ['an SQL migration that fails midway', "CREATE TABLE t2(x); UPDATE settings SET value = '1'; INSERT INTO no_such_table VALUES (1);"],
  ];
  for (const [label, up] of failing) {
    test(`${label} leaves user_version and the schema as they were`, () => {
      const dir = populatedDir();
      const file = join(dir, 'spindle.db');
      const settingsBefore = openStore({ dataDir: dir });
      const valuesBefore = settingsBefore.settings.getAll();
      settingsBefore.close();
      const next: Migration = { version: LATEST_SCHEMA_VERSION + 1, name: 'broken', up };
      expectStoreError(
        () => openStore({ dataDir: dir, migrations: [...migrations, next] }),
        'STORE_MIGRATION_FAILED',
        new RegExp(`to schema ${LATEST_SCHEMA_VERSION + 1} \\(broken\\).*still at schema ${LATEST_SCHEMA_VERSION}\\.$`),
      );
      assert.equal(existsSync(join(dir, 'spindle.lock')), false, 'lock released after failure');
      const raw = new Database(file, { readonly: true });
      assert.equal(raw.pragma('user_version', { simple: true }), LATEST_SCHEMA_VERSION);
      assert.equal(raw.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 't2'").pluck().get(), 0);
      raw.close();
      const store = openStore({ dataDir: dir });
      assert.deepEqual(store.settings.getAll(), valuesBefore);
      store.close();
    });
  }

  test('a failing first migration leaves a fresh db at schema 0, and a later open succeeds', () => {
    const dir = tempDir();
    const broken: Migration[] = [{ version: 1, name: 'broken', up: 'CREATE TABLE a(x); SELECT * FROM nope;' }];
    expectStoreError(() => openStore({ dataDir: dir, migrations: broken }), 'STORE_MIGRATION_FAILED', /still at schema 0/);
    const store = openStore({ dataDir: dir });
    assert.equal(store.schemaVersion, LATEST_SCHEMA_VERSION);
    store.close();
  });
});
