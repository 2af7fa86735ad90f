// TargetEngine configuration API over loopback TCP with the raw test client:
// per-initiator ACL entries with their own CHAP (validation, coded errors,
// runtime changes that leave live sessions alone), sealed secrets, coded
// PortalErrors, the "no free TSIH" refusal (0x0302) and bounded wire names
// in login-refused events. CHAP logins themselves run against libiscsi in
// test/interop/target-chap.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { inspect } from 'node:util';
import { createMemoryBackstore } from '../../src-main/backstore/memory';
import { isSealedCredentials, sealCredentials } from '../../src-main/iscsi/chap';
import { wireName, wireText } from '../../src-main/target/login';
import {
  PortalError,
  TargetConfigError,
  TargetEngine,
  type LoginRefusedEvent,
  type TargetConfigErrorCode,
} from '../../src-main/target/target-engine';
import { RawIscsi } from '../support/raw-iscsi';

const IQN = 'iqn.2026-11.net.spindle.test:acl-chap';
const HOST_A = 'iqn.2026-11.net.spindle.test:host-a';
const HOST_B = 'iqn.2026-11.net.spindle.test:host-b';
const SECRET_A = 'hostAsecret-0001';
const SECRET_B = 'hostBsecret-0002';
const MUTUAL_B = 'targetBsecret-03';
const TARGET_SECRET = 'targetwide-0004';
const ALL_SECRETS = [SECRET_A, SECRET_B, MUTUAL_B, TARGET_SECRET];

let engine: TargetEngine;
let port: number;
const refused: LoginRefusedEvent[] = [];
const logs: string[] = [];

before(async () => {
  engine = new TargetEngine({ portals: [{ host: '127.0.0.1', port: 0 }], queueDepth: 8 });
  engine.on('login-refused', (e) => refused.push(e));
  engine.on('log', (e) => logs.push(`${e.level}: ${e.message}`));
  engine.addTarget({ iqn: IQN, luns: [{ lun: 0, backstore: createMemoryBackstore(1 << 20, { blockSize: 512 }) }], acl: { allow: [HOST_A] } });
  [{ port }] = await engine.listen();
});

after(async () => {
  await engine.close(200);
});

async function login(initiatorName: string, targetName = IQN) {
  const c = await RawIscsi.connect('127.0.0.1', port);
  const r = await c.login({ initiatorName, targetName });
  return { c, r };
}

function expectCode(fn: () => unknown, code: TargetConfigErrorCode, field?: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TargetConfigError, `a TargetConfigError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (field !== undefined) assert.equal(e.field, field);
    if (message !== undefined) assert.match(e.message, message);
    for (const s of ALL_SECRETS) assert.ok(!e.message.includes(s), 'no secret in the message');
    return true;
  });
}

test('configuration errors carry a code and a field', () => {
  expectCode(() => engine.addTarget({ iqn: 'not an iqn', luns: [], acl: { allow: 'any' } }), 'TARGET_NAME_INVALID', 'iqn');
  expectCode(() => engine.addTarget({ iqn: IQN, luns: [], acl: { allow: 'any' } }), 'TARGET_EXISTS', 'iqn', /already exists/);
  expectCode(() => engine.addLun(IQN, { lun: 0, backstore: createMemoryBackstore(1 << 20) }), 'LUN_EXISTS', 'lun');
  expectCode(() => engine.addLun(IQN, { lun: 70000, backstore: createMemoryBackstore(1 << 20) }), 'LUN_INVALID', 'lun');
  expectCode(() => engine.setAcl('iqn.2026-11.net.spindle.test:nope', 'any'), 'TARGET_NOT_FOUND', 'iqn');
  expectCode(() => engine.allowInitiator(IQN, 'bad name'), 'INITIATOR_NAME_INVALID', 'initiatorName');
  const other = 'iqn.2026-11.net.spindle.test:other';
  const luns = [{ lun: 1, backstore: createMemoryBackstore(1 << 20) }, { lun: 1, backstore: createMemoryBackstore(1 << 20) }];
  expectCode(() => engine.addTarget({ iqn: other, luns, acl: { allow: 'any' } }), 'LUN_EXISTS', 'luns[1].lun');
  expectCode(() => engine.addTarget({ iqn: other, luns: [], acl: { allow: [HOST_A, 'bad name'] } }), 'INITIATOR_NAME_INVALID', 'acl.allow[1].name');
  expectCode(() => new TargetEngine({ portals: [] }), 'PORTAL_MISSING', 'portals');
  expectCode(() => new TargetEngine({ portals: [{ host: '127.0.0.1', port: 0 }], queueDepth: 0 }), 'QUEUE_DEPTH_INVALID', 'queueDepth');
  assert.deepEqual(engine.targetNames(), [IQN], 'nothing half-added');
});

test('CHAP entries are validated like the target-level CHAP (12+ bytes, mutual differs, mutual needs one-way)', () => {
  const other = 'iqn.2026-11.net.spindle.test:other';
  const short = { user: 'a', secret: 'short' };
  expectCode(() => engine.addTarget({ iqn: other, luns: [], acl: { allow: 'any' }, chap: short }), 'CHAP_INVALID', 'chap', /12/);
  expectCode(
    () => engine.addTarget({ iqn: other, luns: [], acl: { allow: [{ name: HOST_A, chap: short }] } }),
    'CHAP_INVALID',
    'acl.allow[0].chap',
    /host-a.*12/,
  );
  expectCode(
    () => engine.addTarget({ iqn: other, luns: [], acl: { allow: [HOST_B, { name: HOST_A, chap: { user: 'a', secret: SECRET_A }, mutualChap: { user: 't', secret: SECRET_A } }] } }),
    'CHAP_INVALID',
    'acl.allow[1].mutualChap',
    /differ/,
  );
  expectCode(() => engine.allowInitiator(IQN, HOST_B, { mutualChap: { user: 't', secret: MUTUAL_B } }), 'CHAP_INVALID', 'mutualChap', /one-way/);
  expectCode(() => engine.allowInitiator(IQN, HOST_B, { chap: { user: 'b', secret: 'tooshort' } }), 'CHAP_INVALID', 'chap');
  expectCode(() => engine.setChap(IQN, { user: 'x', secret: 42 as unknown as string }), 'CHAP_INVALID', 'chap');
  assert.deepEqual(engine.acl(IQN), [{ name: HOST_A }], 'a refused entry changes nothing');
});

test('per-initiator CHAP at runtime: the next login needs it, a live session stays; removing it falls back to the target CHAP', async () => {
  const live = await login(HOST_A);
  assert.equal(live.r.ok, true);
  try {
    engine.allowInitiator(IQN, HOST_A, { chap: { user: 'host-a', secret: SECRET_A } });
    assert.deepEqual(engine.acl(IQN), [{ name: HOST_A, chapUser: 'host-a' }]);
    const next = await login(HOST_A);
    assert.equal(next.r.ok, false, 'AuthMethod=None no longer passes');
    if (!next.r.ok) assert.deepEqual([next.r.statusClass, next.r.statusDetail], [2, 1]);
    next.c.destroy();
    assert.equal(await live.c.ping(2000), true, 'the session that was already in is untouched');

    // Another entry without its own CHAP: the target has none either, so it logs in without.
    engine.allowInitiator(IQN, HOST_B);
    const b = await login(HOST_B);
    assert.equal(b.r.ok, true);
    b.c.destroy();
    // Target-level CHAP reaches entries without their own...
    engine.setChap(IQN, { user: 'everyone', secret: TARGET_SECRET });
    const b2 = await login(HOST_B);
    assert.equal(b2.r.ok, false);
    b2.c.destroy();
    // ...and replacing A's entry by a bare name makes A use it too.
    engine.allowInitiator(IQN, HOST_A);
    assert.deepEqual(engine.acl(IQN), [{ name: HOST_A }, { name: HOST_B }]);
    engine.setChap(IQN, undefined);
    const a2 = await login(HOST_A);
    assert.equal(a2.r.ok, true, 'no CHAP anywhere: AuthMethod=None');
    a2.c.destroy();
    assert.equal(await live.c.ping(2000), true);
  } finally {
    live.c.destroy();
    engine.setAcl(IQN, [HOST_A]);
    engine.setChap(IQN, undefined);
  }
});

test('setAcl takes names and entries; mutual CHAP user names show in acl(), secrets never', () => {
  try {
    checkAclView();
  } finally {
    engine.setAcl(IQN, [HOST_A]);
    engine.setChap(IQN, undefined);
  }
});

function checkAclView(): void {
  engine.setAcl(IQN, [HOST_A, { name: HOST_B.toUpperCase(), chap: { user: 'host-b', secret: SECRET_B }, mutualChap: { user: 'tgt', secret: MUTUAL_B } }]);
  assert.deepEqual(engine.acl(IQN), [{ name: HOST_A }, { name: HOST_B, chapUser: 'host-b', mutualChapUser: 'tgt' }]);
  engine.setChap(IQN, { user: 'everyone', secret: TARGET_SECRET });
  const dumps = [
    JSON.stringify(engine.acl(IQN)),
    inspect(engine, { depth: 12, showHidden: true, getters: true }),
  ];
  for (const d of dumps) {
    assert.ok(d.includes('host-b') || d.includes(HOST_B), 'names stay visible');
    for (const s of ALL_SECRETS) {
      assert.ok(!d.includes(s), `secret visible: ${d.slice(0, 300)}`);
      assert.ok(!d.includes(Buffer.from(s).toString('hex')) && !d.includes(Buffer.from(s).toString('base64')));
    }
  }
  engine.setAcl(IQN, [HOST_A]);
  engine.setChap(IQN, undefined);
  // An open ACL: names change nothing, per-initiator CHAP is refused rather than ignored.
  engine.setAcl(IQN, 'any');
  engine.allowInitiator(IQN, HOST_B);
  assert.equal(engine.acl(IQN), 'any');
  expectCode(() => engine.allowInitiator(IQN, HOST_B, { chap: { user: 'b', secret: SECRET_B } }), 'ACL_OPEN', 'initiatorName');
  expectCode(() => engine.disallowInitiator(IQN, HOST_B), 'ACL_OPEN');
}

test('sealed credentials: the secret works but does not show in JSON, spread, inspect (even showHidden) or strings', () => {
  const sealed = sealCredentials({ name: 'alice', secret: SECRET_A });
  assert.ok(isSealedCredentials(sealed));
  assert.equal(Buffer.from(sealed.secret).toString('utf8'), SECRET_A);
  const views = [
    JSON.stringify(sealed),
    JSON.stringify({ ...sealed }),
    inspect(sealed, { showHidden: true, getters: true }),
    inspect({ nested: { sealed } }, { showHidden: true, depth: 5 }),
    `${String(sealed)}`,
    JSON.stringify(Object.getOwnPropertyDescriptors(sealed)),
    JSON.stringify(structuredClone({ ...sealed })),
  ];
  for (const v of views) {
    assert.ok(!v.includes(SECRET_A), v);
    assert.ok(!v.includes(Buffer.from(SECRET_A).toString('hex')), v);
  }
  (sealed.secret as Buffer).fill(0);
  assert.equal(Buffer.from(sealed.secret).toString('utf8'), SECRET_A, 'callers get a copy');
  assert.equal(Buffer.from(sealCredentials(sealed).secret).toString('utf8'), SECRET_A, 'resealing keeps the secret');
});

test('portal errors carry a code a service can map', async () => {
  const srv = createServer();
  const taken = await new Promise<number>((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as { port: number }).port)));
  try {
    const e2 = new TargetEngine({ portals: [{ host: '127.0.0.1', port: taken }] });
    await assert.rejects(e2.listen(), (e: unknown) => {
      assert.ok(e instanceof PortalError);
      assert.equal(e.code, 'PORTAL_IN_USE');
      assert.equal(e.errno, 'EADDRINUSE');
      assert.equal(e.field, 'portal');
      assert.match(e.message, /already in use/);
      return true;
    });
    await e2.close(0);
  } finally {
    srv.close();
  }
  const e3 = new TargetEngine({ portals: [{ host: '192.0.2.77', port: 0 }] });
  await assert.rejects(e3.listen(), (e: unknown) => e instanceof PortalError && e.code === 'PORTAL_ADDRESS_INVALID');
  await e3.close(0);
  const e4 = new TargetEngine({ portals: [{ host: '127.0.0.1', port: 70000 }] });
  await assert.rejects(e4.listen(), (e: unknown) => e instanceof PortalError && e.code === 'PORTAL_ADDRESS_INVALID');
  assert.throws(() => e4.addresses(), (e: unknown) => e instanceof PortalError && e.code === 'PORTAL_NOT_LISTENING');
  await e4.close(0);
});

test('no free TSIH: the login is refused with 0x0302 (Out of resources), not completed', async () => {
  const internals = engine as unknown as { allocateTsih: () => number | null };
  const original = internals.allocateTsih;
  internals.allocateTsih = () => null;
  const before = refused.length;
  try {
    const { c, r } = await login(HOST_A);
    assert.equal(r.ok, false);
    if (!r.ok) assert.deepEqual([r.statusClass, r.statusDetail], [3, 2]);
    assert.equal(await c.waitClosed(3000), true, 'the connection is closed');
    c.destroy();
  } finally {
    internals.allocateTsih = original;
  }
  const ev = refused.slice(before).find((e) => e.statusClass === 3);
  assert.ok(ev);
  assert.match(ev.reason, /TSIH/);
  assert.equal(engine.sessions().filter((s) => s.initiatorName === HOST_A).length, 0);
  const again = await login(HOST_A);
  assert.equal(again.r.ok, true, 'logins work again once a TSIH is free');
  again.c.destroy();
});

test('names from the wire are printable and at most 223 bytes in login-refused events and logs', async () => {
  const hostile = `iqn.2026-11.net.spindle.test:\u001b[31mFAKE\nerror: forged line\u202e${'x'.repeat(180)}`;
  const before = refused.length;
  const logsBefore = logs.length;
  const { c, r } = await login(hostile, `${IQN}\r\nzzz`);
  assert.equal(r.ok, false);
  c.destroy();
  const ev = refused[before];
  assert.ok(ev, 'reported');
  for (const s of [ev.initiatorName, ev.targetName, ev.reason]) {
    assert.doesNotMatch(s, /[\u0000-\u001f\u007f-\u009f\u202e]/u);
  }
  assert.ok(Buffer.byteLength(ev.initiatorName) <= 223 && ev.initiatorName.startsWith('iqn.2026-11.net.spindle.test:[31mFAKEerror: forged line'));
  const line = logs.slice(logsBefore).find((l) => l.includes('login refused'));
  assert.ok(line);
  assert.doesNotMatch(line, /[\n\r\u001b]/);

  assert.equal(wireName('a\u0000b\u0007c'), 'abc');
  assert.equal(Buffer.byteLength(wireName('é'.repeat(200))), 222, 'cut at a character boundary');
  assert.equal(wireText('one\ntwo'), 'one two');
  assert.ok(wireText('y'.repeat(5000)).length <= 512);
});

test('nothing the engine logged or reported contains a secret', () => {
  const all = JSON.stringify(refused) + logs.join('\n');
  for (const s of ALL_SECRETS) assert.ok(!all.includes(s));
});

test('closeSession ends one live session by its id; an unknown id is false', async () => {
  const { c, r } = await login(HOST_A);
  assert.equal(r.ok, true);
  const info = engine.sessions().find((s) => s.initiatorName === HOST_A);
  assert.ok(info);
  assert.equal(engine.closeSession('000000000000:ffff'), false);
  assert.equal(engine.closeSession(info.id, 'kicked by a test'), true);
  assert.equal(await c.waitClosed(3000), true);
  c.destroy();
  assert.equal(engine.closeSession(info.id), false, 'gone');
});
