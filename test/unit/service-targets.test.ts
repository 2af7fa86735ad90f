// The service's targets API driven directly (createService), against a real
// SQLite file and — when serving — a real loopback portal that Spindle's own
// raw test initiator logs in to: validation with a message per field, ApiError
// codes, events (targets.changed, requests.new from a real refused login,
// sessions.opened/closed), concurrent changes, and restore on start.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { ApiError, type EventName, type EventPayloads, type MethodName, type MethodParams } from '../../src-main/service/api/schema';
import { createService, type Service } from '../../src-main/service/service';
import { RawIscsi } from '../support/raw-iscsi';

const NS = 'iqn.2026-11.net.spindle.test';
const ALLOWED = `${NS}:unit-allowed`;
const STRANGER = `${NS}:unit-stranger`;

const roots: string[] = [];
const services: Service[] = [];
after(async () => {
  for (const s of services) await s.close().catch(() => undefined);
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'spindle-svc-unit-'));
  roots.push(dir);
  return dir;
}

async function open(dataDir: string, serving: boolean): Promise<Service> {
  const s = await createService({
    dataDir,
    transport: 'cli',
    serveTargets: serving,
    ...(serving ? { portals: [{ host: '127.0.0.1', port: 0 }] } : {}),
  });
  services.push(s);
  return s;
}

/** Expects `p` to reject with ApiError `code`; returns it. */
async function rejects(p: Promise<unknown>, code: string, fields?: string[]): Promise<ApiError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ApiError, `expected ApiError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.message.includes('\n'), false, 'one line');
  for (const f of fields ?? []) assert.ok(caught.fields?.[f], `fields.${f} in ${JSON.stringify(caught.fields)}`);
  return caught;
}

/** Collects every payload of `event` from now on. */
function collect<E extends EventName>(s: Service, event: E): EventPayloads[E][] {
  const got: EventPayloads[E][] = [];
  s.on(event, (p) => got.push(p));
  return got;
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function portOf(s: Service): number {
  const [p] = s.portals();
  assert.ok(p, 'the service listens');
  return Number(p.slice(p.lastIndexOf(':') + 1));
}

/** One login with Spindle's raw test initiator; returns the outcome and closes. */
async function login(port: number, initiatorName: string, targetName: string): Promise<{ ok: boolean; statusClass?: number; statusDetail?: number }> {
  const c = await RawIscsi.connect('127.0.0.1', port);
  try {
    const r = await c.login({ initiatorName, targetName });
    return r.ok ? { ok: true } : { ok: false, statusClass: r.statusClass, statusDetail: r.statusDetail };
  } finally {
    c.destroy();
  }
}

const memoryTarget = (iqn: string, acls: string[] = [ALLOWED]): MethodParams<'targets.create'> => ({
  iqn,
  luns: [{ lun: 0, backstore: { kind: 'memory', sizeBytes: 4 * 1024 * 1024 } }],
  acls: acls.map((initiatorIqn) => ({ initiatorIqn })),
});

// ---- validation -----------------------------------------------------------------------

describe('validation at the boundary (no serving)', () => {
  test('each bad field is named in `fields`, with a message, and nothing is stored', async () => {
    const dir = tempDir();
    const s = await open(join(dir, 'data'), false);
    await s.call('targets.create', memoryTarget(`${NS}:v-base`));
    const before = await s.call('targets.list');

    const bad: Array<[string, MethodName, unknown, string, string[]]> = [
      ['bad IQN', 'targets.create', { iqn: 'iqn.2026-13.x' }, 'INVALID_PARAMS', ['iqn']],
      ['eui. with the wrong length', 'targets.create', { iqn: 'eui.0123' }, 'INVALID_PARAMS', ['iqn']],
      ['11-byte CHAP secret', 'targets.create', { iqn: `${NS}:v1`, acls: [{ initiatorIqn: ALLOWED, chap: { user: 'u', secret: '12345678901' } }] }, 'INVALID_PARAMS', ['acls.0.chap.secret']],
      ['17-byte CHAP secret', 'acls.add', { target: `${NS}:v-base`, initiatorIqn: STRANGER, chap: { user: 'u', secret: '12345678901234567' } }, 'INVALID_PARAMS', ['chap.secret']],
      ['LUN out of range', 'luns.add', { target: `${NS}:v-base`, lun: 16384, backstore: { kind: 'memory', sizeBytes: 4096 } }, 'INVALID_PARAMS', ['lun']],
      ['two bad fields at once', 'targets.create', { iqn: 'nope', luns: [{ lun: -1, backstore: { kind: 'memory', sizeBytes: 0 } }] }, 'INVALID_PARAMS', ['iqn', 'luns.0.lun', 'luns.0.backstore.sizeBytes']],
      ['unknown key', 'targets.create', { iqn: `${NS}:v2`, colour: 'red' }, 'INVALID_PARAMS', []],
      ['id and initiator both', 'requests.allow', { id: 1, initiatorIqn: STRANGER }, 'INVALID_PARAMS', []],
      ['bad initiator name', 'acls.add', { target: `${NS}:v-base`, initiatorIqn: 'not-an-iqn' }, 'INVALID_PARAMS', ['initiatorIqn']],
    ];
    for (const [what, method, params, code, fields] of bad) {
      const err = await rejects(s.call(method, params as never), code, fields);
      for (const f of fields) assert.ok((err.fields?.[f] ?? '').length > 3, `${what}: a message for ${f}`);
    }
    assert.deepEqual(await s.call('targets.list'), before);
  });

  test('service-level checks name their field too: missing image, same image read-write twice, not an image file', async () => {
    const dir = tempDir();
    const s = await open(join(dir, 'data'), false);
    const img = join(dir, 'a.img');
    await s.call('targets.create', { iqn: `${NS}:v-img`, luns: [{ lun: 0, backstore: { kind: 'file', path: img, create: true, sizeBytes: 1024 * 1024 } }] });
    const before = await s.call('targets.list');

    const missing = await rejects(
      s.call('targets.create', { iqn: `${NS}:v-missing`, luns: [{ lun: 0, backstore: { kind: 'file', path: join(dir, 'absent.img') } }] }),
      'BACKSTORE_MISSING',
    );
    assert.deepEqual(Object.keys(missing.fields ?? {}), ['luns.0.backstore.path']);
    const dup = await rejects(s.call('luns.add', { target: `${NS}:v-img`, lun: 1, backstore: { kind: 'file', path: img } }), 'BACKSTORE_IN_USE');
    assert.ok(dup.fields && Object.keys(dup.fields).length > 0, `BACKSTORE_IN_USE names a field: ${JSON.stringify(dup.fields)}`);
    await rejects(s.call('targets.create', { iqn: `${NS}:v-dir`, luns: [{ lun: 0, backstore: { kind: 'file', path: dir } }] }), 'BACKSTORE_WRONG_KIND', ['luns.0.backstore.path']);
    await rejects(s.call('targets.create', { iqn: `${NS}:v-blk`, luns: [{ lun: 0, backstore: { kind: 'block', path: img } }] }), 'BACKSTORE_WRONG_KIND', ['luns.0.backstore.path']);
    // The image a refused create made is removed again.
    const twice = join(dir, 'twice.img');
    await assert.rejects(
      s.call('targets.create', {
        iqn: `${NS}:v-twice`,
        luns: [
          { lun: 0, backstore: { kind: 'file', path: twice, create: true, sizeBytes: 1024 * 1024 } },
          { lun: 1, backstore: { kind: 'file', path: twice } },
        ],
      }),
      ApiError,
    );
    assert.equal(existsSync(twice), false);
    await rejects(s.call('images.create', { path: join(dir, 'huge.img'), sizeBytes: 2 ** 52 }), 'IMAGE_NO_SPACE', ['sizeBytes']);
    assert.deepEqual(await s.call('targets.list'), before);
  });

  test('ApiError codes: not found, exists, unknown method, closed', async () => {
    const dir = tempDir();
    const s = await open(join(dir, 'data'), false);
    await s.call('targets.create', memoryTarget(`${NS}:codes`));
    await rejects(s.call('targets.get', { target: `${NS}:nope` }), 'TARGET_NOT_FOUND', ['target']);
    await rejects(s.call('targets.delete', { target: 999 }), 'TARGET_NOT_FOUND', ['target']);
    await rejects(s.call('targets.create', memoryTarget(`${NS}:codes`)), 'TARGET_EXISTS');
    await rejects(s.call('targets.create', memoryTarget(`${NS}:CODES`)), 'TARGET_EXISTS'); // IQNs compare case-insensitively
    await rejects(s.call('luns.remove', { target: `${NS}:codes`, lun: 9 }), 'LUN_NOT_FOUND', ['lun']);
    await rejects(s.call('luns.add', { target: `${NS}:codes`, lun: 0, backstore: { kind: 'memory', sizeBytes: 4096 } }), 'LUN_EXISTS');
    await rejects(s.call('acls.remove', { target: `${NS}:codes`, initiatorIqn: STRANGER }), 'ACL_NOT_FOUND', ['initiatorIqn']);
    await rejects(s.call('acls.add', { target: `${NS}:codes`, initiatorIqn: ALLOWED }), 'ACL_EXISTS');
    await rejects(s.call('requests.allow', { id: 42 }), 'REQUEST_NOT_FOUND', ['id']);
    await rejects(s.call('requests.deny', { initiatorIqn: STRANGER }), 'REQUEST_NOT_FOUND', ['initiatorIqn']);
    await rejects(s.call('sessions.kick', { id: 'nope' }), 'SESSION_NOT_FOUND', ['id']);
    await rejects(s.call('no.such' as MethodName), 'UNKNOWN_METHOD');
    assert.equal((await s.call('targets.get', { target: `${NS}:codes` })).state, 'stopped', 'not serving: stopped');
    assert.deepEqual(s.portals(), []);
    assert.deepEqual(await s.call('sessions.list'), []);
    await s.close();
    await rejects(s.call('targets.list'), 'SERVICE_CLOSED');
  });
});

// ---- events and access requests with a real portal --------------------------------------

describe('events and access requests (serving on 127.0.0.1:0)', () => {
  test('targets.changed on every change; a refused login → requests.new (deduplicated); allow lets the next login in; acls.remove shuts it', { timeout: 30_000 }, async () => {
    const dir = tempDir();
    const s = await open(join(dir, 'data'), true);
    const changed = collect(s, 'targets.changed');
    const requests = collect(s, 'requests.new');
    const opened = collect(s, 'sessions.opened');
    const closed = collect(s, 'sessions.closed');
    const iqn = `${NS}:events`;

    const t = await s.call('targets.create', memoryTarget(iqn));
    assert.equal(t.state, 'serving');
    assert.deepEqual(t.portals, s.portals());
    assert.equal(changed.length, 1);
    assert.equal(changed[0]![0]!.iqn, iqn);
    const port = portOf(s);

    // An allowed initiator: sessions.opened, then sessions.closed when it goes.
    assert.deepEqual(await login(port, ALLOWED, iqn), { ok: true });
    await until(() => opened.length === 1 && closed.length === 1, 'sessions.opened and sessions.closed');
    assert.equal(opened[0]!.initiatorIqn, ALLOWED);
    assert.equal(opened[0]!.targetIqn, iqn);
    assert.equal(opened[0]!.type, 'Normal');
    assert.equal(closed[0]!.id, opened[0]!.id);
    assert.equal(typeof closed[0]!.reason, 'string');

    // A stranger: refused with 0x0202, recorded once, announced.
    assert.deepEqual(await login(port, STRANGER, iqn), { ok: false, statusClass: 2, statusDetail: 2 });
    await until(() => requests.length === 1, 'requests.new');
    assert.equal(requests[0]!.initiatorIqn, STRANGER);
    assert.equal(requests[0]!.targetIqn, iqn);
    assert.equal(requests[0]!.isNew, true);
    assert.equal(requests[0]!.decision, null);
    assert.match(requests[0]!.address, /^127\.0\.0\.1/);
    // Hammering within a second is not written again.
    for (let i = 0; i < 3; i++) assert.equal((await login(port, STRANGER, iqn)).ok, false);
    let list = await s.call('requests.list');
    assert.equal(list.length, 1);
    assert.equal(list[0]!.count, 1);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await login(port, STRANGER, iqn)).ok, false);
    await until(() => requests.length === 2, 'requests.new again');
    assert.equal(requests[1]!.isNew, false);
    assert.equal(requests[1]!.count, 2);
    assert.equal(requests[1]!.id, requests[0]!.id, 'one request per initiator and target');
    // A refusal for a target that does not exist is not a request.
    assert.equal((await login(port, STRANGER, `${NS}:nope`)).ok, false);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await s.call('requests.list')).length, 1);

    // Allow by initiator name: the next login works, no restart.
    const before = changed.length;
    const allowed = await s.call('requests.allow', { initiatorIqn: STRANGER });
    assert.deepEqual(allowed.map((r) => [r.id, r.decision]), [[requests[0]!.id, 'allowed']]);
    assert.ok(changed.length > before, 'targets.changed after allow');
    assert.ok(changed.at(-1)!.find((x) => x.iqn === iqn)!.acls.some((a) => a.initiatorIqn === STRANGER));
    assert.deepEqual(await login(port, STRANGER, iqn), { ok: true });
    list = await s.call('requests.list', { pending: true });
    assert.equal(list.length, 0);

    // Remove the ACL again: the next login is refused.
    await s.call('acls.remove', { target: iqn, initiatorIqn: STRANGER });
    assert.equal((await login(port, STRANGER, iqn)).ok, false);

    // Deny: stays listed as denied; the initiator stays out.
    await s.call('targets.create', memoryTarget(`${NS}:events-2`));
    assert.equal((await login(port, STRANGER, `${NS}:events-2`)).ok, false);
    await until(() => requests.some((r) => r.targetIqn === `${NS}:events-2`), 'a request for events-2');
    const denied = await s.call('requests.deny', { initiatorIqn: STRANGER, target: `${NS}:events-2` });
    assert.equal(denied[0]!.decision, 'denied');
    assert.equal((await login(port, STRANGER, `${NS}:events-2`)).ok, false);

    // update / disable / delete each announce the new list.
    let n = changed.length;
    await s.call('targets.update', { target: iqn, alias: 'renamed' });
    assert.equal(changed.length, n + 1);
    assert.equal(changed.at(-1)!.find((x) => x.iqn === iqn)!.alias, 'renamed');
    n = changed.length;
    await s.call('targets.disable', { target: iqn });
    assert.equal(changed.at(-1)!.find((x) => x.iqn === iqn)!.state, 'disabled');
    assert.equal((await login(port, ALLOWED, iqn)).ok, false);
    await s.call('targets.delete', { target: iqn });
    assert.equal(changed.length, n + 2);
    assert.equal(changed.at(-1)!.some((x) => x.iqn === iqn), false);
  });

  test('sessions.list and sessions.kick see a live session', { timeout: 20_000 }, async () => {
    const dir = tempDir();
    const s = await open(join(dir, 'data'), true);
    const iqn = `${NS}:kick`;
    await s.call('targets.create', memoryTarget(iqn));
    const c = await RawIscsi.connect('127.0.0.1', portOf(s));
    try {
      assert.equal((await c.login({ initiatorName: ALLOWED, targetName: iqn })).ok, true);
      const sessions = await s.call('sessions.list');
      const mine = sessions.find((x) => x.initiatorIqn === ALLOWED);
      assert.ok(mine, JSON.stringify(sessions));
      assert.equal((await s.call('targets.get', { target: iqn })).sessions, 1);
      assert.deepEqual(await s.call('sessions.kick', { id: mine.id }), { kicked: mine.id });
      assert.equal(await c.waitClosed(3000), true, 'the kicked connection is closed');
      const gone = async () => !(await s.call('sessions.list')).some((x) => x.id === mine.id);
      for (let i = 0; i < 100 && !(await gone()); i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await gone(), true, 'the session is gone from the list');
    } finally {
      c.destroy();
    }
  });
});

// ---- concurrency ----------------------------------------------------------------------

describe('review fixes: what an ACL decision really does', () => {
  test('an initiator with a non-RFC name (a Windows host name with "_") can be allowed, and still gets in after a restart', { timeout: 30_000 }, async () => {
    const dir = tempDir();
    const data = join(dir, 'data');
    let s = await open(data, true);
    const iqn = `${NS}:windows`;
    const win = 'iqn.1991-05.com.microsoft:my_pc';
    await s.call('targets.create', memoryTarget(iqn));
    assert.deepEqual(await login(portOf(s), win, iqn), { ok: false, statusClass: 2, statusDetail: 2 });
    let pending = await s.call('requests.list', { pending: true });
    for (let i = 0; pending.length === 0 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 20));
      pending = await s.call('requests.list', { pending: true });
    }
    const [req] = pending;
    assert.equal(req?.initiatorIqn, win);
    await s.call('requests.allow', { id: req!.id });
    assert.deepEqual(await login(portOf(s), win, iqn), { ok: true });
    await s.close();
    services.splice(services.indexOf(s), 1);
    s = await open(data, true);
    assert.equal(s.restore.served, 1, `restore: ${JSON.stringify(s.restore)}`);
    assert.deepEqual(await login(portOf(s), win, iqn), { ok: true });
    assert.deepEqual(await login(portOf(s), ALLOWED, iqn), { ok: true });
  });

  test('deny after allow takes the access away; allow by name with requests for two targets must say which', { timeout: 30_000 }, async () => {
    const s = await open(join(tempDir(), 'data'), true);
    const a = `${NS}:deny-a`;
    const b = `${NS}:deny-b`;
    await s.call('targets.create', memoryTarget(a));
    await s.call('targets.create', memoryTarget(b));
    const port = portOf(s);
    assert.equal((await login(port, STRANGER, a)).ok, false);
    assert.equal((await login(port, STRANGER, b)).ok, false);
    await new Promise((r) => setTimeout(r, 50));
    const ambiguous = await rejects(s.call('requests.allow', { initiatorIqn: STRANGER }), 'REQUEST_AMBIGUOUS', ['target']);
    assert.match(ambiguous.message, new RegExp(`${a}.*${b}|${b}.*${a}`));
    await s.call('requests.allow', { initiatorIqn: STRANGER, target: a });
    assert.deepEqual(await login(port, STRANGER, a), { ok: true });
    await s.call('requests.deny', { initiatorIqn: STRANGER, target: a });
    assert.equal((await login(port, STRANGER, a)).ok, false, 'denied again: refused');
    assert.deepEqual((await s.call('targets.get', { target: a })).acls.map((x) => x.initiatorIqn), [ALLOWED]);
  });

  test('paths must be absolute (a relative one would land in the service folder); memory LUNs are capped', async () => {
    const s = await open(join(tempDir(), 'data'), false);
    await rejects(
      s.call('targets.create', { iqn: `${NS}:rel`, luns: [{ lun: 0, backstore: { kind: 'file', path: 'disk.img', sizeBytes: 1048576, create: true } }] }),
      'INVALID_PARAMS',
      ['luns.0.backstore.path'],
    );
    await rejects(s.call('images.create', { path: 'x.img', sizeBytes: 1048576 }), 'INVALID_PARAMS', ['path']);
    await rejects(
      s.call('targets.create', { iqn: `${NS}:huge`, luns: [{ lun: 0, backstore: { kind: 'memory', sizeBytes: 2 ** 50 } }] }),
      'MEMORY_LUN_TOO_BIG',
      ['luns.0.backstore.sizeBytes'],
    );
    assert.deepEqual(await s.call('targets.list'), []);
  });
});

describe('statistics', () => {
  test('the 1 Hz stats tick carries per-LUN and per-session I/O rates, and 1 s samples land in the store', { timeout: 30_000 }, async () => {
    const dir = tempDir();
    const data = join(dir, 'data');
    const s = await open(data, true);
    const iqn = `${NS}:stats`;
    await s.call('targets.create', memoryTarget(iqn));
    const ticks = collect(s, 'stats');
    const c = await RawIscsi.connect('127.0.0.1', portOf(s));
    try {
      assert.equal((await c.login({ initiatorName: ALLOWED, targetName: iqn })).ok, true);
      // The first command meets the new nexus's POWER ON unit attention (SAM-5): clear it with TEST UNIT READY.
      await c.command({ lun: 0, cdb: Buffer.alloc(6) });
      // WRITE(10) of 64 KiB at LBA 0, a few times across a tick boundary.
      const cdb = Buffer.alloc(10);
      cdb[0] = 0x2a;
      cdb.writeUInt16BE(128, 7);
      const until = Date.now() + 2500;
      let writes = 0;
      while (Date.now() < until) {
        const r = await c.command({ lun: 0, cdb, writeData: Buffer.alloc(65536, 7) });
        assert.equal(r.status, 0);
        writes++;
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 1100));
      const lun = ticks.flatMap((t) => t.luns).filter((l) => l.target === iqn && l.lun === 0);
      assert.ok(lun.some((l) => l.rate.writeBytes > 0), 'some tick shows the LUN writing');
      assert.equal(lun.at(-1)!.total.writeBytes, writes * 65536, 'the LUN total counts every byte written');
      const sess = ticks.flatMap((t) => t.sessions).filter((x) => x.target === iqn);
      assert.ok(sess.some((x) => x.rate.writeOps > 0 && x.initiator === ALLOWED), 'some tick shows the session writing');
    } finally {
      c.destroy();
    }
    await s.close();
    services.splice(services.indexOf(s), 1);
    // The samples are in spindle.db: read them back with a second store handle after the service closed.
    const { openStore } = await import('../../src-main/store');
    const store = openStore({ dataDir: data });
    try {
      const since = Date.now() - 60_000;
      const lunSamples = store.stats.query('lun', `${iqn}/0`, '1s', since);
      assert.ok(lunSamples.length > 0 && lunSamples.every((x) => x.writeOps > 0), `LUN samples: ${JSON.stringify(lunSamples)}`);
      assert.ok(store.stats.query('target', iqn, '1s', since).length > 0, 'target samples');
    } finally {
      store.close();
    }
  });
});

describe('concurrent changes', () => {
  test('two creates at once both land; the same IQN twice at once: one wins, the other gets TARGET_EXISTS and leaves no image', { timeout: 20_000 }, async () => {
    const dir = tempDir();
    const s = await open(join(dir, 'data'), true);
    const file = (name: string) => ({ kind: 'file' as const, path: join(dir, name), create: true, sizeBytes: 1024 * 1024 });
    const [a, b] = await Promise.all([
      s.call('targets.create', { iqn: `${NS}:c-a`, luns: [{ lun: 0, backstore: file('a.img') }], acls: [{ initiatorIqn: ALLOWED }] }),
      s.call('targets.create', { iqn: `${NS}:c-b`, luns: [{ lun: 0, backstore: file('b.img') }], acls: [{ initiatorIqn: ALLOWED }] }),
    ]);
    assert.equal(a.state, 'serving');
    assert.equal(b.state, 'serving');
    const port = portOf(s);
    assert.equal((await login(port, ALLOWED, `${NS}:c-a`)).ok, true);
    assert.equal((await login(port, ALLOWED, `${NS}:c-b`)).ok, true);

    const same = await Promise.allSettled([
      s.call('targets.create', { iqn: `${NS}:c-same`, luns: [{ lun: 0, backstore: file('s1.img') }] }),
      s.call('targets.create', { iqn: `${NS}:c-same`, luns: [{ lun: 0, backstore: file('s2.img') }] }),
    ]);
    assert.deepEqual(same.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const lost = same.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.ok(lost.reason instanceof ApiError);
    assert.equal(lost.reason.code, 'TARGET_EXISTS');
    assert.equal(existsSync(join(dir, 's1.img')) !== existsSync(join(dir, 's2.img')), true, "only the winner's image exists");

    // One image claimed read-write by two targets at once: one gets it.
    const shared = join(dir, 'shared.img');
    writeFileSync(shared, Buffer.alloc(1024 * 1024));
    const claim = await Promise.allSettled([
      s.call('targets.create', { iqn: `${NS}:c-x`, luns: [{ lun: 0, backstore: { kind: 'file', path: shared } }] }),
      s.call('targets.create', { iqn: `${NS}:c-y`, luns: [{ lun: 0, backstore: { kind: 'file', path: shared } }] }),
    ]);
    assert.deepEqual(claim.map((r) => r.status).sort(), ['fulfilled', 'rejected']);

    // Eight LUNs added at once to one serving target: all stored, all served.
    await Promise.all(Array.from({ length: 8 }, (_, i) => s.call('luns.add', { target: `${NS}:c-a`, lun: i + 1, backstore: { kind: 'memory', sizeBytes: 1024 * 1024 } })));
    const t = await s.call('targets.get', { target: `${NS}:c-a` });
    assert.deepEqual(t.luns.map((l) => l.lun), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    const list = await s.call('targets.list');
    assert.deepEqual(list.map((x) => x.iqn).sort(), [`${NS}:c-a`, `${NS}:c-b`, `${NS}:c-same`, claim[0]!.status === 'fulfilled' ? `${NS}:c-x` : `${NS}:c-y`].sort());
  });
});

// ---- restore on start -------------------------------------------------------------------

describe('restore on start', () => {
  test('a target whose image is gone comes up disabled with the reason, the rest serve; enable needs the file back', { timeout: 30_000 }, async () => {
    const dir = tempDir();
    const data = join(dir, 'data');
    const img = (n: string) => join(dir, n);
    let s = await open(data, false);
    await s.call('targets.create', { iqn: `${NS}:r-lost`, luns: [{ lun: 0, backstore: { kind: 'file', path: img('lost.img'), create: true, sizeBytes: 1024 * 1024 } }], acls: [{ initiatorIqn: ALLOWED }] });
    await s.call('targets.create', { iqn: `${NS}:r-kept`, luns: [{ lun: 0, backstore: { kind: 'file', path: img('kept.img'), create: true, sizeBytes: 1024 * 1024 } }], acls: [{ initiatorIqn: ALLOWED }] });
    await s.call('targets.create', { ...memoryTarget(`${NS}:r-off`), enabled: false });
    assert.deepEqual(s.restore, { served: 0, disabled: [], failed: [], ms: 0 });
    await s.close();
    renameSync(img('lost.img'), img('lost.away'));

    s = await open(data, true);
    assert.equal(s.restore.served, 1);
    assert.deepEqual(s.restore.failed, []);
    assert.equal(s.restore.disabled.length, 1);
    assert.equal(s.restore.disabled[0]!.iqn, `${NS}:r-lost`);
    assert.match(s.restore.disabled[0]!.reason, /lost\.img is gone/);
    assert.ok(s.restore.ms >= 0);
    const view = await s.call('targets.get', { target: `${NS}:r-lost` });
    assert.deepEqual([view.enabled, view.state], [false, 'disabled']);
    assert.match(view.reason ?? '', /gone/);
    assert.equal((await s.call('targets.get', { target: `${NS}:r-kept` })).state, 'serving');
    assert.equal((await s.call('targets.get', { target: `${NS}:r-off` })).state, 'disabled');
    assert.equal((await s.call('targets.get', { target: `${NS}:r-off` })).reason, null, 'disabled by the user: no reason');
    const port = portOf(s);
    assert.equal((await login(port, ALLOWED, `${NS}:r-kept`)).ok, true);
    assert.equal((await login(port, ALLOWED, `${NS}:r-lost`)).ok, false);
    assert.equal(existsSync(img('lost.img')), false, 'restore does not re-create the image');

    await rejects(s.call('targets.enable', { target: `${NS}:r-lost` }), 'BACKSTORE_MISSING', ['target']);
    renameSync(img('lost.away'), img('lost.img'));
    const back = await s.call('targets.enable', { target: `${NS}:r-lost` });
    assert.deepEqual([back.enabled, back.state, back.reason], [true, 'serving', null]);
    assert.equal((await login(port, ALLOWED, `${NS}:r-lost`)).ok, true);
    await s.close();

    // It stays enabled across the next start.
    s = await open(data, true);
    assert.equal(s.restore.served, 2);
    assert.deepEqual(s.restore.disabled, []);
    await s.close();
  });

  test('a second service on the same data dir is refused (STORE_LOCKED), the first keeps working', async () => {
    const dir = tempDir();
    const s = await open(join(dir, 'data'), false);
    await assert.rejects(open(join(dir, 'data'), false), (err: { code?: string }) => err.code === 'STORE_LOCKED');
    assert.deepEqual(await s.call('targets.list'), []);
  });
});

// ---- secrets ----------------------------------------------------------------------------

describe('secrets', () => {
  test('lists, events and the event log never carry a CHAP secret; the engine still checks it', { timeout: 20_000 }, async () => {
    const dir = tempDir();
    const data = join(dir, 'data');
    const s = await open(data, true);
    const changed = collect(s, 'targets.changed');
    const secret = 'unit-secret-0042';
    const mutual = 'unit-mutual-0042';
    const iqn = `${NS}:secret`;
    await s.call('targets.create', {
      ...memoryTarget(iqn, []),
      acls: [{ initiatorIqn: ALLOWED, chap: { user: 'alice', secret }, mutualChap: { user: 'nas', secret: mutual } }],
    });
    await s.call('acls.add', { target: iqn, initiatorIqn: STRANGER, chap: { user: 'bob', secret } });
    // Without CHAP the allowed initiator is refused (authentication failure, not a missing ACL: no request).
    const r = await login(portOf(s), ALLOWED, iqn);
    assert.equal(r.ok, false);
    const views = [await s.call('targets.list'), await s.call('targets.get', { target: iqn }), await s.call('requests.list'), changed];
    const text = JSON.stringify(views);
    assert.match(text, /"chapUser":"alice"/);
    assert.ok(!text.includes(secret) && !text.includes(mutual), 'no secret in lists or events');
    const lio = (await s.call('config.exportLio')).json;
    assert.ok(lio.includes(secret) && lio.includes(mutual), 'the LIO export carries them, as targetcli does');
    await s.close();
    const db = new Database(join(data, 'spindle.db'), { readonly: true });
    try {
      const log = JSON.stringify(db.prepare('SELECT * FROM event_log').all());
      assert.ok(log.includes(iqn));
      assert.ok(!log.includes(secret) && !log.includes(mutual), 'no secret in event_log');
    } finally {
      db.close();
    }
    assert.equal(readFileSync(join(data, 'spindle.db')).includes(secret), false, 'not in the DB file in clear');
  });
});

// ---- remote targets: discovery ----------------------------------------------------------

describe('remotes.discover (SendTargets through the API, against this service\'s own portal)', () => {
  test('lists what the target shows this initiator, marks saved ones, and names the initiator it used', async () => {
    const s = await open(tempDir(), true);
    await s.call('targets.create', memoryTarget(`${NS}:disc-a`, [ALLOWED]));
    await s.call('targets.create', memoryTarget(`${NS}:disc-b`, [ALLOWED, STRANGER]));
    const port = portOf(s);
    const mine = await s.call('remotes.discover', { host: '127.0.0.1', port, initiatorName: ALLOWED });
    assert.equal(mine.portal, `127.0.0.1:${port}`);
    assert.equal(mine.initiatorName, ALLOWED);
    assert.deepEqual(mine.targets.map((t) => t.iqn).sort(), [`${NS}:disc-a`, `${NS}:disc-b`]);
    assert.ok(mine.targets.every((t) => !t.saved && t.portals.some((p) => p.port === port)));
    const remoteEvents = collect(s, 'remotes.changed');
    const saved = await s.call('remotes.save', { host: '127.0.0.1', port, iqn: `${NS}:disc-b` });
    assert.deepEqual(remoteEvents.at(-1)?.map((r) => r.iqn), [`${NS}:disc-b`], 'remotes.changed carries the whole list');
    // The stranger sees only the target that allows it (now saved).
    const theirs = await s.call('remotes.discover', { host: '127.0.0.1', port, initiatorName: STRANGER });
    assert.deepEqual(
      theirs.targets.map((t) => [t.iqn, t.saved]),
      [[`${NS}:disc-b`, true]],
    );
    // An initiator no ACL names sees nothing, and shows up as an access request (what the Allow button acts on).
    const newcomer = `${NS}:unit-newcomer`;
    const requests = collect(s, 'requests.new');
    assert.deepEqual((await s.call('remotes.discover', { host: '127.0.0.1', port, initiatorName: newcomer })).targets, []);
    await until(() => requests.some((r) => r.initiatorIqn === newcomer), 'the hidden targets to show as an access request');
    // Without a name, Spindle introduces itself by its own (from the host name); neither ACL names it.
    const own = await s.call('remotes.discover', { host: '127.0.0.1', port });
    assert.match(own.initiatorName, /^iqn\.2026-11\.app\.spindle:[a-z0-9.-]+$/);
    assert.deepEqual(own.targets, []);
    await s.call('remotes.remove', { id: saved.id });
    assert.deepEqual(remoteEvents.at(-1), [], 'and again after a removal');
  });

  test('bad input and unreachable portals are one-line errors with a code', async () => {
    const s = await open(tempDir(), false);
    await rejects(s.call('remotes.discover', { host: '' }), 'INVALID_PARAMS', ['host']);
    await rejects(s.call('remotes.discover', { host: '127.0.0.1', port: 70000 }), 'INVALID_PARAMS', ['port']);
    const withPort = await rejects(s.call('remotes.discover', { host: 'nas:3260' }), 'INVALID_PARAMS', ['host']);
    assert.match(withPort.fields!.host!, /port goes in its own field/);
    await rejects(s.call('remotes.discover', { host: 'nas local' }), 'INVALID_PARAMS', ['host']);
    await rejects(s.call('remotes.save', { host: 'nas:3260', iqn: `${NS}:x` }), 'INVALID_PARAMS', ['host']);
    await rejects(s.call('remotes.discover', { host: '127.0.0.1', chap: { user: 'u', secret: 'short' } }), 'INVALID_PARAMS', ['chap.secret']);
    await rejects(s.call('remotes.discover', { host: '127.0.0.1', mutualChap: { user: 'u', secret: 'long-enough-0042' } }), 'INVALID_PARAMS', ['mutualChap']);
    await rejects(s.call('remotes.discover', { host: '127.0.0.1', initiatorName: 'not a name' }), 'INVALID_PARAMS', ['initiatorName']);
    const closed = await freeLoopbackPort();
    const e = await rejects(s.call('remotes.discover', { host: '127.0.0.1', port: closed }), 'CONNECT_FAILED');
    assert.match(e.message, /nothing listens there/);
  });
});

async function freeLoopbackPort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
