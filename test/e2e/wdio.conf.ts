/// <reference types="@wdio/globals/types" />
// End-to-end: drive the web UI of a real `spindle serve` in Debian's
// Chromium (no browser downloads). The launcher starts one server with a
// fresh data dir, hands its URL (with the access token) to the workers in
// SPINDLE_E2E_URL, its data dir in SPINDLE_E2E_DATA (for the CLI, which then
// works through the running server) and its iSCSI portal (HOST:PORT) in
// SPINDLE_E2E_PORTAL, and stops it when the run ends.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const READY_TIMEOUT_MS = 60_000;

let server: ChildProcess | null = null;
let dataDir: string | null = null;

/** Newest mtime under `path` (files only). */
function newest(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = 0;
  for (const entry of readdirSync(path)) max = Math.max(max, newest(join(path, entry)));
  return max;
}

/** Build the UI when out/renderer is missing or older than its sources, so the test never checks a stale build. */
function ensureRendererBuilt(): void {
  const built = join(ROOT, 'out/renderer/index.html');
  const sources = [join(ROOT, 'src-renderer'), join(ROOT, 'src-main/service/api/schema.ts'), join(ROOT, 'src-main/disks/types.ts')];
  if (existsSync(built) && statSync(built).mtimeMs >= Math.max(...sources.filter(existsSync).map(newest))) return;
  console.log('[e2e] building the UI (electron-vite build)…');
  const r = spawnSync(join(ROOT, 'node_modules/.bin/electron-vite'), ['build'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('[e2e] `electron-vite build` failed; fix the build, then rerun `npm run test:e2e`.');
}

function stopServer(): Promise<void> {
  const child = server;
  server = null;
  if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  const pid = child.pid;
  return new Promise((resolve) => {
    const kill = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, 5000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    try {
      // Its own process group: tsx and the node it starts both get the signal.
      process.kill(-pid, 'SIGTERM');
    } catch {
      clearTimeout(kill);
      resolve();
    }
  });
}

interface Started {
  url: string;
  /** HOST:PORT of the iSCSI portal, from its `iscsi: listening on` line. */
  portal: string | null;
}

function startServer(dir: string): Promise<Started> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      join(ROOT, 'node_modules/.bin/tsx'),
      ['src-main/cli/main.ts', 'serve', '--data', dir, '--ui', '127.0.0.1:0', '--portal', '127.0.0.1:0'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, NO_COLOR: '1' } },
    );
    server = child;
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      void stopServer();
      reject(new Error(`[e2e] spindle serve printed no "ui:" line within ${READY_TIMEOUT_MS / 1000} s.\nstdout:\n${out}\nstderr:\n${err}`));
    }, READY_TIMEOUT_MS);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const m = /^ui: (\S+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        // serve prints every other line before the "ui:" one.
        const portal = /^iscsi: listening on (\S+)$/m.exec(out);
        resolve({ url: m[1]!, portal: portal ? portal[1]! : null });
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
      if (process.env.SPINDLE_E2E_VERBOSE) process.stderr.write(chunk);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`[e2e] spindle serve exited (${signal ?? code}) before it was ready.\nstdout:\n${out}\nstderr:\n${err}`));
    });
  });
}

export const config: WebdriverIO.Config = {
  runner: 'local',
  specs: ['./*.e2e.ts'],
  maxInstances: 1,
  capabilities: [
    {
      browserName: 'chrome',
      'goog:chromeOptions': {
        binary: '/usr/bin/chromium',
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--window-size=1280,800'],
      },
      'wdio:chromedriverOptions': { binary: '/usr/bin/chromedriver' },
    },
  ],
  logLevel: 'warn',
  autoXvfb: false, // headless Chromium needs no display
  bail: 0,
  waitforTimeout: 10_000,
  connectionRetryTimeout: 120_000,
  connectionRetryCount: 1,
  framework: 'mocha',
  reporters: ['spec'],
  mochaOpts: { ui: 'bdd', timeout: 60_000 },

  async onPrepare() {
    ensureRendererBuilt();
    dataDir = mkdtempSync(join(tmpdir(), 'spindle-e2e-'));
    process.on('exit', () => {
      if (server?.pid) {
        try {
          process.kill(-server.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    });
    const { url, portal } = await startServer(dataDir);
    console.log(`[e2e] spindle serve is up at ${url.replace(/token=[^&]+/, 'token=…')}, iSCSI portal ${portal ?? '(none printed)'}`);
    // Workers inherit the launcher's environment.
    process.env.SPINDLE_E2E_URL = url;
    process.env.SPINDLE_E2E_DATA = dataDir;
    if (portal) process.env.SPINDLE_E2E_PORTAL = portal;
  },

  async onComplete() {
    await stopServer();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  },
};
