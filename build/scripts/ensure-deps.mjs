#!/usr/bin/env node
// Makes a checkout ready to start or test; run by `prestart` and `pretest`.
//
//   (always)  npm ci when node_modules is missing or older than package-lock.json
//             (with ELECTRON_SKIP_BINARY_DOWNLOAD=1: the tests never need it)
//   --build   electron-vite build, and the CLI bundle (build-cli.mjs), when their
//             outputs under out/ are missing or older than their sources
//   --peers   the Debian packages the interop and e2e tests use: installed with
//             apt-get when root, else a failure naming the command to run
//
// Silent when there is nothing to do; one line per action otherwise. A failed
// step prints the tail of its output and exits non-zero.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliBundle, cliIsStale, newest } from './build-cli.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const flags = new Set(process.argv.slice(2));
for (const f of flags) {
  if (f !== '--build' && f !== '--peers') {
    process.stderr.write(`ensure-deps: unknown option ${f} (use --build and/or --peers)\n`);
    process.exit(2);
  }
}

const PEER_PACKAGES = ['tgt', 'libiscsi-bin', 'qemu-utils', 'qemu-block-extra', 'libnbd-bin', 'fio', 'chromium', 'chromium-driver'];

const say = (line) => process.stdout.write(`ensure-deps: ${line}\n`);
const mtime = (p) => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
};

function fail(line, output) {
  if (output) {
    // The head usually names the problem, the tail where it stopped.
    const lines = output.trimEnd().split('\n');
    const shown = lines.length > 40 ? [...lines.slice(0, 15), `… (${lines.length - 40} lines) …`, ...lines.slice(-25)] : lines;
    process.stderr.write(`${shown.join('\n')}\n`);
  }
  process.stderr.write(`ensure-deps: ${line}\n`);
  process.exit(1);
}

/** Runs a command with captured output; on failure prints its tail and exits. */
function step(what, command, args, opts = {}) {
  const r = spawnSync(command, args, { cwd: root, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...opts });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.error) fail(`${what} failed: ${r.error.message}`, output);
  if (r.status !== 0) fail(`${what} failed (exit ${r.status ?? r.signal})`, output);
  return output;
}

// ---- node_modules ---------------------------------------------------------------

function ensureNodeModules() {
  const lock = join(root, 'package-lock.json');
  // npm writes node_modules/.package-lock.json at the end of every install.
  const installed = mtime(join(root, 'node_modules', '.package-lock.json'));
  if (installed >= 0 && installed >= mtime(lock)) return;
  say(installed < 0 ? 'installing dependencies (npm ci)…' : 'package-lock.json changed — reinstalling dependencies (npm ci)…');
  const env = { ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: '1' };
  const args = ['ci', '--no-audit', '--no-fund'];
  // Under npm, npm_execpath is npm's own CLI; otherwise rely on PATH.
  const npmCli = process.env.npm_execpath;
  if (npmCli && /npm-cli\.js$/.test(npmCli)) step('npm ci', process.execPath, [npmCli, ...args], { env });
  else step('npm ci', process.platform === 'win32' ? 'npm.cmd' : 'npm', args, { env, shell: process.platform === 'win32' });
}

// ---- the builds: electron-vite (app) and esbuild (CLI) ------------------------------

/** Missing (-1), or older than its newest source (0), or up to date (1). */
function freshness(outputs, sources) {
  const builtAt = Math.min(...outputs.map((f) => mtime(join(root, f))));
  if (builtAt < 0) return -1;
  return builtAt >= Math.max(...sources.map((f) => newest(join(root, f)))) ? 1 : 0;
}

/** Each build: how fresh its outputs are, and how to redo it. */
function builds() {
  const require = createRequire(join(root, 'package.json'));
  return [
    {
      name: 'the app (electron-vite build)',
      state: () => freshness(['out/main/index.js', 'out/preload/index.cjs', 'out/renderer/index.html'], ['src-main', 'src-renderer', 'electron.vite.config.ts']),
      command: () => [join(dirname(require.resolve('electron-vite/package.json')), 'bin', 'electron-vite.js'), 'build'],
    },
    {
      // The `spindle` command as shipped (package.json "bin"); build-cli.mjs knows its sources.
      name: 'the CLI (esbuild → out/cli/spindle.mjs)',
      state: () => (mtime(cliBundle) < 0 ? -1 : cliIsStale() ? 0 : 1),
      command: () => [join(root, 'build', 'scripts', 'build-cli.mjs'), '--quiet'],
    },
  ];
}

function ensureBuild() {
  for (const b of builds()) {
    const state = b.state();
    if (state === 1) continue;
    say(state < 0 ? `building ${b.name}…` : `sources changed — rebuilding ${b.name}…`);
    step(`building ${b.name}`, process.execPath, b.command());
  }
}

// ---- Debian peers for the tests ---------------------------------------------------

function missingPackages() {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Status}\\n', ...PEER_PACKAGES], { encoding: 'utf8' });
  if (r.error) return null; // not a Debian system
  const installed = new Set(
    r.stdout
      .split('\n')
      .filter((l) => l.endsWith(' install ok installed'))
      .map((l) => l.split(' ')[0].split(':')[0]),
  );
  return PEER_PACKAGES.filter((p) => !installed.has(p));
}

function ensurePeers() {
  const missing = missingPackages();
  if (missing === null) {
    say(`not a Debian system (no dpkg-query): the interop and e2e tests need ${PEER_PACKAGES.join(' ')} or their equivalents`);
    return;
  }
  if (missing.length === 0) return;
  const command = `apt-get install -y ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) fail(`the tests need Debian packages that are missing — run: sudo ${command}`);
  say(`installing test peers: ${missing.join(' ')} (apt-get)…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  step('apt-get update', 'apt-get', ['update', '-q'], { env });
  step(command, 'apt-get', ['install', '-y', '-q', ...missing], { env });
}

ensureNodeModules();
if (flags.has('--build')) ensureBuild();
if (flags.has('--peers')) ensurePeers();
