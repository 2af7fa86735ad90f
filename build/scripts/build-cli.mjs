#!/usr/bin/env node
// Builds the `spindle` command as shipped: src-main/cli/main.ts bundled by
// esbuild into one ES module, out/cli/spindle.mjs (+ .map), run by plain node
// (package.json "bin"). No TypeScript loader at run time: an idle
// `target serve` engine is ≈ 70 MB RSS this way against ≈ 105–110 MB under tsx.
//
//   node build/scripts/build-cli.mjs              build
//   node build/scripts/build-cli.mjs --if-stale   build only when a source is newer than the bundle
//
// npm packages stay external (imported from node_modules at run time), so
// native ones (better-sqlite3, @node-rs/crc32) load as usual. The bundle must
// sit two directories below the package root, like src-main/cli/main.ts does:
// the CLI finds package.json, out/renderer/ and the backstore addon
// (src-main/backstore/native/build/Release) relative to import.meta.url.
//
// Also a module: `cliBundle`, `cliIsStale()` and `buildCli()` (ensure-deps.mjs
// imports the first two; esbuild itself is only loaded by buildCli()).
import { chmodSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The built CLI (package.json "bin"). */
export const cliBundle = join(root, 'out', 'cli', 'spindle.mjs');

/** What the bundle is made from: a change to any of these makes it stale. */
const SOURCES = ['src-main', 'tsconfig.json', fileURLToPath(import.meta.url)];

/** Newest mtime of any file under `p` (or of `p` itself); -1 when it does not exist. */
export function newest(p) {
  let st;
  try {
    st = statSync(p);
  } catch {
    return -1;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs; // a deleted file changes its folder's mtime
  for (const entry of readdirSync(p)) {
    if (entry === 'node_modules' || entry === 'build') continue; // build: the addon's node-gyp output
    max = Math.max(max, newest(join(p, entry)));
  }
  return max;
}

/** True when out/cli/spindle.mjs is missing or older than a source. */
export function cliIsStale() {
  let builtAt;
  try {
    builtAt = statSync(cliBundle).mtimeMs;
  } catch {
    return true;
  }
  return SOURCES.some((s) => newest(resolve(root, s)) > builtAt);
}

/** Bundles the CLI; throws with esbuild's messages on failure. */
export async function buildCli() {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: ['src-main/cli/main.ts'],
    outfile: cliBundle,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20.19',
    packages: 'external',
    // out/cli/spindle.mjs.map: for `node --enable-source-maps`, debuggers and the
    // benchmark's profile summary (which maps positions back to src-main/).
    sourcemap: true,
    minify: false,
    legalComments: 'none',
    banner: { js: '#!/usr/bin/env node' },
    logLevel: 'silent',
    metafile: true,
  });
  chmodSync(cliBundle, 0o755); // runnable as ./out/cli/spindle.mjs, as an npm bin is
  for (const w of result.warnings) process.stderr.write(`build-cli: warning: ${w.text}${w.location ? ` (${w.location.file}:${w.location.line})` : ''}\n`);
  return { inputs: Object.keys(result.metafile.inputs).length, bytes: statSync(cliBundle).size };
}

const isMain = process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url;
if (isMain) {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--if-stale' && a !== '--quiet');
  if (unknown.length > 0) {
    process.stderr.write(`build-cli: unknown option ${unknown[0]} (use --if-stale, --quiet)\n`);
    process.exit(2);
  }
  if (args.includes('--if-stale') && !cliIsStale()) process.exit(0);
  const started = performance.now();
  try {
    const { inputs, bytes } = await buildCli();
    if (!args.includes('--quiet')) {
      process.stdout.write(
        `build-cli: ${relative(process.cwd(), cliBundle) || cliBundle} (${(bytes / 1024).toFixed(0)} KiB from ${inputs} files) in ${Math.round(performance.now() - started)} ms\n`,
      );
    }
  } catch (err) {
    const errors = err?.errors ?? [];
    for (const e of errors) process.stderr.write(`${e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ` : ''}error: ${e.text}\n`);
    if (errors.length === 0) process.stderr.write(`${err?.stack ?? err}\n`);
    process.stderr.write('build-cli: the CLI bundle was not built\n');
    process.exit(1);
  }
}
