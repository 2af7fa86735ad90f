import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, requirePeers, startTgt, type RunningTgt } from '../support/peers';

const IQN = 'iqn.2026-11.net.spindle.test:harness';
let dir: string;
let tgt: RunningTgt;

before(async () => {
  requirePeers(['tgtd', 'tgtadm', 'iscsi-ls']);
  dir = mkdtempSync(join(tmpdir(), 'spindle-tgt-'));
  const img = join(dir, 'lun1.img');
  writeFileSync(img, '');
  truncateSync(img, 64 * 1024 * 1024);
  tgt = await startTgt({ port: await freePort(), targets: [{ iqn: IQN, luns: [{ lun: 1, backingFile: img }] }] });
});

after(async () => {
  await tgt?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('the harness starts tgtd -f on loopback with a file-backed LUN that iscsi-ls lists', () => {
  const out = execFileSync('iscsi-ls', ['-s', `iscsi://${tgt.portal}`], { encoding: 'utf8', timeout: 20_000 });
  assert.match(out, new RegExp(`Target:${IQN.replace(/\./g, '\\.')} Portal:${tgt.portal.replace(/\./g, '\\.')}`));
  assert.match(out, /Lun:1\s+Type:DIRECT_ACCESS \(Size:6[34]M\)/);
});
