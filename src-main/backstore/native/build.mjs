#!/usr/bin/env node
// Builds the backstore addon (spindle_backstore.node) with node-gyp against
// the local Node headers, never downloading anything.
//
//   node src-main/backstore/native/build.mjs             build; exit 1 on failure
//   node src-main/backstore/native/build.mjs --optional  build; on failure warn and exit 0
//
// `npm ci` runs the --optional form (root "postinstall"): without a compiler
// Spindle still works, with UNMAP and GET LBA STATUS reported as unsupported.
// The addon is plain N-API, so the same binary loads in Node and Electron.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const optional = process.argv.includes('--optional');
const prefix = dirname(dirname(process.execPath));

function warnOrFail(message) {
  if (optional) {
    console.warn(`spindle: ${message}\nspindle: UNMAP and GET LBA STATUS stay off for file and block LUNs until \`npm run build:native\` succeeds.`);
    process.exit(0);
  }
  console.error(`spindle: ${message}`);
  process.exit(1);
}

if (process.platform !== 'linux') {
  console.log(`spindle: the backstore addon is Linux-only; skipped on ${process.platform}.`);
  process.exit(0);
}

/** node-gyp: the one npm runs scripts with, else the project's, else npm's own, else PATH. */
function findNodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, fromNpm];
  try {
    const require = createRequire(join(here, '..', '..', '..', 'package.json'));
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js')];
  } catch {
    // not installed in the project
  }
  const npmBundled = join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(npmBundled)) return [process.execPath, npmBundled];
  return ['node-gyp'];
}

const [cmd, ...pre] = findNodeGyp();
const args = [...pre, 'rebuild', '--loglevel=warn', `--directory=${here}`];
// Local headers (e.g. /usr/include/node from the distribution's nodejs package),
// so node-gyp never tries to download them.
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}

const result = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
if (result.error) warnOrFail(`cannot run node-gyp (${result.error.message}) — install a C compiler and python3 (apt install build-essential python3).`);
if (result.status !== 0) {
  warnOrFail('building the backstore addon failed (see above) — install a C compiler and python3 (apt install build-essential python3) and run `npm run build:native`.');
}
const built = join(here, 'build', 'Release', 'spindle_backstore.node');
if (!existsSync(built)) warnOrFail(`node-gyp reported success but ${built} is missing.`);
console.log(`spindle: built ${built}`);
