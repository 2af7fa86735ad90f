// libiscsi's conformance suite against Spindle's target (SPEC §6): a
// file-backed LUN, the MultipathIO suite given a second URL, the log scored
// by shared/tools/cu-score. The goal (issue 3) is 0 fail and at least 210
// pass; until it is met this test holds the line where it stands: no test
// outside KNOWN_FAILURES may fail and passes may not drop below PASS_FLOOR.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { exitOf, repoRoot, startCli } from '../support/cli';
import { freePort, requirePeers } from '../support/peers';

const IQN = 'iqn.2026-11.net.spindle.test:conformance';
// CI lays shared/ beside the checkout; CU_SCORE overrides for other layouts.
const CU_SCORE = process.env.CU_SCORE ?? join(repoRoot, '..', 'shared', 'tools', 'cu-score');
/**
 * Failing now: the test passes, then the suite's cleanup (PERSISTENT RESERVE
 * IN on both sessions) meets the BUS DEVICE RESET FUNCTION OCCURRED unit
 * attention SAM-5 requires after a LOGICAL UNIT RESET (see docs/conformance.md).
 */
const KNOWN_FAILURES = new Set(['Reserve6.LUNReset']);
/** Passes measured with this configuration (203 on 2026-11-25); a drop fails the test. */
const PASS_FLOOR = 203;
let dir: string;
let target: Awaited<ReturnType<typeof startCli>>;
let url: string;

before(async () => {
  requirePeers(['iscsi-test-cu']);
  dir = mkdtempSync(join(tmpdir(), 'spindle-cu-'));
  const port = await freePort();
  target = await startCli(
    ['target', 'serve', '--target', IQN, '--lun', `1=file:${join(dir, 'lun1.img')}:1GiB`, '--portal', `127.0.0.1:${port}`],
    /^listening on (\S+)$/m,
  );
  url = `iscsi://127.0.0.1:${port}/${IQN}/1`;
});

after(async () => {
  if (target) {
    target.child.kill('SIGTERM');
    await exitOf(target.child);
  }
  rmSync(dir, { recursive: true, force: true });
});

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      // iscsi-test-cu exits 0 in its default "ignore errors" mode; a crash or timeout is an error.
      if (err && (err as { killed?: boolean }).killed) reject(new Error(`${cmd} timed out after ${timeoutMs} ms`));
      else if (err && !stdout) reject(err);
      else resolve(stdout + stderr);
    });
  });
}

test('iscsi-test-cu -d (MultipathIO included) against a file-backed LUN fails nothing new and passes at least the recorded floor', { timeout: 20 * 60_000 }, async () => {
  assert.ok(existsSync(CU_SCORE), `cu-score not found at ${CU_SCORE} — put shared/ beside the checkout or set CU_SCORE=PATH`);
  const log = await run('iscsi-test-cu', ['-d', '-v', url, url], 15 * 60_000);
  const logFile = join(repoRoot, 'artifacts', 'iscsi-test-cu.log');
  try {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(repoRoot, 'artifacts'), { recursive: true });
    writeFileSync(logFile, log);
  } catch {
    /* the log is a convenience; the score below is the assertion */
  }
  const score = await run('python3', [CU_SCORE, logFile], 60_000);
  const failed = await run('python3', [CU_SCORE, logFile, '--list', 'fail'], 60_000);
  const m = /conformance: (\d+) pass, (\d+) skip, (\d+) fail of (\d+)/.exec(score);
  assert.ok(m, `cu-score printed no score:\n${score}`);
  const [pass, , fail] = [Number(m[1]), Number(m[2]), Number(m[3])];
  process.stdout.write(`${m[0]}\n`);
  const failing = failed.split('\n').filter((l) => l && !l.startsWith('conformance:'));
  assert.equal(failing.length, fail);
  const unexpected = failing.filter((t) => !KNOWN_FAILURES.has(t));
  assert.deepEqual(unexpected, [], `tests that newly fail:\n${unexpected.join('\n')}`);
  assert.ok(pass >= PASS_FLOOR, `only ${pass} pass (floor ${PASS_FLOOR}, goal 210)`);
});
