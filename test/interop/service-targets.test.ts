// Issue 4's "Must show", as a user does it: the `spindle` CLI on a real data
// dir (a real SQLite file), a real `spindle serve` process on a loopback
// portal, and libiscsi's tools (iscsi-inq, iscsi-ls) and qemu-img (libiscsi
// inside) as the initiators. Covers: create → serve → refused initiator shows
// up as an access request → allow lets it in with no restart → kill -9 and
// restart keeps both and the data; CLI changes with and without a running
// serve; targetcli saveconfig.json export/import; a target whose image is gone
// at start; one-line errors that leave the DB unchanged; secrets never listed
// or logged.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { exitOf, repoRoot, type CliResult } from '../support/cli';
import { freePort, requirePeers } from '../support/peers';

const NS = 'iqn.2026-11.net.spindle.test';
const ALLOWED = `${NS}:host-a`;
const SECOND = `${NS}:host-b`;

let root: string;

before(() => {
  requirePeers(['iscsi-inq', 'iscsi-ls', 'qemu-img']);
  root = mkdtempSync(join(tmpdir(), 'spindle-svc-'));
});

const running = new Set<Serve>();
after(async () => {
  for (const s of [...running]) await crash(s).catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
});

// ---- helpers ------------------------------------------------------------------

function dir(name: string): string {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  return d;
}

// The real CLI, run as `node --import tsx src-main/cli/main.ts` (what the tsx
// binary does, minus its extra wrapper process: these tests run ~70 commands
// on a 2-core machine, and the service is then the child itself).
const CLI = [process.execPath, '--import', 'tsx', join(repoRoot, 'src-main/cli/main.ts')] as const;

function runSpindle(args: string[], timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(CLI[0], [...CLI.slice(1), ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`spindle ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `spindle ARGS --data DATA`. */
function spindle(data: string, ...args: string[]): Promise<CliResult> {
  return runSpindle([...args, '--data', data]);
}

/** `spindle ARGS --data DATA`, which must succeed. */
async function ok(data: string, ...args: string[]): Promise<CliResult> {
  const r = await spindle(data, ...args);
  assert.equal(r.code, 0, `spindle ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

// Parsed CLI JSON is read loosely: the assertions are the type check.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

async function json(data: string, ...args: string[]): Promise<Json> {
  const r = await ok(data, ...args, '--json');
  return JSON.parse(r.stdout);
}

const targetsList = (data: string): Promise<Json[]> => json(data, 'targets', 'list');
const requestsList = (data: string): Promise<Json[]> => json(data, 'requests', 'list');

/** A failed command: exit 1 or 2, one line on stderr ("spindle: ..."), nothing on stdout. */
function assertOneLineError(r: CliResult, what: string, pattern?: RegExp): void {
  assert.ok(r.code === 1 || r.code === 2, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^spindle: \S/, what);
  assert.equal(r.stdout, '', `${what}: nothing on stdout`);
  if (pattern) assert.match(lines[0]!, pattern, what);
}

interface Serve {
  child: ChildProcess;
  output: () => string;
  /** The process that runs the service (api.json names it). */
  pid: number;
  port: number;
}

/** `spindle serve --data DATA --portal 127.0.0.1:PORT --ui 127.0.0.1:0`, resolved once it prints its `ui:` line. */
async function startServe(data: string, port: number): Promise<Serve> {
  const args = ['serve', '--data', data, '--portal', `127.0.0.1:${port}`, '--ui', '127.0.0.1:0'];
  // UV_THREADPOOL_SIZE set: serve then skips its thread-pool re-exec, so the service is this very
  // process (api.json names it, and kill -9 hits the service itself).
  const child = spawn(CLI[0], [...CLI.slice(1), ...args], {
    cwd: repoRoot,
    env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const serve: Serve = { child, output: () => out, pid: child.pid ?? -1, port };
  running.add(serve);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`spindle serve was not ready within 60 s:\n${out}`)), 60_000);
    const check = () => {
      if (/^ui: http:\S+$/m.test(out)) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`spindle serve exited (${code}) before it was ready:\n${out}`));
    };
    child.stdout!.on('data', check);
    child.once('exit', onExit);
  });
  const endpoint = JSON.parse(readFileSync(join(data, 'api.json'), 'utf8')) as { pid: number };
  assert.equal(endpoint.pid, child.pid, 'api.json names the serve process');
  assert.match(out, new RegExp(`^iscsi: listening on 127\\.0\\.0\\.1:${port}$`, 'm'));
  return serve;
}

async function stopServe(s: Serve): Promise<void> {
  running.delete(s);
  s.child.kill('SIGTERM');
  assert.equal(await exitOf(s.child), 0, `serve exits 0 on SIGTERM:\n${s.output()}`);
}

/** kill -9 of the service process itself (not just tsx's wrapper). */
async function crash(s: Serve): Promise<void> {
  running.delete(s);
  try {
    process.kill(s.pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
  s.child.kill('SIGKILL');
  await exitOf(s.child);
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(s.pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`serve pid ${s.pid} survived SIGKILL`);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function tool(bin: string, args: string[], timeout = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(bin, args, { encoding: 'utf8', timeout }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

const url = (port: number, iqn: string, lun = 0) => `iscsi://127.0.0.1:${port}/${iqn}/${lun}`;
const inq = (port: number, initiator: string, iqn: string, lun = 0) => tool('iscsi-inq', ['-i', initiator, url(port, iqn, lun)]);

async function assertLogsIn(port: number, initiator: string, iqn: string, lun = 0): Promise<void> {
  const r = await inq(port, initiator, iqn, lun);
  assert.equal(r.code, 0, `${initiator} → ${iqn}: ${r.stderr}`);
  assert.match(r.stdout, /Peripheral Device Type:DIRECT_ACCESS/);
}

async function assertRefused(port: number, initiator: string, iqn: string): Promise<Run> {
  const r = await inq(port, initiator, iqn);
  assert.notEqual(r.code, 0, `${initiator} must be refused on ${iqn}`);
  return r;
}

/** qemu-img's libiscsi options for one LUN as one initiator. */
const qemuDest = (port: number, iqn: string, initiator: string, lun = 0) =>
  `driver=iscsi,transport=tcp,portal=127.0.0.1:${port},target=${iqn},lun=${lun},initiator-name=${initiator}`;

async function qemuCompare(file: string, port: number, iqn: string, initiator: string): Promise<void> {
  const r = await tool('qemu-img', ['compare', '--image-opts', `driver=raw,file.driver=file,file.filename=${file}`, qemuDest(port, iqn, initiator)]);
  assert.equal(r.code, 0, `qemu-img compare as ${initiator}: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /Images are identical/);
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** A 64 MiB raw file: random data at three places, zeros elsewhere (sparse). */
function patternFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  try {
    for (const at of [0, 20 * 1024 * 1024, size - 3 * 1024 * 1024]) writeSync(fd, randomBytes(3 * 1024 * 1024), 0, 3 * 1024 * 1024, at);
  } finally {
    closeSync(fd);
  }
}

/** Polls `fn` until it returns something truthy (the service records refusals asynchronously). */
async function eventually<T>(fn: () => Promise<T | undefined | null | false>, what: string, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const byIqn = (list: Json[], iqn: string): Json => {
  const t = list.find((x) => x.iqn === iqn);
  assert.ok(t, `${iqn} is listed`);
  return t;
};

// The scenarios are independent (own data dir, own port): two at a time.
describe('issue 4 with the real CLI, spindle serve and libiscsi', { concurrency: 2 }, () => {
// ---- 1. create → serve → access request → allow → kill -9 → restart ---------------

describe('a target made with the CLI, served by spindle serve, survives kill -9', () => {
  test('refused initiator → request → allow (no restart) → write → kill -9 → restart: both get in, data identical', { timeout: 240_000 }, async () => {
    const base = dir('must-show');
    const data = join(base, 'data');
    const image = join(base, 'disk.img');
    const iqn = `${NS}:must-show`;
    const SIZE = 64 * 1024 * 1024;

    const created = await ok(data, 'targets', 'add', iqn, '--lun', `0=file:${image}:64MiB`, '--allow', ALLOWED);
    assert.match(created.stdout, /^created /);
    assert.equal(statSync(image).size, SIZE, 'the image is created at its size');
    assert.ok(statSync(image).blocks * 512 < 1024 * 1024, 'and sparse');

    const port = await freePort();
    let serve = await startServe(data, port);
    assert.match(serve.output(), /^targets: 1 serving/m);

    await assertLogsIn(port, ALLOWED, iqn);
    const refused = await assertRefused(port, SECOND, iqn);
    assert.match(refused.stderr, /Authorization failure/);

    // The refusal is an access request, read through the running serve.
    const pending = await eventually(async () => (await requestsList(data)).find((r) => r.initiatorIqn === SECOND), 'the access request');
    assert.equal(pending.targetIqn, iqn);
    assert.equal(pending.decision, null);
    assert.match(pending.address, /^127\.0\.0\.1\b/);
    assert.ok(pending.count >= 1);
    assert.equal((await requestsList(data)).filter((r) => r.initiatorIqn === ALLOWED).length, 0, 'an allowed initiator makes no request');

    const allowed = await ok(data, 'requests', 'allow', SECOND);
    assert.match(allowed.stdout, new RegExp(`allowed ${SECOND} on ${iqn}`));
    await assertLogsIn(port, SECOND, iqn); // same serve process, no restart
    assert.equal(serve.child.exitCode, null, 'serve kept running');
    assert.equal((await requestsList(data)).find((r) => r.initiatorIqn === SECOND).decision, 'allowed');
    assert.deepEqual(byIqn(await targetsList(data), iqn).acls.map((a: Json) => a.initiatorIqn).sort(), [ALLOWED, SECOND]);

    // Known data in through one initiator, read back through the other.
    const src = join(base, 'pattern.raw');
    patternFile(src, SIZE);
    const conv = await tool('qemu-img', ['convert', '-n', '-f', 'raw', '--target-image-opts', src, qemuDest(port, iqn, SECOND)], 120_000);
    assert.equal(conv.code, 0, conv.stdout + conv.stderr);
    await qemuCompare(src, port, iqn, ALLOWED);
    assert.equal(sha256(image), sha256(src), 'the bytes are in the image file');

    // kill -9: no clean shutdown, no chance to save anything.
    await crash(serve);
    await assertRefused(port, ALLOWED, iqn); // nothing serves after the kill

    serve = await startServe(data, port);
    assert.match(serve.output(), /^targets: 1 serving/m);
    await assertLogsIn(port, ALLOWED, iqn);
    await assertLogsIn(port, SECOND, iqn);
    await qemuCompare(src, port, iqn, ALLOWED);
    await qemuCompare(src, port, iqn, SECOND);
    const t = byIqn(await targetsList(data), iqn);
    assert.equal(t.state, 'serving');
    assert.deepEqual(t.portals, [`127.0.0.1:${port}`]);
    await stopServe(serve);
    assert.equal(existsSync(join(data, 'api.json')), false, 'a clean stop removes api.json');
  });
});

// ---- 2. the CLI with and without a running serve -------------------------------

describe('the CLI changes the DB directly without serve, and the running serve at once with it', () => {
  test('offline changes are served by the next serve; live luns add/remove, acls remove, disable apply at once', { timeout: 180_000 }, async () => {
    const base = dir('live');
    const data = join(base, 'data');
    const iqn = `${NS}:live`;

    // No serve: straight into spindle.db.
    await ok(data, 'targets', 'add', iqn, '--lun', `0=file:${join(base, 'l0.img')}:16MiB`, '--allow', ALLOWED);
    await ok(data, 'luns', 'add', iqn, '1=memory:8MiB');
    await ok(data, 'acls', 'add', iqn, SECOND);
    const offline = byIqn(await targetsList(data), iqn);
    assert.equal(offline.state, 'stopped');
    assert.deepEqual(offline.luns.map((l: Json) => l.lun), [0, 1]);
    assert.equal(existsSync(join(data, 'spindle.db')), true);

    const port = await freePort();
    const serve = await startServe(data, port);
    try {
      let ls = await tool('iscsi-ls', ['-s', '-i', ALLOWED, `iscsi://127.0.0.1:${port}`]);
      assert.equal(ls.code, 0, ls.stderr);
      assert.match(ls.stdout, new RegExp(`Target:${iqn.replace(/\./g, '\\.')} Portal:127\\.0\\.0\\.1:${port},1`));
      assert.match(ls.stdout, /Lun:0\s+Type:DIRECT_ACCESS \(Size:1[56]M\)/);
      assert.match(ls.stdout, /Lun:1\s+Type:DIRECT_ACCESS \(Size:[78]M\)/);
      await assertLogsIn(port, SECOND, iqn);

      // Live: through serve's API.
      await ok(data, 'luns', 'add', iqn, `2=file:${join(base, 'l2.img')}:32MiB`);
      await ok(data, 'luns', 'remove', iqn, '1');
      ls = await tool('iscsi-ls', ['-s', '-i', ALLOWED, `iscsi://127.0.0.1:${port}`]);
      assert.equal(ls.code, 0, ls.stderr);
      assert.match(ls.stdout, /Lun:2\s+Type:DIRECT_ACCESS \(Size:3[12]M\)/, ls.stdout);
      assert.doesNotMatch(ls.stdout, /Lun:1\s/, 'LUN 1 is gone');
      await assertLogsIn(port, ALLOWED, iqn, 2);

      await ok(data, 'acls', 'remove', iqn, SECOND);
      const r = await assertRefused(port, SECOND, iqn);
      assert.match(r.stderr, /Authorization failure/);
      await assertLogsIn(port, ALLOWED, iqn);

      await ok(data, 'targets', 'disable', iqn);
      await assertRefused(port, ALLOWED, iqn);
      assert.equal(serve.child.exitCode, null, 'one serve process throughout');
    } finally {
      await stopServe(serve);
    }

    // What the live changes wrote is what the DB holds (read directly now that serve stopped).
    const after = byIqn(await targetsList(data), iqn);
    assert.deepEqual(after.luns.map((l: Json) => l.lun), [0, 2]);
    assert.deepEqual(after.acls.map((a: Json) => a.initiatorIqn), [ALLOWED]);
    assert.equal(after.enabled, false);
    assert.equal(after.state, 'disabled');
  });
});

// ---- 3. targetcli's saveconfig.json --------------------------------------------

/** A saveconfig.json with its lists in a canonical order (ids and list order are not configuration). */
function canonicalLio(text: string): Json {
  const doc = JSON.parse(text);
  const by = (k: string) => (a: Json, b: Json) => String(a[k]).localeCompare(String(b[k]));
  doc.storage_objects.sort(by('name'));
  doc.targets.sort(by('wwn'));
  for (const t of doc.targets) {
    for (const tpg of t.tpgs) {
      tpg.luns.sort((a: Json, b: Json) => a.index - b.index);
      tpg.node_acls.sort(by('node_wwn'));
      for (const a of tpg.node_acls) a.mapped_luns.sort((x: Json, y: Json) => x.index - y.index);
      tpg.portals.sort(by('ip_address'));
    }
  }
  return doc;
}

describe("targetcli's saveconfig.json", () => {
  test('export → import into a fresh data dir → export again gives the same configuration', { timeout: 120_000 }, async () => {
    const base = dir('roundtrip');
    const a = join(base, 'a');
    const b = join(base, 'b');
    const one = `${NS}:rt-one`;
    const two = `${NS}:rt-two`;
    await ok(a, 'targets', 'add', one, '--lun', `0=file:${join(base, 'one0.img')}:16MiB`, '--lun', '1=memory:4MiB', '--lun', `2=file:${join(base, 'one2.img')}:8MiB`,
      '--read-only', '2', '--allow', ALLOWED, '--allow', SECOND, '--chap', 'rtuser:rt-secret-0001', '--mutual-chap', 'rttarget:rt-mutual-0001', '--alias', 'Round trip');
    await ok(a, 'targets', 'add', two, '--lun', `0=file:${join(base, 'two0.img')}:16MiB`, '--allow', `${NS}:host-c`, '--disabled');

    const f1 = join(base, 'one.json');
    const f2 = join(base, 'two.json');
    await ok(a, 'config', 'export', f1);
    assert.equal(statSync(f1).mode & 0o777, 0o600, 'the export holds CHAP secrets: 0600');
    const report = await json(b, 'config', 'import', f1);
    assert.deepEqual([...report.created].sort(), [one, two]);
    assert.deepEqual(report.unmapped, [], 'Spindle maps everything it exported');
    assert.deepEqual(report.skipped, []);
    await ok(b, 'config', 'export', f2);
    assert.deepEqual(canonicalLio(readFileSync(f2, 'utf8')), canonicalLio(readFileSync(f1, 'utf8')));

    // What went through: both targets, the alias, the disabled one, the read-only LUN, both CHAP pairs.
    const doc = canonicalLio(readFileSync(f2, 'utf8'));
    const [tOne, tTwo] = doc.targets;
    assert.deepEqual([tOne.wwn, tTwo.wwn], [one, two]);
    assert.equal(tOne.tpgs[0].parameters.TargetAlias, 'Round trip');
    assert.equal(tTwo.tpgs[0].enable, false);
    assert.deepEqual(tOne.tpgs[0].luns.map((l: Json) => l.index), [0, 1, 2]);
    assert.deepEqual(tOne.tpgs[0].node_acls.map((x: Json) => [x.node_wwn, x.chap_userid, x.chap_password, x.chap_mutual_userid, x.chap_mutual_password]), [
      [ALLOWED, 'rtuser', 'rt-secret-0001', 'rttarget', 'rt-mutual-0001'],
      [SECOND, 'rtuser', 'rt-secret-0001', 'rttarget', 'rt-mutual-0001'],
    ]);
    assert.ok(
      tOne.tpgs[0].node_acls.every((x: Json) => x.mapped_luns.find((m: Json) => m.tpg_lun === 2)?.write_protect === true) || JSON.stringify(doc.spindle ?? {}).includes('one2'),
      'LUN 2 stays read-only',
    );
    const lb = await targetsList(b);
    assert.equal(byIqn(lb, one).luns.find((l: Json) => l.lun === 2).readOnly, true);
    assert.equal(byIqn(lb, two).enabled, false);
  });

  test('a saveconfig.json in targetcli\'s format: maps block/fileio/ramdisk, two targets, ACLs with CHAP; reports the rest', { timeout: 120_000 }, async () => {
    const base = dir('targetcli');
    const data = join(base, 'data');
    const fileImg = join(base, 'file1.img');
    writeFileSync(fileImg, '');
    const { truncateSync } = await import('node:fs');
    truncateSync(fileImg, 64 * 1024 * 1024);
    const goneDev = `/dev/spindle-test-absent-${process.pid}`;
    const T1 = 'iqn.2003-01.org.linux-iscsi.nas.x8664:sn.1a2b3c4d5e6f';
    const T2 = 'iqn.2003-01.org.linux-iscsi.nas.x8664:sn.backup';
    const INIT_CHAP = 'iqn.1994-05.com.redhat:5a1f0c0ffee';
    const INIT_SHORT = 'iqn.1991-05.com.microsoft:desktop-win';
    const INIT_OPEN = 'iqn.2004-10.com.ubuntu:01:open';
    const defaultParams = {
      AuthMethod: 'CHAP,None', DataDigest: 'CRC32C,None', DataPDUInOrder: 'Yes', DataSequenceInOrder: 'Yes', DefaultTime2Retain: '20', DefaultTime2Wait: '2',
      ErrorRecoveryLevel: '0', FirstBurstLength: '65536', HeaderDigest: 'CRC32C,None', IFMarkInt: 'Reject', IFMarker: 'No', ImmediateData: 'Yes', InitialR2T: 'Yes',
      MaxBurstLength: '262144', MaxConnections: '1', MaxOutstandingR2T: '1', MaxRecvDataSegmentLength: '8192', MaxXmitDataSegmentLength: '262144',
      OFMarkInt: 'Reject', OFMarker: 'No', TargetAlias: 'LIO Target',
    };
    const tpgAttrs = (auth: number, demo = 0) => ({
      authentication: auth, cache_dynamic_acls: 0, default_cmdsn_depth: 64, default_erl: 0, demo_mode_discovery: 1, demo_mode_write_protect: 1,
      generate_node_acls: demo, login_timeout: 15, netif_timeout: 2, prod_mode_write_protect: 0, t10_pi: 0, tpg_enabled_sendtargets: 1,
    });
    const saveconfig = {
      fabric_modules: [{ name: 'iscsi', discovery_enable_auth: true, discovery_userid: 'disc', discovery_password: 'discoverysecret', discovery_mutual_userid: '', discovery_mutual_password: '' }],
      storage_objects: [
        { alua_tpgs: [], attributes: { block_size: 512, emulate_tpu: 0, emulate_write_cache: 0 }, dev: goneDev, name: 'disk0', plugin: 'block', readonly: false, write_back: false, wwn: '0d0e0f10-1112-4314-9516-17181a1b1c1d' },
        { aio: false, alua_tpgs: [], attributes: { block_size: 512, emulate_tpu: 1 }, dev: fileImg, name: 'file1', plugin: 'fileio', size: 64 * 1024 * 1024, write_back: true, wwn: '1d0e0f10-1112-4314-9516-17181a1b1c1d' },
        { attributes: { block_size: 512 }, name: 'scratch', nullio: false, plugin: 'ramdisk', size: 16 * 1024 * 1024, wwn: '2d0e0f10-1112-4314-9516-17181a1b1c1d' },
        { attributes: { block_size: 512 }, dev: '/dev/sg9', name: 'tape0', plugin: 'pscsi' },
      ],
      targets: [
        {
          fabric: 'iscsi',
          wwn: T1,
          tpgs: [
            {
              tag: 1,
              enable: true,
              attributes: tpgAttrs(1),
              parameters: defaultParams,
              luns: [
                { alias: 'a1b2c3d4e5', index: 0, storage_object: '/backstores/block/disk0' },
                { alias: 'b1b2c3d4e5', index: 1, storage_object: '/backstores/fileio/file1' },
                { alias: 'c1b2c3d4e5', index: 2, storage_object: '/backstores/pscsi/tape0' },
              ],
              node_acls: [
                {
                  node_wwn: INIT_CHAP,
                  chap_userid: 'linuxbox',
                  chap_password: 'linuxbox-secret1',
                  chap_mutual_userid: 'nas',
                  chap_mutual_password: 'nas-mutual-sec01',
                  attributes: { dataout_timeout: 3, nopin_timeout: 15 },
                  mapped_luns: [
                    { index: 0, tpg_lun: 0, write_protect: false },
                    { index: 1, tpg_lun: 1, write_protect: false },
                  ],
                },
                {
                  node_wwn: INIT_SHORT,
                  chap_userid: 'win',
                  chap_password: 'short',
                  mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }],
                },
              ],
              portals: [{ ip_address: '0.0.0.0', iser: false, offload: false, port: 3260 }],
            },
          ],
        },
        {
          fabric: 'iscsi',
          wwn: T2,
          tpgs: [
            {
              tag: 1,
              enable: true,
              attributes: tpgAttrs(0),
              parameters: { ...defaultParams, ErrorRecoveryLevel: '2' },
              luns: [{ index: 0, storage_object: '/backstores/ramdisk/scratch' }],
              node_acls: [{ node_wwn: INIT_OPEN, mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: true }] }],
              portals: [{ ip_address: '0.0.0.0', port: 3260 }],
            },
            { tag: 2, enable: false, attributes: tpgAttrs(0, 1), luns: [], node_acls: [], portals: [] },
          ],
        },
        { fabric: 'loopback', wwn: 'naa.5001405d0e0f1011', tpgs: [{ tag: 1, luns: [{ index: 0, storage_object: '/backstores/fileio/file1' }] }] },
      ],
    };
    const file = join(base, 'saveconfig.json');
    writeFileSync(file, JSON.stringify(saveconfig, null, 2));

    const report = await json(data, 'config', 'import', file);
    assert.deepEqual([...report.created].sort(), [T1, T2]);
    const unmapped: Array<{ path: string; reason: string }> = report.unmapped;
    const reported = (path: string, reason: RegExp) =>
      assert.ok(unmapped.some((u) => u.path.startsWith(path) && reason.test(u.reason)), `expected ${path} ~ ${reason} in ${JSON.stringify(unmapped, null, 1)}`);
    reported('fabric_modules[0]', /discovery/i);
    reported('storage_objects[3]', /pscsi/);
    reported('targets[0].tpgs[0].luns[2]', /not imported|left out/);
    reported('targets[0].tpgs[0].node_acls[1]', /CHAP.*12/);
    reported('targets[1].tpgs[0].parameters.ErrorRecoveryLevel', /ErrorRecoveryLevel 0/);
    reported('targets[1].tpgs[1]', /one portal group/);
    reported('targets[2]', /loopback|iSCSI/);
    // Secrets never appear in the report.
    for (const s of ['linuxbox-secret1', 'nas-mutual-sec01', 'discoverysecret']) assert.doesNotMatch(JSON.stringify(report), new RegExp(s));

    const list = await targetsList(data);
    assert.equal(list.length, 2);
    const t1 = byIqn(list, T1);
    assert.deepEqual(
      t1.luns.map((l: Json) => [l.lun, l.backstore.kind, l.backstore.path]),
      [
        [0, 'block', goneDev],
        [1, 'file', fileImg],
      ],
    );
    assert.deepEqual(t1.acls.map((a: Json) => [a.initiatorIqn, a.chapUser, a.mutualUser]), [[INIT_CHAP, 'linuxbox', 'nas']]);
    const t2 = byIqn(list, T2);
    assert.deepEqual(t2.luns.map((l: Json) => [l.lun, l.backstore.kind, l.backstore.sizeBytes, l.readOnly]), [[0, 'memory', 16 * 1024 * 1024, true]]);
    assert.deepEqual(t2.acls.map((a: Json) => [a.initiatorIqn, a.chapUser]), [[INIT_OPEN, null]]);
    assert.doesNotMatch(JSON.stringify(list), /linuxbox-secret1|nas-mutual-sec01/);

    // The block device that does not exist: the next serve brings that target up disabled, naming it; the other serves.
    const port = await freePort();
    const serve = await startServe(data, port);
    try {
      assert.match(serve.output(), /^targets: 1 serving, 1 disabled/m);
      const after = await targetsList(data);
      assert.equal(byIqn(after, T1).state, 'disabled');
      assert.match(byIqn(after, T1).reason, new RegExp(goneDev));
      assert.equal(byIqn(after, T2).state, 'serving');
      await assertLogsIn(port, INIT_OPEN, T2);
    } finally {
      await stopServe(serve);
    }
  });

  test(
    'importing a block backstore on the system disk is refused like `targets add` refuses it',
    { timeout: 60_000 },
    async () => {
      const sys = (await tool('findmnt', ['-n', '-o', 'SOURCE', '/'])).stdout.trim();
      if (!sys.startsWith('/dev/')) return; // overlay/container root: nothing to check here
      const base = dir('sysdisk');
      const data = join(base, 'data');
      const iqn = 'iqn.2003-01.org.linux-iscsi.nas.x8664:sn.sysdisk';
      const file = join(base, 'saveconfig.json');
      writeFileSync(
        file,
        JSON.stringify({
          storage_objects: [{ name: 'root', plugin: 'block', dev: sys, readonly: false }],
          targets: [{ fabric: 'iscsi', wwn: iqn, tpgs: [{ tag: 1, enable: true, attributes: { authentication: 0 }, luns: [{ index: 0, storage_object: '/backstores/block/root' }], node_acls: [], portals: [] }] }],
        }),
      );
      const direct = await spindle(data, 'targets', 'add', `${NS}:sys`, '--lun', `0=block:${sys}`);
      assertOneLineError(direct, 'targets add on the system disk', /cannot be shared/);
      const report = await json(data, 'config', 'import', file);
      const list = await targetsList(data);
      const t = list.find((x) => x.iqn === iqn);
      const refused = JSON.stringify([...report.unmapped, ...report.skipped]).includes(sys);
      assert.ok(refused && (t === undefined || !t.luns.some((l: Json) => l.backstore.path === sys && !l.readOnly)), `import took ${sys} read-write: ${JSON.stringify({ report, t })}`);
    },
  );
});

// ---- discovery asks too ------------------------------------------------------------

describe('access requests from discovery', () => {
  test('an initiator whose SendTargets hides a target is asked about; allowing it lists the target; after its ACL is removed a new try is pending again', { timeout: 90_000 }, async () => {
    const base = dir('discovery');
    const data = join(base, 'data');
    const iqn = `${NS}:discovered`;
    await ok(data, 'targets', 'add', iqn, '--lun', '0=memory:8MiB', '--allow', ALLOWED);
    const port = await freePort();
    const serve = await startServe(data, port);
    try {
      // What Windows' Quick Connect and `iscsiadm -m discovery` do first: discovery, not a login.
      const hidden = await tool('iscsi-ls', ['-i', SECOND, `iscsi://127.0.0.1:${port}`]);
      assert.doesNotMatch(hidden.stdout, new RegExp(iqn), 'discovery hides the target from an initiator not on its list');
      const pending = await eventually(async () => (await requestsList(data)).find((r) => r.initiatorIqn === SECOND && r.decision === null), 'a pending request after discovery');
      assert.equal(pending.targetIqn, iqn);
      await ok(data, 'requests', 'allow', String(pending.id));
      const shown = await tool('iscsi-ls', ['-i', SECOND, `iscsi://127.0.0.1:${port}`]);
      assert.match(shown.stdout, new RegExp(`Target:${iqn}`), 'after allow, discovery lists it');
      await assertLogsIn(port, SECOND, iqn);
      // Taking the ACL away: the next refusal is a new pending request, not a count on the old "allowed" one.
      await ok(data, 'acls', 'remove', iqn, SECOND);
      await assertRefused(port, SECOND, iqn);
      const again = await eventually(async () => (await requestsList(data)).find((r) => r.initiatorIqn === SECOND && r.decision === null), 'pending again after the ACL was removed');
      assert.equal(again.count, 1);
    } finally {
      await stopServe(serve);
    }
  });
});

// ---- 4. an image gone at start ----------------------------------------------------

describe('restore on start', () => {
  test('a target whose image file is gone comes up disabled with the reason; the others serve; enable after the file is back serves it', { timeout: 120_000 }, async () => {
    const base = dir('gone');
    const data = join(base, 'data');
    const lost = `${NS}:lost`;
    const kept = `${NS}:kept`;
    const lostImg = join(base, 'lost.img');
    await ok(data, 'targets', 'add', lost, '--lun', `0=file:${lostImg}:16MiB`, '--allow', ALLOWED);
    await ok(data, 'targets', 'add', kept, '--lun', `0=file:${join(base, 'kept.img')}:16MiB`, '--allow', ALLOWED);
    // A marker in the lost image, to check it is the same file that comes back.
    const marker = randomBytes(4096);
    const fd = openSync(lostImg, 'r+');
    writeSync(fd, marker, 0, marker.length, 0);
    closeSync(fd);
    renameSync(lostImg, `${lostImg}.away`);

    const port = await freePort();
    const serve = await startServe(data, port);
    try {
      assert.match(serve.output(), /^targets: 1 serving, 1 disabled/m);
      assert.match(serve.output(), new RegExp(`${lost.replace(/\./g, '\\.')} disabled: .*${lostImg.replace(/[.]/g, '\\.')}`));
      let list = await targetsList(data);
      assert.equal(byIqn(list, lost).enabled, false);
      assert.equal(byIqn(list, lost).state, 'disabled');
      assert.match(byIqn(list, lost).reason, /gone/);
      assert.match(byIqn(list, lost).reason, new RegExp(lostImg.replace(/[.]/g, '\\.')));
      assert.equal(byIqn(list, kept).state, 'serving');
      await assertLogsIn(port, ALLOWED, kept);
      await assertRefused(port, ALLOWED, lost);
      assert.equal(existsSync(lostImg), false, 'restore never re-creates a vanished image empty');

      // Enabling while the file is still gone: one-line error, nothing changes.
      const early = await spindle(data, 'targets', 'enable', lost);
      assertOneLineError(early, 'enable with the image gone', /gone|cannot be enabled/);
      assert.equal(byIqn(await targetsList(data), lost).state, 'disabled');

      renameSync(`${lostImg}.away`, lostImg);
      await ok(data, 'targets', 'enable', lost);
      list = await targetsList(data);
      assert.equal(byIqn(list, lost).state, 'serving');
      assert.equal(byIqn(list, lost).reason, null);
      await assertLogsIn(port, ALLOWED, lost);
      // The same file is served: its marker is there and the LUN reads back as the file.
      assert.ok(readFileSync(lostImg).subarray(0, 4096).equals(marker));
      await qemuCompare(lostImg, port, lost, ALLOWED);
    } finally {
      await stopServe(serve);
    }
    assert.equal(byIqn(await targetsList(data), lost).enabled, true, 'enabled is stored');
  });
});

// ---- 5. bad input ---------------------------------------------------------------------

describe('bad input: one-line error, exit 1 or 2, the DB unchanged', () => {
  test('bad IQN, 11-byte CHAP secret, one image read-write in two LUNs, unknown target/request, bad --lun, missing file without size', { timeout: 120_000 }, async () => {
    const base = dir('bad');
    const data = join(base, 'data');
    const iqn = `${NS}:bad-base`;
    const used = join(base, 'used.img');
    await ok(data, 'targets', 'add', iqn, '--lun', `0=file:${used}:8MiB`, '--allow', ALLOWED);
    const before = (await ok(data, 'targets', 'list', '--json')).stdout;
    const requestsBefore = (await ok(data, 'requests', 'list', '--json')).stdout;
    const twice = join(base, 'twice.img');

    const cases: Array<[string, string[], RegExp]> = [
      ['bad target IQN', ['targets', 'add', 'iqn.2026-13.bad', '--lun', '0=memory:1MiB'], /not a valid target name/],
      ['bad initiator IQN', ['acls', 'add', iqn, 'not an iqn'], /initiator name/],
      ['11-byte CHAP secret', ['targets', 'add', `${NS}:bad-chap`, '--lun', '0=memory:1MiB', '--allow', SECOND, '--chap', 'user:12345678901'], /12 to 16 bytes/],
      ['an image read-write in another target', ['targets', 'add', `${NS}:bad-dup`, '--lun', `0=file:${used}`], /already LUN 0/],
      ['an image read-write in two LUNs of one target', ['targets', 'add', `${NS}:bad-twice`, '--lun', `0=file:${twice}:1MiB`, '--lun', `1=file:${twice}`], /already LUN|read-only/],
      ['unknown target', ['luns', 'add', `${NS}:nope`, '1=memory:1MiB'], /no target/],
      ['unknown request id', ['requests', 'allow', '999'], /no access request 999/],
      ['unknown requester', ['requests', 'deny', SECOND], /has not asked/],
      ['bad --lun: not N=SPEC', ['targets', 'add', `${NS}:bad-lun`, '--lun', 'zero=memory:1MiB'], /--lun/],
      ['bad --lun: unknown kind', ['luns', 'add', iqn, '1=tape:/dev/st0'], /tape/],
      ['missing file without size', ['targets', 'add', `${NS}:bad-missing`, '--lun', `0=file:${join(base, 'absent.img')}`], /does not exist/],
    ];
    for (const [what, args, pattern] of cases) {
      const r = await spindle(data, ...args);
      assertOneLineError(r, what, pattern);
    }
    assert.equal((await ok(data, 'targets', 'list', '--json')).stdout, before, 'targets list --json is byte-for-byte the same');
    assert.equal((await ok(data, 'requests', 'list', '--json')).stdout, requestsBefore);
    assert.equal(existsSync(twice), false, 'an image created for a refused target is removed again');
    assert.equal(existsSync(join(base, 'absent.img')), false);
  });
});

// ---- 6. secrets ------------------------------------------------------------------------

describe('CHAP secrets are never listed or logged', () => {
  test('targets list, requests list, serve output and the event log never hold a secret; CHAP logins work', { timeout: 120_000 }, async () => {
    const base = dir('secrets');
    const data = join(base, 'data');
    const iqn = `${NS}:secret`;
    // Distinctive secrets (12–16 bytes) so any leak is found by a plain search.
    const s1 = `S1-${randomBytes(6).toString('hex')}`.slice(0, 16);
    const s2 = `S2-${randomBytes(6).toString('hex')}`.slice(0, 16);
    const s3 = `S3-${randomBytes(6).toString('hex')}`.slice(0, 16);
    const secrets = [s1, s2, s3];
    await ok(data, 'targets', 'add', iqn, '--lun', '0=memory:8MiB', '--allow', ALLOWED, '--chap', `chapuser:${s1}`, '--mutual-chap', `chaptarget:${s2}`);
    await ok(data, 'acls', 'add', iqn, SECOND, '--chap', `seconduser:${s3}`);

    const port = await freePort();
    const serve = await startServe(data, port);
    const outputs: string[] = [];
    try {
      // CHAP works with the stored secret, and the wrong one is refused.
      const good = await tool('iscsi-inq', ['-i', SECOND, `iscsi://seconduser%${s3}@127.0.0.1:${port}/${iqn}/0`]);
      assert.equal(good.code, 0, good.stderr);
      const bad = await tool('iscsi-inq', ['-i', SECOND, `iscsi://seconduser%wrong-secret-xx@127.0.0.1:${port}/${iqn}/0`]);
      assert.notEqual(bad.code, 0);
      // A refused initiator, so there is an access request to list.
      await assertRefused(port, `${NS}:stranger`, iqn);
      await eventually(async () => (await requestsList(data)).length > 0, 'an access request');

      for (const args of [['targets', 'list', '--json'], ['targets', 'list'], ['requests', 'list', '--json'], ['requests', 'list']]) {
        const r = await ok(data, ...args);
        outputs.push(r.stdout + r.stderr);
      }
      assert.match(outputs[0]!, /"chapUser": "chapuser"/);
      assert.match(outputs[0]!, /"mutualUser": "chaptarget"/);
    } finally {
      await stopServe(serve);
    }
    outputs.push(serve.output());
    const direct = await ok(data, 'targets', 'list', '--json'); // the DB path too
    outputs.push(direct.stdout);
    for (const out of outputs) for (const s of secrets) assert.ok(!out.includes(s), `a secret leaked into:\n${out}`);

    // The event log, and the SQLite files as bytes (secrets live elsewhere).
    const db = new Database(join(data, 'spindle.db'), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT * FROM event_log').all();
      assert.ok(rows.length > 0, 'the event log has entries');
      const log = JSON.stringify(rows);
      assert.ok(log.includes(iqn), 'the log mentions the target (so it is the log that was searched)');
      for (const s of secrets) assert.ok(!log.includes(s), `event_log holds a CHAP secret: ${log}`);
    } finally {
      db.close();
    }
    for (const f of ['spindle.db', 'spindle.db-wal']) {
      const p = join(data, f);
      if (!existsSync(p)) continue;
      const bytes = readFileSync(p);
      for (const s of secrets) assert.equal(bytes.indexOf(s), -1, `${f} holds a CHAP secret in clear`);
    }
    // Where the secrets are kept instead: a 0600 file beside the DB.
    const secretFile = join(data, 'secrets.json');
    if (existsSync(secretFile)) assert.equal(statSync(secretFile).mode & 0o777, 0o600);

    // The LIO export does carry them (as targetcli's file does), 0600.
    const exp = join(base, 'export.json');
    await ok(data, 'config', 'export', exp);
    assert.equal(statSync(exp).mode & 0o777, 0o600);
    const text = readFileSync(exp, 'utf8');
    for (const s of secrets) assert.ok(text.includes(s), 'the LIO export keeps the CHAP secrets');
  });
});
});
