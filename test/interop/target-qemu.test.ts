// qemu-img (libiscsi inside) moves a whole image through Spindle's target and
// back, with and without CRC32C header digests: real data, real peer.
import { execFile } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { exitOf, startCli } from '../support/cli';
import { freePort, requirePeers } from '../support/peers';

const IQN = 'iqn.2026-11.net.spindle.test:qemu';
const SIZE = 256 * 1024 * 1024;
let dir: string;
let image: string;
let port: number;
let target: Awaited<ReturnType<typeof startCli>>;

function qemuImg(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('qemu-img', args, { timeout: 180_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

before(async () => {
  requirePeers(['qemu-img']);
  dir = mkdtempSync(join(tmpdir(), 'spindle-qemu-'));
  image = join(dir, 'random.raw');
  const fd = openSync(image, 'w');
  const chunk = Buffer.allocUnsafe(4 * 1024 * 1024);
  for (let off = 0; off < SIZE; off += chunk.length) writeSync(fd, randomFillSync(chunk));
  closeSync(fd);
  port = await freePort();
  target = await startCli(
    ['target', 'serve', '--target', IQN, '--lun', `1=file:${join(dir, 'lun1.img')}:${SIZE}`, '--lun', '2=memory:256MiB', '--portal', `127.0.0.1:${port}`],
    /^listening on (\S+)$/m,
  );
});

after(async () => {
  if (target) {
    target.child.kill('SIGTERM');
    await exitOf(target.child);
  }
  rmSync(dir, { recursive: true, force: true });
});

// The `?header_digest=crc32c` URL form makes this qemu-img (7.2) crash against
// any target, tgt included; --image-opts passes the same libiscsi option.
const plain = (lun: number) => ['-f', 'raw', `iscsi://127.0.0.1:${port}/${IQN}/${lun}`];
const withHeaderDigest = (lun: number) => [
  '--image-opts',
  `driver=iscsi,transport=tcp,portal=127.0.0.1:${port},target=${IQN},lun=${lun},header-digest=crc32c`,
];

for (const [name, lun, dest] of [
  ['a file LUN', 1, plain],
  ['a memory LUN with HeaderDigest=CRC32C', 2, withHeaderDigest],
] as const) {
  test(`qemu-img convert writes a random 256 MiB image onto ${name} and qemu-img compare reads it back identical`, { timeout: 600_000 }, async () => {
    const info = await qemuImg(['info', ...dest(lun)]);
    assert.equal(info.code, 0, info.out);
    assert.match(info.out, /virtual size: 256 MiB/);
    const target = dest(lun);
    // convert takes the destination as a plain filename or, with --image-opts, as options.
    const conv = await qemuImg(
      target[0] === '--image-opts'
        ? ['convert', '-n', '-f', 'raw', '--target-image-opts', image, target[1]]
        : ['convert', '-n', '-f', 'raw', '-O', 'raw', image, target[2]],
    );
    assert.equal(conv.code, 0, conv.out);
    const cmp = await qemuImg(
      target[0] === '--image-opts'
        ? ['compare', '--image-opts', `driver=raw,file.driver=file,file.filename=${image}`, target[1]]
        : ['compare', '-f', 'raw', '-F', 'raw', image, target[2]],
    );
    assert.equal(cmp.code, 0, cmp.out);
    assert.match(cmp.out, /Images are identical/);
  });
}

test('qemu-img compare notices a difference (the comparison can fail)', { timeout: 300_000 }, async () => {
  const other = join(dir, 'other.raw');
  const fd = openSync(other, 'w');
  writeSync(fd, Buffer.alloc(SIZE, 0x00));
  closeSync(fd);
  const cmp = await qemuImg(['compare', '-f', 'raw', '-F', 'raw', other, `iscsi://127.0.0.1:${port}/${IQN}/1`]);
  assert.equal(cmp.code, 1, cmp.out);
  assert.match(cmp.out, /Content mismatch/);
});
