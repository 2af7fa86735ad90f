// Spindle's initiator, first piece: login (security + operational stages,
// CHAP one-way and mutual) and SendTargets discovery, against real targets on
// loopback — tgt (the reference peer) and Spindle's own TargetEngine — and
// against servers that misbehave (refuse, stay silent, send garbage, hang
// up). Every failure must come back as an InitiatorError with its code and a
// message that says what to check.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryBackstore } from '../../src-main/backstore/memory';
import { discoverTargets } from '../../src-main/initiator/discovery';
import { InitiatorError, type InitiatorErrorCode } from '../../src-main/initiator/errors';
import { login, logout, randomIsid } from '../../src-main/initiator/login';
import { PduChannel } from '../../src-main/initiator/pdu-channel';
import { TargetEngine, type DiscoveryFilteredEvent } from '../../src-main/target/target-engine';
import { runCli } from '../support/cli';
import { scriptedTarget } from '../support/scripted-target';
import { encodeNopIn } from '../../src-main/iscsi/nop';
import { encodeTextResponse } from '../../src-main/iscsi/text';
import { freePort, requirePeers, startTgt, type RunningTgt } from '../support/peers';

const ME = 'iqn.2026-11.net.spindle.test:initiator';
const STRANGER = 'iqn.2026-11.net.spindle.test:stranger';
const OPEN = 'iqn.2026-11.net.spindle.test:open';
const ACL = 'iqn.2026-11.net.spindle.test:acl-only';
const CHAP = 'iqn.2026-11.net.spindle.test:chap';
const USER = 'alice';
const SECRET = 'AliceSecret-0042';
const TARGET_USER = 'spindle-target';
const TARGET_SECRET = 'TargetSecret-077';

async function rejection(p: Promise<unknown>): Promise<InitiatorError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof InitiatorError, `an InitiatorError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the promise to reject');
}

async function expectCode(p: Promise<unknown>, code: InitiatorErrorCode, message?: RegExp): Promise<InitiatorError> {
  const err = await rejection(p);
  assert.equal(err.code, code, err.message);
  if (message) assert.match(err.message, message);
  return err;
}

/** A normal-session login to `targetName` and a clean logout; what login() resolved with. */
async function loginOnce(port: number, targetName: string, o: { name?: string; chap?: Parameters<typeof login>[1]['chap'] } = {}) {
  const channel = await PduChannel.connect({ host: '127.0.0.1', port, timeoutMs: 5_000 });
  try {
    const s = await login(channel, {
      initiatorName: o.name ?? ME,
      targetName,
      sessionType: 'Normal',
      isid: randomIsid(),
      timeoutMs: 5_000,
      ...(o.chap ? { chap: o.chap } : {}),
    });
    assert.equal(await logout(channel, { itt: s.lastItt + 1, cmdSN: s.cmdSN, expStatSN: s.expStatSN }, 5_000), true, 'the target answered the logout');
    return s;
  } finally {
    channel.close();
  }
}

describe('against tgt', () => {
  let dir: string;
  let tgt: RunningTgt;
  let port: number;
  const names = ['iqn.2026-11.net.spindle.test:tgt-a', 'iqn.2026-11.net.spindle.test:tgt-b'];

  before(async () => {
    requirePeers(['tgtd', 'tgtadm']);
    dir = mkdtempSync(join(tmpdir(), 'spindle-disc-tgt-'));
    const img = join(dir, 'lun1.img');
    writeFileSync(img, '');
    truncateSync(img, 16 << 20);
    port = await freePort();
    tgt = await startTgt({ port, targets: names.map((iqn) => ({ iqn, luns: [{ lun: 1, backingFile: img }] })) });
  });
  after(async () => {
    await tgt?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('SendTargets discovery lists both of tgt\'s targets with the portal they are on', async () => {
    const found = await discoverTargets({ host: '127.0.0.1', port, initiatorName: ME });
    assert.deepEqual(found.map((t) => t.name).sort(), names);
    for (const t of found) assert.ok(t.portals.some((p) => p.host === '127.0.0.1' && p.port === port), `${t.name}: ${JSON.stringify(t.portals)}`);
  });

  test('`spindle discover` prints tgt\'s targets, and with --json one line an app can parse', async () => {
    const human = await runCli(['discover', `127.0.0.1:${port}`, '--initiator', ME]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^127\\.0\\.0\\.1:${port} offers 2 targets to ${ME.replace(/\./g, '\\.')}:`));
    for (const n of names) assert.match(human.stdout, new RegExp(`${n.replace(/\./g, '\\.')}\\s+127\\.0\\.0\\.1:${port},1`));
    const json = await runCli(['discover', `iscsi://127.0.0.1:${port}/whatever/0`, '--json', '--initiator', ME]);
    assert.equal(json.code, 0, json.stderr);
    const last = JSON.parse(json.stdout.trim().split('\n').pop()!);
    assert.equal(last.portal, `127.0.0.1:${port}`);
    assert.equal(last.initiator, ME);
    assert.deepEqual(last.targets.map((t: { iqn: string }) => t.iqn).sort(), names);
  });

  test('a normal session logs in and out; with a CHAP account bound to the target, only the right secret gets in', async () => {
    const s = await loginOnce(port, names[0]);
    assert.ok(s.tsih > 0, 'the target gave the session a TSIH');
    // tgtadm: an incoming account bound to target 2.
    const control = tgt.process.spawnargs[tgt.process.spawnargs.indexOf('-C') + 1];
    const adm = (...args: string[]) => execFileSync('tgtadm', ['-C', control, '--lld', 'iscsi', ...args], { stdio: 'pipe' });
    adm('--op', 'new', '--mode', 'account', '--user', USER, '--password', SECRET);
    adm('--op', 'bind', '--mode', 'account', '--tid', '2', '--user', USER);
    await loginOnce(port, names[1], { chap: { credentials: { name: USER, secret: SECRET } } });
    await expectCode(loginOnce(port, names[1], { chap: { credentials: { name: USER, secret: 'WrongSecret-0042' } } }), 'AUTH_FAILED', /CHAP user name or secret/);
    await expectCode(loginOnce(port, names[1]), 'AUTH_FAILED', /wants CHAP/);
  });
});

describe('against Spindle\'s target engine', () => {
  let engine: TargetEngine;
  let port: number;
  const filtered: DiscoveryFilteredEvent[] = [];

  before(async () => {
    engine = new TargetEngine({ portals: [{ host: '127.0.0.1', port: 0 }] });
    engine.on('discovery-filtered', (e) => filtered.push(e));
    const lun = () => [{ lun: 0, backstore: createMemoryBackstore(1 << 20, { blockSize: 512 }) }];
    engine.addTarget({ iqn: OPEN, luns: lun(), acl: { allow: 'any' } });
    engine.addTarget({ iqn: ACL, luns: lun(), acl: { allow: [ME] } });
    engine.addTarget({
      iqn: CHAP,
      luns: lun(),
      acl: { allow: 'any' },
      chap: { user: USER, secret: SECRET },
      mutualChap: { user: TARGET_USER, secret: TARGET_SECRET },
    });
    // Enough long names that the SendTargets answer spans several Text Responses (over 8 KiB).
    for (let i = 0; i < 150; i++) {
      engine.addTarget({ iqn: `iqn.2026-11.net.spindle.test:bulk-${String(i).padStart(3, '0')}-${'x'.repeat(60)}`, luns: lun(), acl: { allow: 'any' } });
    }
    [{ port }] = await engine.listen();
  });
  after(() => engine.close(200));

  test('discovery lists every target this initiator may see, over Text Responses that continue', async () => {
    // 4 KiB segments for a ~20 KiB answer: the target must continue it (C=1) over several Text Responses.
    const found = await discoverTargets({ host: '127.0.0.1', port, initiatorName: ME, maxRecvDataSegmentLength: 4096 });
    const names = found.map((t) => t.name);
    assert.equal(found.length, 153);
    assert.ok(names.includes(OPEN) && names.includes(ACL) && names.includes(CHAP));
    assert.ok(found.every((t) => t.portals.length === 1 && t.portals[0].port === port && t.portals[0].host === '127.0.0.1'));
    assert.equal(names.filter((n) => n.includes(':bulk-')).length, 150, 'all of the answer arrived, not just its first PDU');
  });

  test('another initiator\'s discovery leaves out the ACL-only target, and the engine reports what it hid', async () => {
    const before = filtered.length;
    const found = await discoverTargets({ host: '127.0.0.1', port, initiatorName: STRANGER });
    assert.equal(found.length, 152);
    assert.ok(!found.some((t) => t.name === ACL));
    assert.ok(filtered.slice(before).some((e) => e.initiatorName === STRANGER && e.hidden.includes(ACL)));
  });

  test('login: the allowed initiator gets in; a stranger is NOT_ALLOWED and an unknown target TARGET_NOT_FOUND, each saying what to do', async () => {
    await loginOnce(port, ACL);
    await expectCode(loginOnce(port, ACL, { name: STRANGER }), 'NOT_ALLOWED', /does not allow initiator iqn\.2026-11\.net\.spindle\.test:stranger .*ACL/);
    await expectCode(loginOnce(port, 'iqn.2026-11.net.spindle.test:nope'), 'TARGET_NOT_FOUND', /no such target/);
  });

  test('login with mutual CHAP: the right secrets get in; a wrong secret, no secret and a target that proves the wrong secret are refused', async () => {
    const chap = (secret: string, targetSecret: string) => ({ credentials: { name: USER, secret }, mutual: { name: TARGET_USER, secret: targetSecret } });
    await loginOnce(port, CHAP, { chap: chap(SECRET, TARGET_SECRET) });
    await loginOnce(port, CHAP, { chap: { credentials: { name: USER, secret: SECRET } } });
    await expectCode(loginOnce(port, CHAP, { chap: chap('WrongSecret-0042', TARGET_SECRET) }), 'AUTH_FAILED');
    await expectCode(loginOnce(port, CHAP), 'AUTH_FAILED', /wants CHAP/);
    // The target answers with its real secret; we expected another: the initiator must refuse it.
    await expectCode(loginOnce(port, CHAP, { chap: chap(SECRET, 'NotTheTargets-1') }), 'AUTH_FAILED', /CHAP/);
  });

  test('a CHAP secret of the wrong length is refused before anything is sent', async () => {
    await expectCode(discoverTargets({ host: '127.0.0.1', port, initiatorName: ME, chap: { credentials: { name: USER, secret: 'short' } } }), 'INVALID_CONFIG', /12/);
  });
});

describe('against servers that misbehave', () => {
  const servers: net.Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });

  async function serve(onConnection: (socket: net.Socket) => void): Promise<number> {
    const server = net.createServer(onConnection);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as net.AddressInfo).port;
  }

  test('nothing listening: CONNECT_FAILED, with a hint about the port', async () => {
    const port = await freePort();
    await expectCode(discoverTargets({ host: '127.0.0.1', port, initiatorName: ME }), 'CONNECT_FAILED', /nothing listens there.*3260/);
  });

  test('a server that accepts and says nothing: TIMEOUT within the time given', async () => {
    const port = await serve(() => undefined);
    const t0 = Date.now();
    await expectCode(discoverTargets({ host: '127.0.0.1', port, initiatorName: ME, timeoutMs: 300 }), 'TIMEOUT', /did not send a Login Response within 300 ms/);
    assert.ok(Date.now() - t0 < 3_000);
  });

  test('a server that hangs up at once: CONNECTION_CLOSED', async () => {
    const port = await serve((s) => s.destroy());
    await expectCode(discoverTargets({ host: '127.0.0.1', port, initiatorName: ME }), 'CONNECTION_CLOSED');
  });

  test('a server that answers with garbage or the wrong PDU: PROTOCOL_ERROR, never a crash or a hang', async () => {
    // An HTTP answer: a "PDU" whose lengths are nonsense.
    const http = await serve((s) => s.once('data', () => s.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'.padEnd(120, ' '))));
    await expectCode(discoverTargets({ host: '127.0.0.1', port: http, initiatorName: ME, timeoutMs: 2_000 }), 'PROTOCOL_ERROR', /is not an iSCSI target: it answered "HTTP\/1\.1 400 Bad Request/);
    // A well-formed NOP-In where the Login Response belongs.
    const nop = await serve((s) =>
      s.once('data', () => {
        const bhs = Buffer.alloc(48);
        bhs[0] = 0x20;
        bhs[1] = 0x80;
        bhs.writeUInt32BE(0xffffffff, 16);
        s.write(bhs);
      }),
    );
    await expectCode(discoverTargets({ host: '127.0.0.1', port: nop, initiatorName: ME, timeoutMs: 2_000 }), 'PROTOCOL_ERROR', /is not an iSCSI target: it answered bytes 2080/);
    // A Login Response, then a second PDU nobody asked for in the middle of the login: a NOP-In.
    const extra = await serve((s) => {
      let n = 0;
      s.on('data', (req: Buffer) => {
        n++;
        const bhs = Buffer.alloc(48);
        if (n === 1) {
          bhs[0] = 0x23;
          bhs[1] = 0x00; // T=0, CSG=0: "go on"
          req.copy(bhs, 8, 8, 14);
          bhs.writeUInt32BE(req.readUInt32BE(16), 16);
        } else {
          bhs[0] = 0x20;
          bhs[1] = 0x80;
          bhs.writeUInt32BE(0xffffffff, 16);
        }
        s.write(bhs);
      });
    });
    await expectCode(discoverTargets({ host: '127.0.0.1', port: extra, initiatorName: ME, timeoutMs: 2_000 }), 'PROTOCOL_ERROR', /opcode 0x20 during login/);
    // A Login Response whose text is not key=value pairs.
    const text = await serve((s) =>
      s.once('data', (req: Buffer) => {
        const data = Buffer.from('no equals sign here\0');
        const bhs = Buffer.alloc(48);
        bhs[0] = 0x23;
        bhs[1] = 0x81; // T=1, CSG=0, NSG=1
        bhs.writeUIntBE(data.length, 5, 3);
        req.copy(bhs, 8, 8, 14); // ISID
        bhs.writeUInt32BE(req.readUInt32BE(16), 16); // ITT
        const pad = Buffer.alloc((4 - (data.length % 4)) % 4);
        s.write(Buffer.concat([bhs, data, pad]));
      }),
    );
    await expectCode(discoverTargets({ host: '127.0.0.1', port: text, initiatorName: ME, timeoutMs: 2_000 }), 'PROTOCOL_ERROR', /unreadable login text/);
  });
});

describe('`spindle discover` on bad input and dead portals', () => {
  test('each mistake is one line on stderr with exit 2 (usage) or 1 (failure), and nothing on stdout', async () => {
    const dead = await freePort();
    const cases: Array<[string[], number, RegExp]> = [
      [['discover'], 2, /give the portal/],
      [['discover', 'nas:99999'], 2, /1 to 65535/],
      [['discover', 'nas local'], 2, /no spaces/],
      [['discover', '127.0.0.1', '--initiator', 'bob'], 2, /not a usable initiator name/],
      [['discover', '127.0.0.1', '--mutual-chap', 'tgt:TargetSecret-077'], 2, /--mutual-chap needs --chap/],
      [['discover', '127.0.0.1', '--chap', 'alice:short'], 2, /12 to 16 bytes/],
      [['discover', '127.0.0.1', '--timeout', '0'], 2, /--timeout/],
      [['discover', `127.0.0.1:${dead}`], 1, /nothing listens there/],
    ];
    for (const [args, code, message] of cases) {
      const r = await runCli(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      assert.equal(r.stdout, '', args.join(' '));
    }
  });
});

// ---- a scripted target, for what real targets do only sometimes ---------------------------------

const textResponse = (itt: number, o: { final: boolean; cont: boolean; ttt: number }, text: string) => {
  const data = Buffer.from(text, 'utf8');
  return [encodeTextResponse({ final: o.final, continue: o.cont, lun: 0, itt, ttt: o.ttt, statSN: 200, expCmdSN: 2, maxCmdSN: 9, data }), data] as const;
};

describe('against a scripted target (what real ones do only sometimes)', () => {
  const servers: net.Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });

  test('one ITT for the whole login; a ping is answered; an answer in F=0 C=0, then C=1, then final parts is read whole', async () => {
    const { port, seen } = await scriptedTarget(
      {
        afterLogin: (send) => send(encodeNopIn({ lun: 0, itt: 0xffffffff, ttt: 0x77, statSN: 150, expCmdSN: 1, maxCmdSN: 9, data: Buffer.alloc(0) })),
        onText: (req, send, n) => {
          const parts = [
            // Complete pairs, more to come without a cut pair: F=0, C=0 (§11.11).
            textResponse(req.itt, { final: false, cont: false, ttt: 5 }, 'TargetName=iqn.2026-11.test:one\0TargetAddress=127.0.0.1:3260,1\0'),
            // A pair cut in two: C=1.
            textResponse(req.itt, { final: false, cont: true, ttt: 6 }, 'TargetName=iqn.2026-11.te'),
            textResponse(req.itt, { final: true, cont: false, ttt: 0xffffffff }, 'st:two\0TargetAddress=127.0.0.1:3260,1\0'),
          ];
          send(...parts[n]);
        },
      },
      servers,
    );
    const found = await discoverTargets({ host: '127.0.0.1', port, initiatorName: ME, timeoutMs: 2_000 });
    assert.deepEqual(found.map((t) => t.name), ['iqn.2026-11.test:one', 'iqn.2026-11.test:two']);
    assert.equal(seen.loginItts.length, 2);
    assert.equal(new Set(seen.loginItts).size, 1, `one ITT across the login's requests (LIO checks it): ${seen.loginItts}`);
    assert.deepEqual(seen.textTtts, [0xffffffff, 5, 6], 'each continuation echoes the TTT of the response it continues');
    assert.deepEqual(seen.nopOutTtts, [0x77], 'the ping was answered with its TTT');
  });

  test('a target that never finishes its answer, or only pings, is cut off with an error, not followed forever', async () => {
    const endless = await scriptedTarget({ onText: (req, send) => send(...textResponse(req.itt, { final: false, cont: true, ttt: 9 }, '')) }, servers);
    const t0 = Date.now();
    const a = await rejection(discoverTargets({ host: '127.0.0.1', port: endless.port, initiatorName: ME, timeoutMs: 2_000, deadlineMs: 3_000 }));
    assert.ok(['PROTOCOL_ERROR', 'TIMEOUT'].includes(a.code), `${a.code}: ${a.message}`);
    assert.ok(Date.now() - t0 < 5_000, 'within the deadline');

    const pinger = await scriptedTarget(
      {
        onText: (_req, send) => {
          for (let i = 0; i < 100; i++) send(encodeNopIn({ lun: 0, itt: 0xffffffff, ttt: 0xffffffff, statSN: 150, expCmdSN: 1, maxCmdSN: 9, data: Buffer.alloc(0) }));
        },
      },
      servers,
    );
    await expectCode(discoverTargets({ host: '127.0.0.1', port: pinger.port, initiatorName: ME, timeoutMs: 2_000 }), 'PROTOCOL_ERROR', /pings and messages instead of an answer/);

    const silent = await scriptedTarget({ onText: () => undefined }, servers);
    await expectCode(discoverTargets({ host: '127.0.0.1', port: silent.port, initiatorName: ME, timeoutMs: 5_000, deadlineMs: 400 }), 'TIMEOUT', /discovery did not finish within 400 ms/);
  });
});
