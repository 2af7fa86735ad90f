// The config repositories: targets with LUNs, ACLs and portals, backstores,
// access requests, remote targets; every rule with its code; transactions
// that leave nothing half-made, even across kill -9.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { RepoError, openStore, type RepoErrorCode, type Store, type TargetInput } from '../../src-main/store/index';

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'spindle-targets-test-'));
  roots.push(dir);
  return dir;
}

function fresh(): Store {
  return openStore({ dataDir: tempDir() });
}

function expectCode(fn: () => unknown, code: RepoErrorCode, message?: RegExp): RepoError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof RepoError, `expected RepoError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}

/** Entries of secrets.json (empty when it does not exist). */
function secretEntries(store: Store): Record<string, unknown> {
  try {
    return (JSON.parse(readFileSync(store.secrets.path, 'utf8')) as { entries: Record<string, unknown> }).entries;
  } catch {
    return {};
  }
}

function counts(store: Store): Record<string, number> {
  const db = new Database(store.path, { readonly: true });
  try {
    const out: Record<string, number> = {};
    for (const t of ['targets', 'luns', 'acls', 'portals', 'backstores']) out[t] = db.prepare(`SELECT count(*) FROM ${t}`).pluck().get() as number;
    return out;
  } finally {
    db.close();
  }
}

const IQN = 'iqn.2026-01.net.example:disk1';
const IQN2 = 'iqn.2026-01.net.example:disk2';
const WIN = 'iqn.1991-05.com.microsoft:desktop-1';
const LINUX = 'iqn.2004-10.com.ubuntu:01:abcdef';
const SECRET = 'correct-horse1';
const MUTUAL = 'battery-staple2';

const fullTarget = (dir = '/srv/spindle'): TargetInput => ({
  iqn: IQN,
  alias: 'Games disk',
  luns: [
    { lun: 0, backstore: { kind: 'file', path: `${dir}/games.img`, sizeBytes: 20 * 1024 ** 3 } },
    { lun: 1, backstore: { kind: 'memory', sizeBytes: 64 * 1024 ** 2 } },
    { lun: 2, backstore: { kind: 'block', path: '/dev/sdz' }, readOnly: true },
  ],
  acls: [
    { initiatorIqn: WIN, chap: { user: 'win', secret: SECRET }, mutualChap: { user: 'tgt', secret: MUTUAL } },
    { initiatorIqn: LINUX },
  ],
  portals: [{ host: '192.168.1.10', port: 3261 }],
});

describe('targets', () => {
  test('create, list, get (by id, IQN in any case), and it all survives a reopen', () => {
    const dir = tempDir();
    let store = openStore({ dataDir: dir });
    const t = store.targets.create(fullTarget());
    assert.equal(t.iqn, IQN);
    assert.equal(t.alias, 'Games disk');
    assert.equal(t.enabled, true);
    assert.deepEqual(
      t.luns.map((l) => [l.lun, l.backstore.kind, l.readOnly]),
      [
        [0, 'file', false],
        [1, 'memory', false],
        [2, 'block', true],
      ],
    );
    assert.equal(t.luns[0]!.backstore.name, 'games');
    assert.equal(t.luns[0]!.backstore.thin, true, 'image files are thin by default');
    assert.match(t.luns[0]!.backstore.wwn, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      t.acls.map((a) => [a.initiatorIqn, a.chapUser, a.mutualUser]),
      [
        [WIN, 'win', 'tgt'],
        [LINUX, null, null],
      ],
    );
    assert.deepEqual(t.portals.map((p) => [p.host, p.port]), [['192.168.1.10', 3261]]);
    store.close();

    store = openStore({ dataDir: dir });
    assert.deepEqual(store.targets.list(), [t]);
    assert.deepEqual(store.targets.get(t.id), t);
    assert.deepEqual(store.targets.get(String(t.id)), t);
    assert.deepEqual(store.targets.get(IQN.toUpperCase()), t);
    assert.equal(store.targets.get('iqn.2026-01.net.example:nope'), undefined);
    store.close();
  });

  test('list() returns every target with its own LUNs, ACLs and portals, sorted by IQN', () => {
    const store = fresh();
    store.targets.create({ iqn: IQN2, luns: [{ lun: 3, backstore: { kind: 'memory', sizeBytes: 4096 } }], acls: [{ initiatorIqn: LINUX }] });
    store.targets.create({ iqn: IQN, luns: [{ lun: 0, backstore: { kind: 'memory', sizeBytes: 8192 } }] });
    const list = store.targets.list();
    assert.deepEqual(list.map((t) => t.iqn), [IQN, IQN2]);
    assert.deepEqual(list.map((t) => t.luns.map((l) => l.lun)), [[0], [3]]);
    assert.deepEqual(list.map((t) => t.acls.length), [0, 1]);
    store.close();
  });

  test('names are validated and normalized; duplicates are refused', () => {
    const store = fresh();
    expectCode(() => store.targets.create({ iqn: 'disk1' }), 'INVALID_IQN', /iqn\.2026-11\.net\.example:disk1/);
    expectCode(() => store.targets.create({ iqn: 'iqn.2026-13.net.example:x' }), 'INVALID_IQN', /month/);
    const t = store.targets.create({ iqn: 'IQN.2026-01.NET.Example:Disk1' });
    assert.equal(t.iqn, IQN);
    expectCode(() => store.targets.create({ iqn: IQN }), 'TARGET_EXISTS', /already exists/);
    expectCode(() => store.targets.create({ iqn: IQN2, acls: [{ initiatorIqn: 'has space' }] }), 'INVALID_INITIATOR_NAME');
    // initiator names from the field that break the iqn. grammar are accepted, like the login accepts them
    const ok = store.targets.create({ iqn: IQN2, acls: [{ initiatorIqn: 'iqn.1991-05.com.microsoft:My_PC' }] });
    assert.equal(ok.acls[0]!.initiatorIqn, 'iqn.1991-05.com.microsoft:my_pc');
    expectCode(() => store.targets.create({ iqn: 'iqn.2026-01.net.example:x', luns: 'nope' as never }), 'INVALID_INPUT');
    store.close();
  });

  test('update renames and re-labels; setEnabled keeps a reason only while disabled', () => {
    const store = fresh();
    const t = store.targets.create({ iqn: IQN, alias: 'a' });
    store.targets.create({ iqn: IQN2 });
    expectCode(() => store.targets.update(t.id, { iqn: IQN2 }), 'TARGET_EXISTS');
    const renamed = store.targets.update(t.id, { iqn: 'iqn.2026-01.net.example:renamed', alias: null });
    assert.equal(renamed.iqn, 'iqn.2026-01.net.example:renamed');
    assert.equal(renamed.alias, null);
    const off = store.targets.setEnabled(t.id, false, '/srv/games.img is missing');
    assert.deepEqual([off.enabled, off.disabledReason], [false, '/srv/games.img is missing']);
    const on = store.targets.setEnabled(t.id, true, 'ignored');
    assert.deepEqual([on.enabled, on.disabledReason], [true, null]);
    expectCode(() => store.targets.setEnabled('iqn.2026-01.net.example:ghost', true), 'TARGET_NOT_FOUND');
    store.close();
  });

  test('remove drops LUNs, ACLs, own portals, secrets and the backstores nothing else uses', () => {
    const store = fresh();
    const t = store.targets.create(fullTarget());
    store.targets.create({ iqn: IQN2, luns: [{ lun: 0, backstore: { id: t.luns[0]!.backstore.id }, readOnly: true }] });
    assert.equal(Object.keys(secretEntries(store)).length, 2);
    assert.equal(store.targets.remove(IQN), true);
    assert.equal(store.targets.remove(IQN), false);
    assert.deepEqual(
      store.backstores.list().map((b) => b.name),
      ['games'],
      'the image shared with the other target stays; memory and block go',
    );
    assert.deepEqual(secretEntries(store), {});
    assert.deepEqual(counts(store), { targets: 1, luns: 1, acls: 0, portals: 0, backstores: 1 });
    store.targets.remove(IQN2, { keepBackstores: true });
    assert.equal(store.backstores.list().length, 1);
    store.close();
  });
});

describe('LUNs and backstores', () => {
  test('a backing store cannot be in two read-write LUNs; read-only sharing is fine', () => {
    const store = fresh();
    store.targets.create({ iqn: IQN, luns: [{ lun: 0, backstore: { kind: 'file', path: '/srv/disk.img', sizeBytes: 1 << 20 } }] });
    const err = expectCode(
      () => store.targets.create({ iqn: IQN2, luns: [{ lun: 0, backstore: { kind: 'file', path: '/srv/disk.img' } }] }),
      'BACKSTORE_IN_USE',
    );
    assert.equal(err.message, `/srv/disk.img is already LUN 0 of ${IQN}; share it read-only or remove that LUN first`);
    assert.equal(store.targets.get(IQN2), undefined);
    expectCode(() => store.luns.add(IQN, { lun: 1, backstore: { kind: 'file', path: '/srv/disk.img' } }), 'BACKSTORE_IN_USE');

    const reader = store.targets.create({ iqn: IQN2, luns: [{ lun: 0, backstore: { kind: 'file', path: '/srv/disk.img' }, readOnly: true }] });
    assert.equal(reader.luns[0]!.backstore.id, store.targets.get(IQN)!.luns[0]!.backstore.id, 'one backstore row per path');
    expectCode(() => store.luns.setReadOnly(IQN2, 0, false), 'BACKSTORE_IN_USE', /already LUN 0 of iqn\.2026-01\.net\.example:disk1/);
    store.luns.remove(IQN, 0);
    assert.equal(store.luns.setReadOnly(IQN2, 0, false).readOnly, false, 'once the writer is gone, the reader may write');

    // memory backstores follow the same rule
    const mem = store.backstores.create({ kind: 'memory', sizeBytes: 4096, name: 'scratch' });
    store.luns.add(IQN, { lun: 5, backstore: { id: mem.id } });
    expectCode(() => store.luns.add(IQN2, { lun: 5, backstore: { name: 'scratch' } }), 'BACKSTORE_IN_USE', /memory backstore "scratch" is already LUN 5/);
    store.close();
  });

  test('a read-only backstore makes its LUNs read-only', () => {
    const store = fresh();
    const t = store.targets.create({
      iqn: IQN,
      luns: [
        { lun: 0, backstore: { kind: 'file', path: '/iso/debian.iso', readOnly: true } },
        { lun: 1, backstore: { kind: 'file', path: '/srv/a.img' } },
      ],
    });
    assert.equal(t.luns[0]!.readOnly, true);
    expectCode(() => store.luns.setReadOnly(IQN, 0, false), 'BACKSTORE_IN_USE', /read-only backstore/);
    const b = store.backstores.update(t.luns[1]!.backstore.id, { readOnly: true });
    assert.equal(b.readOnly, true);
    assert.equal(store.luns.get(IQN, 1)!.readOnly, true);
    store.close();
  });

  test('backstore descriptions are checked', () => {
    const store = fresh();
    const t = store.targets.create({ iqn: IQN });
    const add = (backstore: unknown) => () => store.luns.add(t.id, { lun: 0, backstore: backstore as never });
    expectCode(add({ kind: 'tape', path: '/dev/st0' }), 'BACKSTORE_INVALID', /file, a block device or memory/);
    expectCode(add({ kind: 'memory' }), 'BACKSTORE_INVALID', /size/);
    expectCode(add({ kind: 'memory', sizeBytes: 1000 }), 'BACKSTORE_INVALID', /512-byte blocks/);
    expectCode(add({ kind: 'memory', sizeBytes: 4096, path: '/x' }), 'BACKSTORE_INVALID', /no path/);
    expectCode(add({ kind: 'file' }), 'BACKSTORE_INVALID', /image file path/);
    expectCode(add({ kind: 'file', path: 'relative/disk.img' }), 'BACKSTORE_INVALID', /absolute/);
    expectCode(add({ kind: 'file', path: '/a.img', name: 'bad/name' }), 'BACKSTORE_INVALID');
    expectCode(add({ id: 999 }), 'BACKSTORE_NOT_FOUND');
    expectCode(add({ name: 'nope' }), 'BACKSTORE_NOT_FOUND');
    store.backstores.create({ kind: 'file', path: '/a.img', sizeBytes: 4096, name: 'a' });
    expectCode(add({ kind: 'block', path: '/a.img' }), 'BACKSTORE_CONFLICT', /already a file backstore/);
    expectCode(add({ kind: 'file', path: '/a.img', sizeBytes: 8192 }), 'BACKSTORE_CONFLICT', /4096 bytes/);
    expectCode(add({ kind: 'file', path: '/b.img', name: 'a' }), 'BACKSTORE_NAME_TAKEN');
    expectCode(() => store.backstores.remove(store.luns.add(t.id, { lun: 0, backstore: { name: 'a' } }).backstore.id), 'BACKSTORE_IN_USE', /remove that LUN first/);
    assert.equal(store.targets.get(IQN)!.luns.length, 1);
    store.close();
  });

  test('LUN numbers: 0..16383, unique per target', () => {
    const store = fresh();
    const t = store.targets.create({ iqn: IQN });
    const mem = () => ({ kind: 'memory' as const, sizeBytes: 4096 });
    expectCode(() => store.luns.add(t.id, { lun: 16384, backstore: mem() }), 'LUN_OUT_OF_RANGE', /0 to 16383/);
    expectCode(() => store.luns.add(t.id, { lun: -1, backstore: mem() }), 'LUN_OUT_OF_RANGE');
    expectCode(() => store.luns.add(t.id, { lun: 1.5, backstore: mem() }), 'LUN_OUT_OF_RANGE');
    store.luns.add(t.id, { lun: 16383, backstore: mem() });
    expectCode(() => store.luns.add(t.id, { lun: 16383, backstore: mem() }), 'LUN_EXISTS');
    expectCode(() => store.luns.setReadOnly(t.id, 7, true), 'LUN_NOT_FOUND');
    expectCode(() => store.luns.add('iqn.2026-01.net.example:ghost', { lun: 0, backstore: mem() }), 'TARGET_NOT_FOUND');
    assert.equal(store.luns.remove(t.id, 7), false);
    assert.equal(store.luns.remove(t.id, 16383), true);
    assert.equal(store.backstores.list().length, 0, 'the memory backstore went with its LUN');
    assert.equal(store.backstores.list().length, 0);
    store.close();
  });

  test('creating a target with a duplicate LUN rolls back entirely: no target, backstores, ACLs or secrets', () => {
    const store = fresh();
    store.targets.create({ iqn: IQN2 }); // something that must survive
    const before = counts(store);
    const input = fullTarget();
    input.luns!.push({ lun: 1, backstore: { kind: 'file', path: '/srv/other.img' } });
    expectCode(() => store.targets.create(input), 'LUN_EXISTS', /LUN 1 already exists/);
    assert.equal(store.targets.get(IQN), undefined);
    assert.deepEqual(counts(store), before);
    assert.deepEqual(secretEntries(store), {}, 'secrets written for the ACLs were deleted again');

    // the same input with a bad ACL after the LUNs: also nothing left
    const input2 = fullTarget();
    input2.acls!.push({ initiatorIqn: 'iqn.x:short', chap: { user: 'u', secret: 'short' } });
    expectCode(() => store.targets.create(input2), 'INVALID_CHAP', /shorter than 12 bytes/);
    assert.deepEqual(counts(store), before);
    assert.deepEqual(secretEntries(store), {});
    store.close();
  });

  test('store.transaction makes several repository calls one change', () => {
    const store = fresh();
    assert.throws(
      () =>
        store.transaction(() => {
          store.targets.create(fullTarget());
          store.acls.add(IQN, { initiatorIqn: 'iqn.x:third', chap: { user: 'x', secret: 'third-secret-1' } });
          throw new Error('changed my mind');
        }),
      /changed my mind/,
    );
    assert.deepEqual(counts(store), { targets: 0, luns: 0, acls: 0, portals: 0, backstores: 0 });
    assert.deepEqual(secretEntries(store), {});

    // a nested failure rolls back only its part, and the secret dropped by a rolled-back removal survives
    store.targets.create(fullTarget());
    const acl = store.acls.find(IQN, WIN)!;
    store.transaction(() => {
      assert.throws(() =>
        store.transaction(() => {
          store.acls.remove(acl.id);
          throw new Error('undo');
        }),
      );
      store.targets.create({ iqn: IQN2 });
    });
    assert.equal(store.acls.credentials(acl.id).chap!.secret, SECRET);
    assert.ok(store.targets.get(IQN2));
    store.close();
  });
});

describe('ACLs and portals', () => {
  test('add, find, CHAP rules, credentials, setChap, remove', () => {
    const store = fresh();
    store.targets.create({ iqn: IQN });
    const a = store.acls.add(IQN, { initiatorIqn: WIN.toUpperCase() });
    assert.equal(a.initiatorIqn, WIN);
    expectCode(() => store.acls.add(IQN, { initiatorIqn: WIN }), 'ACL_EXISTS', /already allowed/);
    expectCode(() => store.acls.add(IQN, { initiatorIqn: LINUX, chap: { user: 'u', secret: 'short' } }), 'INVALID_CHAP', /12/);
    expectCode(() => store.acls.add(IQN, { initiatorIqn: LINUX, chap: { user: '', secret: SECRET } }), 'INVALID_CHAP', /user name is empty/);
    expectCode(() => store.acls.add(IQN, { initiatorIqn: LINUX, mutualChap: { user: 'm', secret: MUTUAL } }), 'INVALID_CHAP', /one-way/);
    expectCode(
      () => store.acls.add(IQN, { initiatorIqn: LINUX, chap: { user: 'u', secret: SECRET }, mutualChap: { user: 'm', secret: SECRET } }),
      'INVALID_CHAP',
      /must differ/,
    );
    assert.deepEqual(store.acls.credentials(a.id), { initiatorIqn: WIN, chap: null, mutualChap: null });
    const withChap = store.acls.setChap(a.id, { user: 'win', secret: SECRET }, { user: 'tgt', secret: MUTUAL });
    assert.deepEqual([withChap.chapUser, withChap.mutualUser], ['win', 'tgt']);
    assert.deepEqual(store.acls.credentials(a.id).chap, { user: 'win', secret: SECRET });
    store.acls.setChap(a.id, { user: 'win2', secret: 'another-secret' });
    assert.equal(Object.keys(secretEntries(store)).length, 1, 'replaced secrets are deleted');
    assert.equal(store.acls.find(IQN, WIN)!.chapUser, 'win2');
    assert.equal(store.acls.removeFor(IQN, WIN), true);
    assert.equal(store.acls.remove(a.id), false);
    expectCode(() => store.acls.credentials(a.id), 'ACL_NOT_FOUND');
    assert.deepEqual(secretEntries(store), {});
    store.close();
  });

  test('portals: shared ones serve every target; ports and hosts are checked', () => {
    const store = fresh();
    store.targets.create({ iqn: IQN, portals: [{ host: '[FE80::0001]', port: 3261 }] });
    const shared = store.portals.add({ host: '0.0.0.0' });
    assert.deepEqual([shared.targetId, shared.host, shared.port], [null, '0.0.0.0', 3260]);
    expectCode(() => store.portals.add({ host: '0.0.0.0', port: 3260 }), 'PORTAL_EXISTS');
    expectCode(() => store.portals.add({ host: '0.0.0.0', port: 0 }), 'PORTAL_INVALID', /1 to 65535/);
    expectCode(() => store.portals.add({ host: '0.0.0.0', port: 65536 }), 'PORTAL_INVALID');
    expectCode(() => store.portals.add({ host: 'not a host!' }), 'PORTAL_INVALID');
    expectCode(() => store.portals.add({ host: '10.0.0.1', target: IQN2 }), 'TARGET_NOT_FOUND');
    assert.deepEqual(
      store.portals.effective(IQN).map((p) => `${p.host}/${p.port}`),
      ['0.0.0.0/3260', 'fe80::1/3261'],
    );
    assert.deepEqual(store.portals.list({ target: null }).map((p) => p.id), [shared.id]);
    assert.equal(store.portals.remove(shared.id), true);
    store.close();
  });
});

describe('access requests', () => {
  test('record dedupes per initiator and target, counts, and keeps the decision', () => {
    const store = fresh();
    store.targets.create({ iqn: IQN });
    const first = store.accessRequests.record({ initiatorIqn: WIN, address: '192.168.1.20', targetIqn: IQN, at: '2026-01-01T10:00:00Z' });
    assert.equal(first.isNew, true);
    assert.equal(first.count, 1);
    const again = store.accessRequests.record({ initiatorIqn: WIN.toUpperCase(), address: '192.168.1.21', targetIqn: IQN, at: '2026-01-01T10:05:00Z' });
    assert.deepEqual(
      { id: again.id, isNew: again.isNew, count: again.count, address: again.address, firstSeen: again.firstSeen, lastSeen: again.lastSeen },
      { id: first.id, isNew: false, count: 2, address: '192.168.1.21', firstSeen: '2026-01-01T10:00:00.000Z', lastSeen: '2026-01-01T10:05:00.000Z' },
    );
    const other = store.accessRequests.record({ initiatorIqn: WIN, address: '192.168.1.20', targetIqn: IQN2 });
    assert.notEqual(other.id, first.id, 'another target is another request');
    assert.equal(store.accessRequests.list({ pending: true }).length, 2);

    const denied = store.accessRequests.decide(first.id, 'denied');
    assert.equal(denied.decision, 'denied');
    const third = store.accessRequests.record({ initiatorIqn: WIN, address: '192.168.1.20', targetIqn: IQN });
    assert.deepEqual([third.count, third.decision], [3, 'denied']);
    assert.deepEqual(store.accessRequests.list({ pending: true }).map((r) => r.id), [other.id]);
    assert.deepEqual(store.accessRequests.list({ pending: false }).map((r) => r.id), [first.id]);
    assert.deepEqual(store.accessRequests.find(WIN, IQN).map((r) => r.id), [first.id]);
    expectCode(() => store.accessRequests.decide(999, 'allowed'), 'REQUEST_NOT_FOUND');
    expectCode(() => store.accessRequests.decide(first.id, 'maybe' as never), 'INVALID_INPUT');
    expectCode(() => store.accessRequests.record({ initiatorIqn: 'bad name', address: 'x', targetIqn: IQN }), 'INVALID_INITIATOR_NAME');
    store.close();
  });

  test('allow adds the ACL and records the decision in one step; adding the ACL by hand settles the request too', () => {
    const store = fresh();
    store.targets.create({ iqn: IQN });
    const req = store.accessRequests.record({ initiatorIqn: WIN, address: '10.0.0.5', targetIqn: IQN });
    const { request, acl } = store.accessRequests.allow(req.id, { chap: { user: 'win', secret: SECRET } });
    assert.equal(request.decision, 'allowed');
    assert.equal(acl.initiatorIqn, WIN);
    assert.equal(store.acls.credentials(acl.id).chap!.secret, SECRET);
    assert.equal(store.accessRequests.allow(req.id).acl.id, acl.id, 'allowing twice keeps the one ACL');

    const req2 = store.accessRequests.record({ initiatorIqn: LINUX, address: '10.0.0.6', targetIqn: IQN });
    store.acls.add(IQN, { initiatorIqn: LINUX });
    assert.equal(store.accessRequests.get(req2.id)!.decision, 'allowed');

    const orphan = store.accessRequests.record({ initiatorIqn: LINUX, address: '10.0.0.6', targetIqn: IQN2 });
    expectCode(() => store.accessRequests.allow(orphan.id), 'TARGET_NOT_FOUND', /no longer exists/);
    assert.equal(store.accessRequests.remove(orphan.id), true);
    store.close();
  });
});

describe('remote targets', () => {
  test('save upserts by portal and IQN; mount points are unique; credentials only on request', () => {
    const store = fresh();
    const r = store.remotes.save({ host: 'NAS.local', iqn: 'iqn.2004-04.com.qnap:ts-451:iscsi.backup', chap: { user: 'me', secret: SECRET }, autoConnect: true, mountPoint: '/mnt/backup' });
    assert.deepEqual([r.host, r.port, r.autoConnect, r.mountLun, r.mountPoint, r.chapUser], ['nas.local', 3260, true, 0, '/mnt/backup', 'me']);
    const same = store.remotes.save({ host: 'nas.local', port: 3260, iqn: 'iqn.2004-04.com.qnap:ts-451:iscsi.backup', autoConnect: false });
    assert.equal(same.id, r.id);
    assert.equal(same.autoConnect, false);
    assert.equal(same.chapUser, 'me', 'fields not given are kept');
    expectCode(() => store.remotes.save({ host: 'nas2', iqn: 'iqn.2004-04.com.qnap:x', mountPoint: '/mnt/backup' }), 'MOUNT_POINT_IN_USE');
    expectCode(() => store.remotes.save({ host: 'nas2', port: 0, iqn: 'iqn.2004-04.com.qnap:x' }), 'PORTAL_INVALID');
    expectCode(() => store.remotes.update(999, { autoConnect: true }), 'REMOTE_NOT_FOUND');
    assert.deepEqual(store.remotes.credentials(r.id), { chap: { user: 'me', secret: SECRET }, mutualChap: null });
    store.remotes.update(r.id, { chap: null });
    assert.deepEqual(secretEntries(store), {});
    assert.ok(!JSON.stringify(store.remotes.list()).includes(SECRET));
    assert.equal(store.remotes.remove(r.id), true);
    store.close();
  });
});

describe('crash safety (kill -9 in the middle of a change)', () => {
  const storeUrl = new URL('../../src-main/store/index.ts', import.meta.url).href;

  /**
   * In a child process: commit one target, then start creating a big one and
   * SIGKILL the process from inside SQLite once `table` holds `nth` rows
   * (committed ones included; a TEMP trigger calls a function that kills the
   * process). Pages
   * are spilled to the WAL before commit (tiny cache), so the crash leaves
   * uncommitted frames behind.
   */
  function crashDuringCreate(table: string, nth: number, wrapInOuterTransaction = false): string {
    const dir = tempDir();
    const script = `
      import { openStore } from ${JSON.stringify(storeUrl)};
      let raw;
      const store = openStore({ dataDir: ${JSON.stringify(dir)}, onConnection: (db) => { raw = db; } });
      store.targets.create({ iqn: 'iqn.2026-01.net.example:committed', luns: [{ lun: 0, backstore: { kind: 'memory', sizeBytes: 4096 } }],
        acls: [{ initiatorIqn: 'iqn.x:keep', chap: { user: 'keep', secret: 'keep-secret-123' } }] });
      raw.pragma('cache_size = 1');
      raw.function('crash_now', () => { process.kill(process.pid, 'SIGKILL'); for (;;) {} });
      raw.exec(\`CREATE TEMP TRIGGER crash AFTER INSERT ON main.${table}
                WHEN (SELECT count(*) FROM main.${table}) >= ${nth}
                BEGIN SELECT crash_now(); END;\`);
      const big = {
        iqn: 'iqn.2026-01.net.example:half-made', alias: 'x'.repeat(200),
        luns: Array.from({ length: 8 }, (_, i) => ({ lun: i, backstore: { kind: 'file', path: '/srv/img' + i + '.img', sizeBytes: 1048576 } })),
        acls: Array.from({ length: 4 }, (_, i) => ({ initiatorIqn: 'iqn.x:host' + i, chap: { user: 'u' + i, secret: 'secret-number-' + i } })),
        portals: [{ host: '10.0.0.1' }, { host: '10.0.0.2' }],
      };
      if (${wrapInOuterTransaction}) {
        store.transaction(() => {
          store.targets.create({ ...big, iqn: 'iqn.2026-01.net.example:first-of-two', luns: [], acls: [{ initiatorIqn: 'iqn.x:a', chap: { user: 'a', secret: 'aaaaaaaaaaaa' } }], portals: [] });
          store.targets.create(big);
        });
      } else {
        store.targets.create(big);
      }
      console.log('not killed');`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(child.signal, 'SIGKILL', `child was not killed: ${child.stdout} ${child.stderr}`);
    return dir;
  }

  // [label, table, rows when killed (the committed target has 1 backstore, 1 target, 1 LUN, 1 ACL), outer transaction, secrets left behind]
  const cases: Array<[string, string, number, boolean, number]> = [
    ['after the first backstore', 'backstores', 2, false, 1],
    ['after the target row', 'targets', 2, false, 1],
    ['after the fifth LUN', 'luns', 6, false, 1],
    ['after the second ACL (its secrets already written)', 'acls', 3, false, 3],
    ['after the last portal, just before COMMIT', 'portals', 2, false, 5],
    ['in the second create of an outer transaction', 'luns', 4, true, 2],
  ];
  for (const [label, table, nth, outer, secretsAtCrash] of cases) {
    test(`a kill -9 ${label} leaves no half-made target`, () => {
      const dir = crashDuringCreate(table, nth, outer);
      assert.ok(statSync(join(dir, 'spindle.db-wal')).size > 0, 'the crash should leave a -wal');
      const leftBehind = JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8')) as { entries: object };
      assert.equal(Object.keys(leftBehind.entries).length, secretsAtCrash, 'secrets in the file at the moment of the crash');
      const store = openStore({ dataDir: dir });
      const targets = store.targets.list();
      assert.deepEqual(targets.map((t) => t.iqn), ['iqn.2026-01.net.example:committed']);
      assert.deepEqual(counts(store), { targets: 1, luns: 1, acls: 1, portals: 0, backstores: 1 });
      assert.deepEqual(Object.keys(secretEntries(store)).length, 1, 'secrets of the half-made target are dropped on open');
      assert.equal(store.acls.credentials(targets[0]!.acls[0]!.id).chap!.secret, 'keep-secret-123');
      const check = new Database(store.path, { readonly: true });
      assert.deepEqual(check.prepare('PRAGMA integrity_check').pluck().all(), ['ok']);
      assert.deepEqual(check.prepare('PRAGMA foreign_key_check').all(), []);
      check.close();
      store.close();
    });
  }
});
