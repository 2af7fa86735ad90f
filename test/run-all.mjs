#!/usr/bin/env node
// `npm test`: every kind of test, in order — typecheck, unit, interop (real
// peers), e2e (wdio in Chromium). Runs all stages even when one fails, then
// prints one summary line and exits non-zero if anything failed.
import { spawn } from 'node:child_process';

const stages = [
  { name: 'typecheck', script: 'typecheck' },
  { name: 'unit', script: 'test:unit' },
  { name: 'interop', script: 'test:interop' },
  { name: 'e2e', script: 'test:e2e' },
];
const only = process.argv.slice(2);

function run(script) {
  return new Promise((resolve) => {
    let out = '';
    const child = spawn('npm', ['run', '-s', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    child.stderr.on('data', (d) => { out += d; process.stderr.write(d); });
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

/** Counts from node's test runner ("ℹ pass N") or mocha/wdio ("N passing"). */
function counts(out) {
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const n = (re) => [...plain.matchAll(re)].reduce((s, m) => s + Number(m[1]), 0);
  return {
    passed: n(/^[ℹ#] pass (\d+)$/gm) + n(/(\d+) passing \(/g),
    failed: n(/^[ℹ#] fail (\d+)$/gm) + n(/(\d+) failing\b/g),
  };
}

let passed = 0;
let failed = 0;
const lines = [];
for (const stage of stages) {
  if (only.length && !only.includes(stage.name)) continue;
  process.stdout.write(`\n=== ${stage.name} ===\n`);
  const { code, out } = await run(stage.script);
  const c = counts(out);
  // A stage that failed without a counted failing test (typecheck, a crash) counts as one failure.
  if (stage.name === 'typecheck') c.passed += code === 0 ? 1 : 0;
  if (code !== 0 && c.failed === 0) c.failed = 1;
  passed += c.passed;
  failed += c.failed;
  lines.push(`${stage.name.padEnd(10)} ${code === 0 ? 'ok  ' : 'FAIL'}  ${c.passed} passed, ${c.failed} failed`);
}
process.stdout.write(`\n=== summary ===\n${lines.join('\n')}\n${passed} passed, ${failed} failed\n`);
process.exit(failed > 0 ? 1 : 0);
