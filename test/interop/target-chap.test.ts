// CHAP against libiscsi (iscsi-inq): `spindle target serve --chap/--mutual-chap`
// (one-way and mutual, refused without, with a wrong secret, and when the
// target's mutual answer is wrong — libiscsi checks it), secrets read from
// files (--chap USER:@FILE), secrets kept out of the re-executed child's
// argv and out of everything `--verbose` prints; then per-initiator CHAP
// with TargetEngine in this process (initiators with their own secrets via
// `iscsi-inq -i`, changed at runtime) and its events and logs.
//
// libiscsi's URL (lib/init.c iscsi_parse_url): iscsi://USER%SECRET@HOST:PORT/IQN/LUN,
// mutual CHAP with ?target_user=U&target_password=P.
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryBackstore } from '../../src-main/backstore/memory';
import { TargetEngine, type LoginRefusedEvent } from '../../src-main/target/target-engine';
import { exitOf, runCli, startCli } from '../support/cli';
import { freePort, requirePeers } from '../support/peers';

const IQN = 'iqn.2026-11.net.spindle.test:chap';
const USER = 'alice';
const SECRET = 'AliceSecret-0042';
const TARGET_USER = 'spindle-target';
const TARGET_SECRET = 'TargetSecret-077';
const FILE_SECRET = 'FromAFile-secret9';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function inq(url: string, initiator?: string): Promise<Run> {
  const args = [...(initiator !== undefined ? ['-i', initiator] : []), url];
  return new Promise((resolve) => {
    execFile('iscsi-inq', args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

function url(port: number, o: { user?: string; secret?: string; targetUser?: string; targetSecret?: string; iqn?: string } = {}): string {
  const auth = o.user !== undefined ? `${o.user}%${o.secret ?? ''}@` : '';
  const mutual = o.targetUser !== undefined ? `?target_user=${o.targetUser}&target_password=${o.targetSecret ?? ''}` : '';
  return `iscsi://${auth}127.0.0.1:${port}/${o.iqn ?? IQN}/0${mutual}`;
}

/** Every process below `pid`: its argv (NUL-separated in /proc) joined with spaces. */
function descendants(pid: number): Array<{ pid: number; argv: string }> {
  const parentOf = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      parentOf.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  const out: Array<{ pid: number; argv: string }> = [];
  const walk = (p: number): void => {
    for (const [child, parent] of parentOf) {
      if (parent !== p) continue;
      try {
        out.push({ pid: child, argv: readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').join(' ') });
      } catch {
        /* gone */
      }
      walk(child);
    }
  };
  walk(pid);
  return out;
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  child.kill('SIGTERM');
  assert.equal(await exitOf(child), 0, 'target serve exits 0 on SIGTERM');
}

let dir: string;

before(() => {
  requirePeers(['iscsi-inq']);
  dir = mkdtempSync(join(tmpdir(), 'spindle-chap-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('spindle target serve --chap USER:SECRET --mutual-chap USER:SECRET --verbose', () => {
  let child: ChildProcess;
  let output: () => string;
  let port: number;

  before(async () => {
    port = await freePort();
    ({ child, output } = await startCli(
      [
        'target', 'serve', '--verbose', '--portal', `127.0.0.1:${port}`, '--target', IQN, '--lun', '0=memory:8MiB',
        '--chap', `${USER}:${SECRET}`, '--mutual-chap', `${TARGET_USER}:${TARGET_SECRET}`,
      ],
      /listening on 127\.0\.0\.1:\d+/,
    ));
  });
  after(() => stop(child));

  test('the right one-way and mutual credentials log in (libiscsi checks the target\'s answer)', async () => {
    const r = await inq(url(port, { user: USER, secret: SECRET, targetUser: TARGET_USER, targetSecret: TARGET_SECRET }));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /DIRECT_ACCESS/);
  });

  test('one-way CHAP alone also logs in (the initiator need not ask for mutual)', async () => {
    const r = await inq(url(port, { user: USER, secret: SECRET }));
    assert.equal(r.code, 0, r.stderr);
  });

  test('no secret, a wrong secret and a wrong user are refused', async () => {
    assert.notEqual((await inq(url(port))).code, 0, 'no CHAP');
    assert.notEqual((await inq(url(port, { user: USER, secret: 'WrongSecret-0042' }))).code, 0, 'wrong secret');
    assert.notEqual((await inq(url(port, { user: 'mallory', secret: SECRET }))).code, 0, 'wrong user');
  });

  test('libiscsi refuses the target when it expects another mutual secret or user', async () => {
    const wrongSecret = await inq(url(port, { user: USER, secret: SECRET, targetUser: TARGET_USER, targetSecret: 'NotTheTarget-077' }));
    assert.notEqual(wrongSecret.code, 0);
    assert.match(wrongSecret.stderr, /CHAP_R/, 'libiscsi refused the target\'s mutual answer');
    const wrongUser = await inq(url(port, { user: USER, secret: SECRET, targetUser: 'impostor', targetSecret: TARGET_SECRET }));
    assert.notEqual(wrongUser.code, 0);
  });

  test('the re-executed child has no secret in its argv', () => {
    const procs = descendants(child.pid!);
    const serving = procs.filter((p) => p.argv.includes('target serve') || p.argv.includes('target') && p.argv.includes('serve'));
    assert.ok(serving.length >= 2, `found the re-executed child: ${JSON.stringify(procs.map((p) => p.argv))}`);
    // The deepest serve process is the re-executed one (the ones above got --chap from the test).
    const reexec = serving[serving.length - 1];
    assert.ok(!reexec.argv.includes('--chap') && !reexec.argv.includes('--mutual-chap'), reexec.argv);
    assert.ok(!reexec.argv.includes(SECRET) && !reexec.argv.includes(TARGET_SECRET), reexec.argv);
  });

  test('nothing --verbose printed contains a secret', async () => {
    await stop(child);
    const out = output();
    assert.match(out, /login refused/, 'the refusals were logged');
    for (const s of [SECRET, TARGET_SECRET, 'WrongSecret-0042', 'NotTheTarget-077']) {
      assert.ok(!out.includes(s), `"${s}" appears in the output`);
      assert.ok(!out.includes(Buffer.from(s).toString('hex')));
    }
  });
});

describe('spindle target serve --chap USER:@FILE', () => {
  let child: ChildProcess;
  let output: () => string;
  let port: number;

  before(async () => {
    port = await freePort();
    const chapFile = join(dir, 'chap-secret');
    const mutualFile = join(dir, 'mutual-secret');
    writeFileSync(chapFile, `${FILE_SECRET}\n`, { mode: 0o600 });
    writeFileSync(mutualFile, `${TARGET_SECRET}\r\n`, { mode: 0o600 });
    ({ child, output } = await startCli(
      [
        'target', 'serve', '--verbose', '--portal', `127.0.0.1:${port}`, '--target', IQN, '--lun', '0=memory:8MiB',
        '--chap', `${USER}:@${chapFile}`, '--mutual-chap', `${TARGET_USER}:@${mutualFile}`,
      ],
      /listening on 127\.0\.0\.1:\d+/,
    ));
  });
  after(() => stop(child));

  test('the secrets come from the files, trailing newline dropped', async () => {
    const ok = await inq(url(port, { user: USER, secret: FILE_SECRET, targetUser: TARGET_USER, targetSecret: TARGET_SECRET }));
    assert.equal(ok.code, 0, ok.stderr);
    assert.notEqual((await inq(url(port, { user: USER, secret: `@${join(dir, 'chap-secret')}` }))).code, 0, 'the path is not the secret');
  });

  test('no process of the target has a secret in its argv', async () => {
    for (const p of [{ pid: child.pid!, argv: '' }, ...descendants(child.pid!)]) {
      const argv = p.argv || readFileSync(`/proc/${p.pid}/cmdline`, 'utf8');
      assert.ok(!argv.includes(FILE_SECRET) && !argv.includes(TARGET_SECRET), argv);
    }
    await stop(child);
    assert.ok(!output().includes(FILE_SECRET));
  });
});

describe('target serve: bad CHAP input is a one-line error (exit 2) that never echoes the secret', () => {
  const base = ['target', 'serve', '--target', IQN, '--lun', '0=memory:1MiB', '--portal', '127.0.0.1:0'];
  const cases: Array<{ what: string; args: string[]; message: RegExp }> = [
    { what: 'no colon', args: ['--chap', 'aliceAliceSecret-0042'], message: /--chap expects USER:SECRET or USER:@FILE/ },
    { what: 'a missing file', args: ['--chap', 'alice:@/nonexistent/spindle-secret'], message: /--chap alice:@\/nonexistent\/spindle-secret: cannot read the secret file \(no such file\)/ },
    { what: 'mutual without one-way', args: ['--mutual-chap', `t:${TARGET_SECRET}`], message: /--mutual-chap needs --chap/ },
    { what: 'the same secret both ways', args: ['--chap', `a:${SECRET}`, '--mutual-chap', `t:${SECRET}`], message: /must differ/ },
    { what: 'a short secret', args: ['--chap', 'a:Short-0042'], message: /12/ },
  ];
  for (const c of cases) {
    test(c.what, async () => {
      const r = await runCli([...base, ...c.args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^spindle: [^\n]+\n$/);
      assert.match(r.stderr, c.message);
      for (const s of [SECRET, TARGET_SECRET, 'Short-0042', 'AliceSecret']) assert.ok(!r.stderr.includes(s), r.stderr);
      assert.equal(r.stdout, '');
    });
  }

  test('an empty secret file, and one with two lines', async () => {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    const two = join(dir, 'two-lines');
    writeFileSync(two, `${SECRET}\nsecond-line-secret\n`);
    const a = await runCli([...base, '--chap', `alice:@${empty}`]);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /^spindle: .*empty\n$/);
    const b = await runCli([...base, '--chap', `alice:@${two}`]);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /^spindle: .*more than one line.*\n$/);
    assert.ok(!b.stderr.includes(SECRET));
  });

  test('--help documents USER:@FILE', async () => {
    const r = await runCli(['target', 'serve', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--chap USER:@FILE/);
    assert.match(r.stdout, /--mutual-chap USER:@FILE/);
  });
});

describe('per-initiator CHAP (TargetEngine in this process, libiscsi initiators)', () => {
  const PIQN = 'iqn.2026-11.net.spindle.test:per-initiator';
  const HOST1 = 'iqn.2026-11.net.spindle.test:host1';
  const HOST2 = 'iqn.2026-11.net.spindle.test:host2';
  const HOST3 = 'iqn.2026-11.net.spindle.test:host3';
  const S1 = 'host1-secret-aaa';
  const S1B = 'host1-secret-bbb';
  const S2 = 'host2-secret-ccc';
  const M2 = 'target-for-h2-dd';
  const ST = 'shared-secret-ee';
  const secrets = [S1, S1B, S2, M2, ST];
  let engine: TargetEngine;
  let port: number;
  const refused: LoginRefusedEvent[] = [];
  const logs: string[] = [];

  before(async () => {
    engine = new TargetEngine({ portals: [{ host: '127.0.0.1', port: 0 }] });
    engine.on('login-refused', (e) => refused.push(e));
    engine.on('log', (e) => logs.push(`${e.level}: ${e.message}`));
    engine.addTarget({
      iqn: PIQN,
      luns: [{ lun: 0, backstore: createMemoryBackstore(4 << 20, { blockSize: 512 }) }],
      acl: {
        allow: [
          { name: HOST1, chap: { user: 'host1', secret: S1 } },
          { name: HOST2, chap: { user: 'host2', secret: S2 }, mutualChap: { user: 'tgt-h2', secret: M2 } },
          HOST3,
        ],
      },
      chap: { user: 'shared', secret: ST },
    });
    [{ port }] = await engine.listen();
  });
  after(() => engine.close(200));

  const at = (o: Parameters<typeof url>[1]) => url(port, { iqn: PIQN, ...o });

  test('each initiator logs in with its own secret, not with another\'s', async () => {
    assert.equal((await inq(at({ user: 'host1', secret: S1 }), HOST1)).code, 0, 'host1 with its secret');
    assert.notEqual((await inq(at({ user: 'host2', secret: S2 }), HOST1)).code, 0, 'host1 with host2\'s credentials');
    assert.notEqual((await inq(at({ user: 'shared', secret: ST }), HOST1)).code, 0, 'host1 with the target-level credentials');
    const h2 = await inq(at({ user: 'host2', secret: S2, targetUser: 'tgt-h2', targetSecret: M2 }), HOST2);
    assert.equal(h2.code, 0, `host2 with mutual CHAP: ${h2.stderr}`);
    assert.notEqual((await inq(at({ user: 'host2', secret: S2, targetUser: 'tgt-h2', targetSecret: ST }), HOST2)).code, 0, 'wrong mutual secret');
    assert.notEqual((await inq(at({ user: 'host1', secret: S1, targetUser: 'tgt-h2', targetSecret: M2 }), HOST2)).code, 0);
  });

  test('an entry without its own CHAP uses the target\'s; an initiator not in the ACL is refused', async () => {
    assert.equal((await inq(at({ user: 'shared', secret: ST }), HOST3)).code, 0);
    assert.notEqual((await inq(at({ user: 'host1', secret: S1 }), HOST3)).code, 0);
    const stranger = 'iqn.2026-11.net.spindle.test:stranger';
    const before = refused.length;
    assert.notEqual((await inq(at({ user: 'shared', secret: ST }), stranger)).code, 0);
    assert.ok(refused.slice(before).some((e) => e.initiatorName === stranger && e.statusDetail === 2), 'refused by the ACL (0x0202)');
  });

  test('allowInitiator replaces an entry\'s credentials at runtime; the next login needs the new ones', async () => {
    engine.allowInitiator(PIQN, HOST1, { chap: { user: 'host1', secret: S1B } });
    assert.notEqual((await inq(at({ user: 'host1', secret: S1 }), HOST1)).code, 0, 'the old secret no longer works');
    assert.equal((await inq(at({ user: 'host1', secret: S1B }), HOST1)).code, 0, 'the new one does');
    engine.allowInitiator(PIQN, HOST1);
    assert.equal((await inq(at({ user: 'shared', secret: ST }), HOST1)).code, 0, 'without its own CHAP, the target\'s applies');
    engine.disallowInitiator(PIQN, HOST1);
    assert.notEqual((await inq(at({ user: 'shared', secret: ST }), HOST1)).code, 0, 'removed from the ACL');
  });

  test('no secret in the engine\'s log and login-refused events, nor in an inspect of the engine', () => {
    assert.ok(refused.length >= 5, 'refusals were reported');
    assert.ok(refused.some((e) => e.statusDetail === 1 && /CHAP/.test(e.reason)), 'authentication failures were reported');
    const all = [JSON.stringify(refused), logs.join('\n'), inspect(engine, { depth: 12, showHidden: true })].join('\n');
    for (const s of secrets) {
      assert.ok(!all.includes(s), `"${s}" appears`);
      assert.ok(!all.includes(Buffer.from(s).toString('hex')));
    }
  });
});
