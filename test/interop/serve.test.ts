// `spindle serve` as a user runs it: a real process, real sockets, a real
// SQLite file. Proves the token gate, the typed API over WebSocket, and the
// one-line errors for the ways start-up goes wrong.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { exitOf, runCli, startCli } from '../support/cli';

const tmp = mkdtempSync(join(tmpdir(), 'spindle-serve-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Opens /api and reports the HTTP status of the upgrade (101 = accepted). */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.on('error', (e) => reject(e));
  });
}

// Wire JSON is read loosely here: the assertions are the type check.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

function connect(url: string): Promise<{ call: (method: string, params?: unknown) => Promise<{ result?: Json; error?: Json }>; events: { event: string; data: Json }[]; close: () => void }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const pending = new Map<number, (v: { result?: unknown; error?: unknown }) => void>();
    const events: { event: string; data: unknown }[] = [];
    let next = 1;
    ws.on('message', (raw) => {
      const msg = JSON.parse(String(raw));
      if ('event' in msg) events.push(msg);
      else pending.get(msg.id)?.(msg);
    });
    ws.on('error', reject);
    ws.on('open', () =>
      resolve({
        call: (method, params) => new Promise<Json>((res) => {
          const id = next++;
          pending.set(id, res);
          ws.send(JSON.stringify({ id, method, params }));
        }),
        events: events as { event: string; data: Json }[],
        close: () => ws.close(),
      }),
    );
  });
}

describe('spindle serve (real process)', () => {
  let server: Awaited<ReturnType<typeof startCli>>;
  let base: URL;
  const dataDir = join(tmp, 'data');

  before(async () => {
    server = await startCli(['serve', '--data', dataDir, '--ui', '127.0.0.1:0', '--portal', '127.0.0.1:0'], /^ui: (http:\S+)$/m);
    base = new URL(server.match[1]);
  });
  after(async () => {
    server.child.kill('SIGTERM');
    await exitOf(server.child);
  });

  test('prints a loopback ui URL with a long random token', () => {
    assert.equal(base.hostname, '127.0.0.1');
    assert.ok((base.searchParams.get('token') ?? '').length >= 32);
  });

  test('serves the built UI with a strict CSP', async () => {
    const res = await fetch(new URL('/', base));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.match(await res.text(), /<div id="app"|<body/);
    const traversal = await fetch(new URL('/..%2f..%2fpackage.json', base));
    assert.equal(traversal.status, 404);
  });

  test('/api refuses a missing or wrong token with 401 and accepts the right one with 101', async () => {
    const api = `ws://${base.host}/api`;
    const token = base.searchParams.get('token')!;
    assert.equal(await upgradeStatus(api), 401);
    assert.equal(await upgradeStatus(`${api}?token=wrong`), 401);
    assert.equal(await upgradeStatus(`${api}?token=${token.slice(0, -1)}`), 401);
    assert.equal(await upgradeStatus(api, { Authorization: 'Bearer nope' }), 401);
    assert.equal(await upgradeStatus(`${api}?token=${token}`), 101);
    assert.equal(await upgradeStatus(api, { Authorization: `Bearer ${token}` }), 101);
  });

  test('/api refuses a page from another origin even with the token', async () => {
    const token = base.searchParams.get('token')!;
    assert.equal(await upgradeStatus(`ws://${base.host}/api?token=${token}`, { Origin: 'http://evil.example' }), 403);
  });

  test('the API answers typed calls, reports bad params per field, and streams 1 Hz stats', async () => {
    const c = await connect(`ws://${base.host}/api?token=${base.searchParams.get('token')}`);
    try {
      const info = await c.call('app.info');
      assert.equal(info.result.name, 'Spindle');
      assert.equal(info.result.dataDir, dataDir);
      assert.equal(info.result.transport, 'headless');
      const disks = await c.call('disks.list');
      assert.ok(Array.isArray(disks.result.disks));
      const bad = await c.call('settings.set', { defaultPortal: 'nope' });
      assert.equal(bad.error.code, 'INVALID_PARAMS');
      assert.ok(bad.error.fields.defaultPortal);
      const unknown = await c.call('disks.format');
      assert.equal(unknown.error.code, 'UNKNOWN_METHOD');
      const ok = await c.call('settings.set', { theme: 'dark' });
      assert.equal(ok.result.theme, 'dark');
      await new Promise((r) => setTimeout(r, 2200));
      assert.ok(c.events.filter((e) => e.event === 'stats').length >= 1, 'a stats event within 2.2 s');
      assert.ok(c.events.find((e) => e.event === 'stats')!.data.rssBytes > 0);
    } finally {
      c.close();
    }
  });
});

describe('spindle serve start-up errors (one line, non-zero exit)', () => {
  test('settings written through the API survive a restart (real SQLite file)', async () => {
    const dataDir = join(tmp, 'persist');
    const first = await startCli(['serve', '--data', dataDir, '--ui', '127.0.0.1:0', '--portal', '127.0.0.1:0'], /^ui: (http:\S+)$/m);
    const u1 = new URL(first.match[1]);
    const c1 = await connect(`ws://${u1.host}/api?token=${u1.searchParams.get('token')}`);
    await c1.call('settings.set', { diskPollSeconds: 42 });
    c1.close();
    first.child.kill('SIGTERM');
    assert.equal(await exitOf(first.child), 0, 'SIGTERM stops serve cleanly');

    const second = await startCli(['serve', '--data', dataDir, '--ui', '127.0.0.1:0', '--portal', '127.0.0.1:0'], /^ui: (http:\S+)$/m);
    const u2 = new URL(second.match[1]);
    assert.notEqual(u2.searchParams.get('token'), u1.searchParams.get('token'), 'a new token each start');
    const c2 = await connect(`ws://${u2.host}/api?token=${u2.searchParams.get('token')}`);
    assert.equal((await c2.call('settings.get')).result.diskPollSeconds, 42);
    c2.close();
    second.child.kill('SIGTERM');
    await exitOf(second.child);
  });

  test('a port already taken is refused with what to do', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await runCli(['serve', '--data', join(tmp, 'taken'), '--ui', `127.0.0.1:${port}`]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.match(r.stderr, /already in use.*--ui/);
    } finally {
      blocker.close();
    }
  });

  test('a data dir that cannot be created (under a regular file, so even root fails) is refused', async () => {
    const file = join(tmp, 'plainfile');
    writeFileSync(file, 'x');
    const r = await runCli(['serve', '--data', join(file, 'sub'), '--ui', '127.0.0.1:0', '--portal', '127.0.0.1:0']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /data dir/i);
  });

  test('a corrupt spindle.db is refused with a clear message and left byte-for-byte unchanged', async () => {
    const dataDir = join(tmp, 'corrupt');
    await runCli(['--help']);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dataDir, { recursive: true });
    const db = join(dataDir, 'spindle.db');
    writeFileSync(db, Buffer.alloc(8192, 0x5a));
    const before = createHash('sha256').update(readFileSync(db)).digest('hex');
    const mtime = statSync(db).mtimeMs;
    const r = await runCli(['serve', '--data', dataDir, '--ui', '127.0.0.1:0', '--portal', '127.0.0.1:0']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /spindle\.db/);
    assert.equal(createHash('sha256').update(readFileSync(db)).digest('hex'), before);
    assert.equal(statSync(db).mtimeMs, mtime);
  });

  test('unknown flags, bad HOST:PORT and unknown commands are usage errors (exit 2)', async () => {
    for (const args of [['serve', '--bogus'], ['serve', '--ui', 'nope'], ['serve', '--portal', 'x:99999'], ['frobnicate']]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, args.join(' '));
      assert.match(r.stderr, /^spindle: /);
    }
  });

  test('every command has --help', async () => {
    for (const args of [['--help'], ['serve', '--help'], ['disks', '--help'], ['help', 'serve']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /usage: spindle/);
    }
  });
});

describe('npm start where Electron cannot run', () => {
  test('says why in one line and runs the headless server, printing its URL', async () => {
    const { spawn } = await import('node:child_process');
    const { repoRoot } = await import('../support/cli');
    const child = spawn(process.execPath, [join(repoRoot, 'build/scripts/start.mjs'), '--data', join(tmp, 'start'), '--ui', '127.0.0.1:0', '--portal', '127.0.0.1:0'], {
      cwd: repoRoot,
      env: { ...process.env, DISPLAY: '', WAYLAND_DISPLAY: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ui: line within 30 s:\n${out}\n${err}`)), 30_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d;
        const m = /^ui: (http:\S+)$/m.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    try {
      assert.match(err, /running the headless server instead/);
      assert.equal((await fetch(new URL('/', url))).status, 200);
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exitOf(child), 0, 'SIGTERM is forwarded and the server exits cleanly');
    }
  });
});
