// TargetEngine in-process over loopback TCP, driven by the raw test client:
// login (open, ACL, CHAP-required), the login-refused event, sessions(),
// reads/writes through R2T and immediate data, LUN counters, NOP ping,
// session reinstatement, runtime ACL/LUN changes, and close().
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryBackstore } from '../../src-main/backstore/memory';
import { cdbInquiry, cdbRead10, cdbReportLuns, cdbTestUnitReady, cdbWrite10 } from '../../src-main/iscsi/cdb';
import { ScsiStatus } from '../../src-main/iscsi/constants';
import { TargetEngine, TargetConfigError, type LoginRefusedEvent, type SessionInfo } from '../../src-main/target/target-engine';
import { RawIscsi } from '../support/raw-iscsi';

const IQN = 'iqn.2026-11.net.spindle.test:engine';
const LOCKED = 'iqn.2026-11.net.spindle.test:locked';
const ALLOWED = 'iqn.2026-11.net.spindle.test:friend';

let engine: TargetEngine;
let port: number;
const refused: LoginRefusedEvent[] = [];
const closed: Array<SessionInfo & { reason: string }> = [];

before(async () => {
  engine = new TargetEngine({ portals: [{ host: '127.0.0.1', port: 0 }], queueDepth: 16 });
  engine.on('login-refused', (e) => refused.push(e));
  engine.on('session-closed', (e) => closed.push(e));
  engine.addTarget({ iqn: IQN, luns: [{ lun: 0, backstore: createMemoryBackstore(8 << 20, { blockSize: 512 }) }], acl: { allow: 'any' } });
  engine.addTarget({
    iqn: LOCKED,
    luns: [{ lun: 3, backstore: createMemoryBackstore(1 << 20, { blockSize: 512 }) }],
    acl: { allow: [ALLOWED] },
  });
  [{ port }] = await engine.listen();
});

after(async () => {
  await engine.close(200);
});

async function session(initiatorName: string, targetName: string, operational: Array<[string, string]> = []) {
  const c = await RawIscsi.connect('127.0.0.1', port);
  const r = await c.login({ initiatorName, targetName, operational });
  return { c, r };
}

/** Run a command, retrying once past the POWER ON unit attention every new nexus gets first. */
async function cmd(c: RawIscsi, o: Parameters<RawIscsi['command']>[0]) {
  let r = await c.command(o);
  if (r.status === ScsiStatus.CHECK_CONDITION && (r.sense[2] & 0x0f) === 6) r = await c.command(o);
  return r;
}

test('config errors are refused up front', () => {
  assert.throws(() => engine.addTarget({ iqn: 'not an iqn', luns: [], acl: { allow: 'any' } }), TargetConfigError);
  assert.throws(() => engine.addTarget({ iqn: IQN, luns: [], acl: { allow: 'any' } }), /already exists/);
  assert.throws(
    () => engine.addTarget({ iqn: 'iqn.2026-11.net.spindle.test:x', luns: [], acl: { allow: 'any' }, chap: { user: 'u', secret: 'short' } }),
    /12/,
  );
});

test('login, INQUIRY, REPORT LUNS, write then read back (immediate data and R2T), counters, sessions()', async () => {
  const { c, r } = await session('iqn.2026-11.net.spindle.test:client-a', IQN);
  assert.equal(r.ok, true);
  try {
    // Consume the POWER ON unit attention first, so the counters below are exact.
    assert.equal((await cmd(c, { lun: 0, cdb: cdbTestUnitReady() })).status, ScsiStatus.GOOD);
    const inq = await cmd(c, { lun: 0, cdb: cdbInquiry(96), readLength: 96 });
    assert.equal(inq.status, ScsiStatus.GOOD);
    assert.equal(inq.data[0] & 0x1f, 0);
    const luns = await cmd(c, { lun: 0, cdb: cdbReportLuns(64), readLength: 64 });
    assert.equal(luns.status, ScsiStatus.GOOD);
    assert.equal(luns.data.readUInt32BE(0), 8);

    // 4 KiB: immediate data; 1 MiB: immediate + unsolicited + R2T.
    for (const blocks of [8, 2048]) {
      const data = Buffer.alloc(blocks * 512);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + blocks) & 0xff;
      const w = await cmd(c, { lun: 0, cdb: cdbWrite10(100, blocks), writeData: data });
      assert.equal(w.status, ScsiStatus.GOOD, `write of ${blocks} blocks`);
      const rd = await cmd(c, { lun: 0, cdb: cdbRead10(100, blocks), readLength: data.length });
      assert.equal(rd.status, ScsiStatus.GOOD);
      assert.ok(rd.data.equals(data), `read back ${blocks} blocks`);
    }
    assert.equal((await cmd(c, { lun: 0, cdb: cdbTestUnitReady() })).status, ScsiStatus.GOOD);
    assert.equal(await c.ping(2000), true);

    const stats = engine.lunStats(IQN, 0)!;
    assert.equal(stats.writeOps, 2);
    assert.equal(stats.readOps, 2);
    assert.equal(stats.writeBytes, (8 + 2048) * 512);
    assert.equal(stats.readBytes, (8 + 2048) * 512);
    assert.equal(stats.inFlight, 0);

    const s = engine.sessions().find((x) => x.initiatorName === 'iqn.2026-11.net.spindle.test:client-a');
    assert.ok(s);
    assert.equal(s.targetName, IQN);
    assert.equal(s.sessionType, 'Normal');
    assert.equal(s.params.ImmediateData, true);
    assert.ok(s.stats.readOps >= 2);
  } finally {
    c.destroy();
  }
});

test('ACL: a stranger is refused with 0x0202 and reported; the allowed initiator gets in; allowInitiator works at runtime', async () => {
  const before = refused.length;
  const stranger = await session('iqn.2026-11.net.spindle.test:stranger', LOCKED);
  assert.equal(stranger.r.ok, false);
  if (!stranger.r.ok) {
    assert.equal(stranger.r.statusClass, 2);
    assert.equal(stranger.r.statusDetail, 2);
  }
  stranger.c.destroy();
  const ev = refused.slice(before).find((e) => e.initiatorName === 'iqn.2026-11.net.spindle.test:stranger');
  assert.ok(ev, 'login-refused event');
  assert.equal(ev.targetName, LOCKED);
  assert.equal(ev.statusDetail, 2);
  assert.match(ev.address, /^127\.0\.0\.1:\d+$/);

  const friend = await session(ALLOWED, LOCKED);
  assert.equal(friend.r.ok, true);
  friend.c.destroy();

  engine.allowInitiator(LOCKED, 'iqn.2026-11.net.spindle.test:stranger');
  const again = await session('iqn.2026-11.net.spindle.test:stranger', LOCKED);
  assert.equal(again.r.ok, true);
  again.c.destroy();
  engine.disallowInitiator(LOCKED, 'iqn.2026-11.net.spindle.test:stranger');
  const third = await session('iqn.2026-11.net.spindle.test:stranger', LOCKED);
  assert.equal(third.r.ok, false, 'a disallowed initiator is refused again');
  third.c.destroy();
  const still = await session(ALLOWED, LOCKED);
  assert.equal(still.r.ok, true, 'removing one initiator keeps the others');
  still.c.destroy();
});

test('removing one initiator from an open ("any") ACL is refused instead of locking everyone out', () => {
  const OPEN = 'iqn.2026-11.net.spindle.test:open-acl';
  engine.addTarget({ iqn: OPEN, luns: [], acl: { allow: 'any' } });
  try {
    assert.throws(() => engine.disallowInitiator(OPEN, 'iqn.2026-11.net.spindle.test:x'), /lets any initiator in/);
  } finally {
    engine.removeTarget(OPEN);
  }
});

test('unknown target: 0x0203; CHAP required but skipped: 0x0201', async () => {
  const nf = await session('iqn.2026-11.net.spindle.test:client-b', 'iqn.2026-11.net.spindle.test:nothing');
  assert.equal(nf.r.ok, false);
  if (!nf.r.ok) assert.deepEqual([nf.r.statusClass, nf.r.statusDetail], [2, 3]);
  nf.c.destroy();

  engine.setChap(LOCKED, { user: 'alice', secret: 'averylongsecret1' });
  try {
    const noChap = await session(ALLOWED, LOCKED);
    assert.equal(noChap.r.ok, false);
    if (!noChap.r.ok) assert.deepEqual([noChap.r.statusClass, noChap.r.statusDetail], [2, 1]);
    noChap.c.destroy();
  } finally {
    engine.setChap(LOCKED, undefined);
  }
});

test('session reinstatement: the same initiator port logging in again ends the old session', async () => {
  const name = 'iqn.2026-11.net.spindle.test:reinstate';
  const c1 = await RawIscsi.connect('127.0.0.1', port);
  const r1 = await c1.login({ initiatorName: name, targetName: IQN, isid: 0x400000001234 });
  assert.equal(r1.ok, true);
  const c2 = await RawIscsi.connect('127.0.0.1', port);
  const r2 = await c2.login({ initiatorName: name, targetName: IQN, isid: 0x400000001234 });
  assert.equal(r2.ok, true);
  assert.equal(await c1.waitClosed(3000), true, 'the old connection is closed');
  assert.ok(closed.some((s) => s.initiatorName === name && s.reason === 'session reinstatement'));
  assert.equal(engine.sessions().filter((s) => s.initiatorName === name).length, 1);
  assert.equal(await c2.ping(2000), true);
  c2.destroy();
});

test('LUNs come and go at runtime without disturbing the session', async () => {
  const { c, r } = await session('iqn.2026-11.net.spindle.test:client-c', IQN);
  assert.equal(r.ok, true);
  try {
    assert.equal((await cmd(c, { lun: 0, cdb: cdbTestUnitReady() })).status, ScsiStatus.GOOD);
    engine.addLun(IQN, { lun: 5, backstore: createMemoryBackstore(1 << 20, { blockSize: 512 }) });
    assert.equal((await cmd(c, { lun: 5, cdb: cdbInquiry(36), readLength: 36 })).status, ScsiStatus.GOOD);
    engine.removeLun(IQN, 5);
    const gone = await cmd(c, { lun: 5, cdb: cdbTestUnitReady() });
    assert.equal(gone.status, ScsiStatus.CHECK_CONDITION);
    assert.equal(gone.sense[12], 0x25); // LOGICAL UNIT NOT SUPPORTED
    assert.equal((await cmd(c, { lun: 0, cdb: cdbTestUnitReady() })).status, ScsiStatus.GOOD);
  } finally {
    c.destroy();
  }
});
