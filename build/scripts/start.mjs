#!/usr/bin/env node
// `npm start`: the Electron app where it can run, else the headless server.
//
// Electron needs its binary (skipped on machines installed with
// ELECTRON_SKIP_BINARY_DOWNLOAD=1) and a display. When both are there, this
// makes sure an Electron-ABI build of better-sqlite3 exists under
// out/native/electron-<version>/ (node_modules keeps the Node build the tests
// use) and starts Electron on the built app with SPINDLE_SQLITE_BINDING set.
// Otherwise it says why in one line and runs `spindle serve` with the same
// arguments — out/cli/spindle.mjs on plain node, as shipped (from source
// through tsx when the bundle is missing). The exit code is the child's.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCli, cliBundle, cliIsStale } from './build-cli.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(join(root, 'package.json'));
const args = process.argv.slice(2);
const say = (line) => process.stderr.write(`${line}\n`);

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));

/** The Electron executable and version, or why there is none. Never downloads. */
function findElectron() {
  let pkgDir;
  try {
    pkgDir = dirname(require.resolve('electron/package.json'));
  } catch {
    return { reason: "Electron isn't installed here (no electron package)" };
  }
  const version = readJson(join(pkgDir, 'package.json')).version;
  // require('electron') tries to download a missing binary; only ask it once the
  // binary is known to be there (path.txt is written by its install step).
  if (!process.env.ELECTRON_OVERRIDE_DIST_PATH) {
    const pathFile = join(pkgDir, 'path.txt');
    if (!existsSync(pathFile)) return { reason: "Electron isn't installed here (its binary was skipped)" };
    if (!existsSync(join(pkgDir, 'dist', readFileSync(pathFile, 'utf8').trim()))) {
      return { reason: "Electron's binary is missing from node_modules/electron/dist" };
    }
  }
  try {
    const executable = require('electron');
    if (typeof executable === 'string' && existsSync(executable)) return { executable, version };
  } catch {
    // fall through
  }
  return { reason: "Electron isn't installed here (its binary was skipped)" };
}

function displayProblem() {
  if (process.platform === 'win32' || process.platform === 'darwin') return null;
  if (process.env.DISPLAY || process.env.WAYLAND_DISPLAY) return null;
  return 'There is no display here (DISPLAY and WAYLAND_DISPLAY are unset)';
}

/**
 * better-sqlite3 compiled for Electron's ABI, at out/native/electron-<v>/.
 * Built by node-gyp from a copy of node_modules/better-sqlite3's sources, so
 * the Node build in node_modules (used by the tests) is never touched.
 * Returns the .node path, or throws with a one-line reason.
 */
function ensureElectronSqlite(electronVersion) {
  const pkgDir = dirname(require.resolve('better-sqlite3/package.json'));
  const sqliteVersion = readJson(join(pkgDir, 'package.json')).version;
  const outDir = join(root, 'out', 'native', `electron-${electronVersion}`);
  const binary = join(outDir, 'better_sqlite3.node');
  const stamp = join(outDir, 'better-sqlite3.version');
  if (existsSync(binary) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === sqliteVersion) return binary;

  say(`Building better-sqlite3 ${sqliteVersion} for Electron ${electronVersion} (once; this takes a few minutes)…`);
  const work = join(root, 'out', 'native', `.build-electron-${electronVersion}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    for (const entry of ['package.json', 'binding.gyp', 'src', 'deps']) cpSync(join(pkgDir, entry), join(work, entry), { recursive: true });

    let nodeGyp;
    try {
      nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
    } catch {
      nodeGyp = process.env.npm_config_node_gyp;
    }
    if (!nodeGyp || !existsSync(nodeGyp)) throw new Error('node-gyp is not installed');

    // npm passes its config as npm_config_*; a nodedir (e.g. /usr from npmrc)
    // or target there would build against Node's headers instead of Electron's.
    const env = { ...process.env };
    for (const key of Object.keys(env)) {
      if (/^npm_(package_)?config_(node_gyp_)?(nodedir|target|runtime|dist_url|disturl|arch|target_arch|build_from_source)$/i.test(key)) delete env[key];
    }
    const log = join(work, 'build.log');
    const r = spawnSync(
      process.execPath,
      [nodeGyp, 'rebuild', '--release', `--target=${electronVersion}`, '--runtime=electron', '--dist-url=https://electronjs.org/headers'],
      { cwd: work, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    writeFileSync(log, `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `\n${r.error.stack}` : ''}`);
    const built = join(work, 'build', 'Release', 'better_sqlite3.node');
    if (r.status !== 0 || !existsSync(built)) {
      const keep = join(root, 'out', 'native', `build-electron-${electronVersion}.log`);
      copyFileSync(log, keep);
      const why = failureReason(`${r.stdout ?? ''}\n${r.stderr ?? ''}`) ?? r.error?.message;
      throw new Error(`node-gyp failed${why ? `: ${why}` : ''}; see ${relative(process.cwd(), keep)}`);
    }
    mkdirSync(outDir, { recursive: true });
    copyFileSync(built, `${binary}.tmp`);
    renameSync(`${binary}.tmp`, binary);
    writeFileSync(stamp, `${sqliteVersion}\n`);
    return binary;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The gist of a failed node-gyp run: its error message, else the first compiler error. */
function failureReason(output) {
  const lines = output.split('\n');
  const start = lines.findIndex((l) => /^gyp ERR! stack \w*Error\b/.test(l));
  let why = '';
  if (start >= 0) {
    const msg = [];
    for (let i = start; i < lines.length && /^gyp ERR! stack /.test(lines[i]) && !/^gyp ERR! stack\s+at /.test(lines[i]); i++) {
      msg.push(lines[i].replace(/^gyp ERR! stack /, '').trim());
    }
    why = msg.join(' ').replace(/^\w*Error: /, '');
  } else {
    why = lines.find((l) => /\berror:/.test(l))?.trim() ?? '';
  }
  return why ? (why.length > 200 ? `${why.slice(0, 197)}...` : why) : undefined;
}

/** Runs a child with inherited stdio, forwarding SIGINT/SIGTERM; exits with its code. */
function run(command, argv, env = process.env) {
  const child = spawn(command, argv, { cwd: root, stdio: 'inherit', env });
  const forward = (signal) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, forward);
  child.on('error', (err) => {
    process.stderr.write(`start: could not run ${command}: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    process.exit(code ?? 128 + (constants.signals[signal] ?? 0));
  });
}

/** out/cli/spindle.mjs, rebuilt first when src-main is newer (`prestart` normally did that); false if it can't be. */
async function freshCliBundle() {
  if (!cliIsStale()) return true;
  try {
    await buildCli();
    return true;
  } catch (err) {
    say(`Couldn't build out/cli/spindle.mjs (${String(err?.message ?? err).split('\n')[0]}) — running the CLI from source.`);
    return false;
  }
}

async function runHeadless(reason) {
  say(`${reason} — running the headless server instead.`);
  // The CLI as shipped: bundled JS on plain node. From source through tsx only when it can't be built.
  if (await freshCliBundle()) return run(process.execPath, [cliBundle, 'serve', ...args]);
  const cli = join(root, 'src-main', 'cli', 'main.ts');
  if (!existsSync(cli)) {
    process.stderr.write('start: src-main/cli/main.ts is missing, so there is no headless server to run\n');
    process.exit(1);
  }
  const tsxDir = dirname(require.resolve('tsx/package.json'));
  const tsxBin = readJson(join(tsxDir, 'package.json')).bin;
  const tsx = join(tsxDir, typeof tsxBin === 'string' ? tsxBin : tsxBin.tsx);
  run(process.execPath, [tsx, cli, 'serve', ...args]);
}

function main() {
  const electron = findElectron();
  if (!electron.executable) return runHeadless(electron.reason);
  const noDisplay = displayProblem();
  if (noDisplay) return runHeadless(noDisplay);

  if (!existsSync(join(root, 'out', 'main', 'index.js'))) {
    process.stderr.write("start: the app isn't built (out/main/index.js is missing) — run `npm run build` first\n");
    process.exit(1);
  }
  let binding;
  try {
    binding = ensureElectronSqlite(electron.version);
  } catch (err) {
    return runHeadless(`Couldn't build better-sqlite3 for Electron ${electron.version} (${err.message})`);
  }
  const env = { ...process.env, SPINDLE_SQLITE_BINDING: binding };
  delete env.ELECTRON_RUN_AS_NODE;
  // The app root: Electron reads package.json (name, productName, main → out/main/index.js).
  run(electron.executable, [root, ...args], env);
}

main();
