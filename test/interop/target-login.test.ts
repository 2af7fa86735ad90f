// `spindle target serve` against libiscsi's tools (SPEC §5): discovery,
// login, INQUIRY / READ CAPACITY, CHAP (right, wrong, missing secret) and
// the initiator ACL; plus the CLI's one-line errors.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { exitOf, runCli, startCli } from '../support/cli';
import { freePort, requirePeers } from '../support/peers';

const IQN = 'iqn.2026-11.net.spindle.test:login';
const ALLOWED = 'iqn.2026-11.net.spindle.test:allowed-host';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function tool(bin: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(bin, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function serve(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const { child } = await startCli(['target', 'serve', '--portal', `127.0.0.1:${port}`, ...args], /listening on 127\.0\.0\.1:\d+/);
  return { child, port };
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  child.kill('SIGTERM');
  const code = await exitOf(child);
  assert.equal(code, 0, 'target serve exits 0 on SIGTERM');
}

let dir: string;

before(() => {
  requirePeers(['iscsi-ls', 'iscsi-inq', 'iscsi-readcapacity16']);
  dir = mkdtempSync(join(tmpdir(), 'spindle-target-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('open target (no ACL, no CHAP)', () => {
  let child: ChildProcess;
  let port: number;

  before(async () => {
    ({ child, port } = await serve(['--target', IQN, '--lun', `0=memory:32MiB`, '--lun', `1=file:${join(dir, 'lun1.img')}:64MiB`]));
  });
  after(() => stop(child));

  test('iscsi-ls -s discovers the target and both LUNs', async () => {
    const r = await tool('iscsi-ls', ['-s', `iscsi://127.0.0.1:${port}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Target:${IQN.replace(/\./g, '\\.')} Portal:127\\.0\\.0\\.1:${port},1`));
    assert.match(r.stdout, /Lun:0\s+Type:DIRECT_ACCESS \(Size:3[12]M\)/);
    assert.match(r.stdout, /Lun:1\s+Type:DIRECT_ACCESS \(Size:6[34]M\)/);
  });

  test('iscsi-inq and iscsi-readcapacity16 work on the file LUN', async () => {
    const inq = await tool('iscsi-inq', [`iscsi://127.0.0.1:${port}/${IQN}/1`]);
    assert.equal(inq.code, 0, inq.stderr);
    assert.match(inq.stdout, /Peripheral Device Type:DIRECT_ACCESS/);
    assert.match(inq.stdout, /Vendor:SPINDLE/);
    const cap = await tool('iscsi-readcapacity16', [`iscsi://127.0.0.1:${port}/${IQN}/1`]);
    assert.equal(cap.code, 0, cap.stderr);
    assert.match(cap.stdout, /Total size:67108864/);
    assert.match(cap.stdout, /LOGICAL BLOCK LENGTH IN BYTES:512/);
  });

  test('a login to a target that does not exist is refused', async () => {
    const r = await tool('iscsi-inq', [`iscsi://127.0.0.1:${port}/iqn.2026-11.net.spindle.test:nope/0`]);
    assert.notEqual(r.code, 0);
  });
});

describe('CHAP', () => {
  let child: ChildProcess;
  let port: number;
  const user = 'alice';
  const secret = 'averylongsecret1';

  before(async () => {
    ({ child, port } = await serve(['--target', IQN, '--lun', '0=memory:16MiB', '--chap', `${user}:${secret}`]));
  });
  after(() => stop(child));

  test('the right secret logs in', async () => {
    const r = await tool('iscsi-inq', [`iscsi://${user}%${secret}@127.0.0.1:${port}/${IQN}/0`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /DIRECT_ACCESS/);
  });

  test('a wrong secret is refused', async () => {
    const r = await tool('iscsi-inq', [`iscsi://${user}%wrongsecret123@127.0.0.1:${port}/${IQN}/0`]);
    assert.notEqual(r.code, 0);
  });

  test('no secret is refused', async () => {
    const r = await tool('iscsi-inq', [`iscsi://127.0.0.1:${port}/${IQN}/0`]);
    assert.notEqual(r.code, 0);
  });
});

describe('initiator ACL', () => {
  let child: ChildProcess;
  let port: number;

  before(async () => {
    ({ child, port } = await serve(['--target', IQN, '--lun', '0=memory:16MiB', '--allow', ALLOWED]));
  });
  after(() => stop(child));

  test('the allowed initiator logs in', async () => {
    const r = await tool('iscsi-inq', ['-i', ALLOWED, `iscsi://127.0.0.1:${port}/${IQN}/0`]);
    assert.equal(r.code, 0, r.stderr);
  });

  test('another initiator is refused', async () => {
    const r = await tool('iscsi-inq', ['-i', 'iqn.2026-11.net.spindle.test:intruder', `iscsi://127.0.0.1:${port}/${IQN}/0`]);
    assert.notEqual(r.code, 0);
  });

  test('discovery shows the target only to the allowed initiator', async () => {
    const allowed = await tool('iscsi-ls', ['-i', ALLOWED, `iscsi://127.0.0.1:${port}`]);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, new RegExp(IQN.replace(/\./g, '\\.')));
    const other = await tool('iscsi-ls', ['-i', 'iqn.2026-11.net.spindle.test:intruder', `iscsi://127.0.0.1:${port}`]);
    assert.doesNotMatch(other.stdout, new RegExp(IQN.replace(/\./g, '\\.')));
  });
});

describe('target serve errors', () => {
  test('a bad IQN, a bad LUN spec and a missing image are one-line errors', async () => {
    const badIqn = await runCli(['target', 'serve', '--target', 'not a name', '--lun', '0=memory:1MiB']);
    assert.equal(badIqn.code, 2);
    assert.match(badIqn.stderr, /^spindle: --target not a name: .+\n$/);
    const badLun = await runCli(['target', 'serve', '--target', IQN, '--lun', '0=tape:/dev/st0']);
    assert.equal(badLun.code, 2);
    assert.match(badLun.stderr, /^spindle: --lun 0=tape:\/dev\/st0: .+\n$/);
    const missing = await runCli(['target', 'serve', '--target', IQN, '--lun', `0=file:${join(dir, 'missing.img')}`, '--portal', '127.0.0.1:0']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^spindle: .*missing\.img.*\n$/);
  });

  test('a CHAP secret under 12 bytes is refused before any image file is created', async () => {
    const img = join(dir, 'never-made.img');
    const r = await runCli(['target', 'serve', '--target', IQN, '--lun', `0=file:${img}:16MiB`, '--chap', 'alice:xyzzy42', '--portal', '127.0.0.1:0']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^spindle: --chap\/--mutual-chap: .*12.*\n$/);
    assert.equal(existsSync(img), false, 'no image file was left behind');
    assert.doesNotMatch(r.stderr, /xyzzy42/, 'the secret is not echoed');
  });

  test('a port in use says so', async () => {
    const srv = createServer();
    const port = await new Promise<number>((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as { port: number }).port)));
    try {
      const r = await runCli(['target', 'serve', '--target', IQN, '--lun', '0=memory:1MiB', '--portal', `127.0.0.1:${port}`]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /already in use/);
    } finally {
      srv.close();
    }
  });
});
