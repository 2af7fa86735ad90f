// Block device backstore against real loop devices (`losetup`, as root).
// Without root or losetup the tests skip, saying why.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  nativeStatus,
  openBackstore,
  openBlockBackstore,
  openFileBackstore,
  parseBackstoreSpec,
  type AllocationExtent,
  type Backstore,
} from '../../src-main/backstore/index';
import { native } from '../../src-main/backstore/native';

const MiB = 1024 * 1024;
let dir = '';
let unavailable: string | null = null;
const loops: string[] = [];
const mounts: string[] = [];

/** Attaches a new sparse backing file of `size` to a free loop device. */
function attach(name: string, size: number, extra: string[] = []): { dev: string; file: string } {
  const file = join(dir, name);
  fs.writeFileSync(file, '');
  fs.truncateSync(file, size);
  const r = spawnSync('losetup', [...extra, '--find', '--show', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`losetup ${extra.join(' ')} --find --show ${file} failed: ${r.stderr || r.error?.message}`);
  const dev = r.stdout.trim();
  loops.push(dev);
  return { dev, file };
}

let main = { dev: '', file: '' };
let readOnlyLoop = { dev: '', file: '' };
let k4 = { dev: '', file: '' };

before(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), 'spindle-backstore-block-'));
  if (process.platform !== 'linux') unavailable = 'block devices are tested on Linux only';
  else if (process.getuid?.() !== 0) unavailable = 'losetup needs root';
  else {
    try {
      main = attach('main.img', 64 * MiB);
      readOnlyLoop = attach('ro.img', 4 * MiB, ['--read-only']);
      k4 = attach('k4.img', 8 * MiB, ['--sector-size', '4096']);
    } catch (err) {
      unavailable = (err as Error).message;
    }
  }
});

after(() => {
  for (const m of mounts) spawnSync('umount', [m]);
  for (const dev of loops) spawnSync('losetup', ['--detach', dev]);
  fs.rmSync(dir, { recursive: true, force: true });
});

function needLoop(t: TestContext): boolean {
  if (unavailable === null) return true;
  t.skip(unavailable);
  return false;
}

const read = (b: Backstore, buf: Buffer, bufOffset: number, length: number, offset: number) =>
  new Promise<void>((res, rej) => b.read(buf, bufOffset, length, offset, (e) => (e ? rej(e) : res())));
const write = (b: Backstore, buf: Buffer, bufOffset: number, length: number, offset: number, fua = false) =>
  new Promise<void>((res, rej) => b.write(buf, bufOffset, length, offset, fua, (e) => (e ? rej(e) : res())));
const unmap = (b: Backstore, offset: number, length: number) =>
  new Promise<void>((res, rej) => b.unmap(offset, length, (e) => (e ? rej(e) : res())));
const flush = (b: Backstore) => new Promise<void>((res, rej) => b.flush((e) => (e ? rej(e) : res())));
const close = (b: Backstore) => new Promise<void>((res, rej) => b.close((e) => (e ? rej(e) : res())));
const allocation = (b: Backstore, offset: number, length: number) =>
  new Promise<AllocationExtent[]>((res, rej) => b.allocation(offset, length, (e, x) => (e ? rej(e) : res(x ?? []))));

function preadFresh(path: string, length: number, offset: number): Buffer {
  const fd = fs.openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    assert.equal(fs.readSync(fd, buf, 0, length, offset), length);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

const sys = (dev: string, file: string) => fs.readFileSync(`/sys/class/block/${basename(dev)}/${file}`, 'utf8').trim();

test('a loop device opens with the size, block size and capabilities the kernel reports', async (t) => {
  if (!needLoop(t)) return;
  const b = await openBlockBackstore(main.dev);
  assert.equal(b.kind, 'block');
  assert.equal(b.description, main.dev);
  assert.equal(b.sizeBytes, 64 * MiB);
  assert.equal(b.blockSize, 512);
  assert.equal(b.readOnly, false);
  assert.equal(b.capabilities.canFua, true);
  assert.equal(b.capabilities.canReportAllocation, false, 'block devices have no SEEK_HOLE');
  assert.equal(b.capabilities.rotational, sys(main.dev, 'queue/rotational') === '1');
  if (nativeStatus.available && Number(sys(main.dev, 'queue/write_zeroes_max_bytes')) > 0) {
    assert.equal(b.capabilities.canUnmap, true);
    assert.equal(b.capabilities.unmapZeroes, true);
  }
  await close(b);
});

test('round trips at odd offsets reach the backing file after flush; FUA writes without one', async (t) => {
  if (!needLoop(t)) return;
  const b = await openBlockBackstore(main.dev);
  const cases = [
    [1, 511],
    [4095, 2],
    [1234567, 70001],
    [64 * MiB - 3, 3],
  ] as const;
  for (const [offset, length] of cases) {
    const src = Buffer.concat([Buffer.alloc(5), randomBytes(length)]);
    await write(b, src, 5, length, offset);
    const back = Buffer.alloc(length + 2);
    await read(b, back, 1, length, offset);
    assert.ok(back.subarray(1, 1 + length).equals(src.subarray(5)), `at ${offset}`);
  }
  await flush(b);
  const [offset, length] = cases[2];
  const onDevice = Buffer.alloc(length);
  await read(b, onDevice, 0, length, offset);
  assert.ok(preadFresh(main.file, length, offset).equals(onDevice), 'the backing file has the data after flush');

  const fuaData = randomBytes(8192);
  await write(b, fuaData, 0, fuaData.length, 8 * MiB + 512, true);
  assert.ok(preadFresh(main.dev, 8192, 8 * MiB + 512).equals(fuaData), 'a fresh descriptor on the device reads the FUA write');
  assert.ok(preadFresh(main.file, 8192, 8 * MiB + 512).equals(fuaData), 'and so does the backing file');

  await assert.rejects(read(b, Buffer.alloc(1024), 0, 1024, 64 * MiB - 512), { code: 'BACKSTORE_OUT_OF_RANGE' });
  await assert.rejects(write(b, Buffer.alloc(512), 0, 512, 64 * MiB), { code: 'BACKSTORE_OUT_OF_RANGE' });
  await close(b);
});

test('a read-write open holds the device exclusively: a second one is refused, a read-only one is not', async (t) => {
  if (!needLoop(t)) return;
  const b = await openBlockBackstore(main.dev);
  await assert.rejects(openBlockBackstore(main.dev), (e: NodeJS.ErrnoException) => {
    assert.equal(e.code, 'BACKSTORE_IN_USE');
    assert.match(e.message, new RegExp(`${main.dev} is in use: .*mounted.* — unmount it first \\(see \`lsblk ${main.dev}\`\\), or export it read-only`));
    return true;
  });
  const ro = await openBlockBackstore(main.dev, { readOnly: true });
  assert.equal(ro.readOnly, true);
  assert.equal(ro.capabilities.canUnmap, false);
  await assert.rejects(write(ro, Buffer.alloc(512), 0, 512, 0), { code: 'BACKSTORE_READ_ONLY' });
  await close(ro);
  await close(b);
  const again = await openBlockBackstore(main.dev);
  await close(again);
});

test('a mounted device is refused read-write', async (t) => {
  if (!needLoop(t)) return;
  const fsLoop = attach('fs.img', 32 * MiB);
  const mkfs = spawnSync('mkfs.ext4', ['-q', '-F', fsLoop.dev], { encoding: 'utf8' });
  if (mkfs.status !== 0) return t.skip(`mkfs.ext4 failed: ${mkfs.stderr || mkfs.error?.message}`);
  const mnt = fs.mkdtempSync(join(dir, 'mnt-'));
  const m = spawnSync('mount', [fsLoop.dev, mnt], { encoding: 'utf8' });
  if (m.status !== 0) return t.skip(`mount failed: ${m.stderr || m.error?.message}`);
  mounts.push(mnt);
  try {
    await assert.rejects(openBlockBackstore(fsLoop.dev), { code: 'BACKSTORE_IN_USE', message: /unmount it first/ });
  } finally {
    spawnSync('umount', [mnt]);
    mounts.splice(mounts.indexOf(mnt), 1);
  }
  const b = await openBlockBackstore(fsLoop.dev);
  await close(b);
});

test('unmap deallocates on the device: the loop punches its backing file and the range reads as zeros', async (t) => {
  if (!needLoop(t)) return;
  assert.ok(nativeStatus.available, nativeStatus.reason);
  const b = await openBlockBackstore(main.dev);
  if (!b.capabilities.canUnmap) {
    await close(b);
    return t.skip(`${main.dev} has no write-zeroes or discard support`);
  }
  const data = randomBytes(8 * MiB);
  await write(b, data, 0, data.length, 16 * MiB);
  await flush(b);
  const before = fs.statSync(main.file).blocks;
  assert.ok(before * 512 >= 8 * MiB);

  await unmap(b, 18 * MiB, 4 * MiB);
  await flush(b);
  const afterUnmap = fs.statSync(main.file).blocks;
  assert.ok(before - afterUnmap >= (4 * MiB) / 512, `backing file went from ${before} to ${afterUnmap} blocks`);

  const back = Buffer.alloc(8 * MiB);
  await read(b, back, 0, back.length, 16 * MiB);
  assert.ok(back.subarray(0, 2 * MiB).equals(data.subarray(0, 2 * MiB)));
  assert.ok(back.subarray(2 * MiB, 6 * MiB).every((x) => x === 0), 'unmapped range reads as zeros');
  assert.ok(back.subarray(6 * MiB).equals(data.subarray(6 * MiB)));
  assert.ok(preadFresh(main.dev, 4 * MiB, 18 * MiB).every((x) => x === 0), 'a fresh descriptor sees the zeros too');

  await assert.rejects(unmap(b, 100, 512), { code: 'BACKSTORE_UNALIGNED' });
  await assert.rejects(allocation(b, 0, MiB), { code: 'BACKSTORE_UNSUPPORTED' });
  await close(b);
});

test('BLKDISCARD (used for devices that discard but cannot zero) deallocates through the addon', async (t) => {
  if (!needLoop(t)) return;
  assert.ok(native, nativeStatus.reason);
  const ops = native;
  const fd = fs.openSync(main.dev, 'r+');
  try {
    fs.writeSync(fd, randomBytes(4 * MiB), 0, 4 * MiB, 40 * MiB);
    fs.fdatasyncSync(fd);
    const before = fs.statSync(main.file).blocks;
    await new Promise<void>((res, rej) => ops.discard(fd, 40 * MiB, 4 * MiB, (e) => (e ? rej(e) : res())));
    fs.fdatasyncSync(fd);
    assert.ok(before - fs.statSync(main.file).blocks >= (4 * MiB) / 512, 'the loop punched its backing file');
    // Errors come back as ErrnoExceptions: BLKDISCARD on a regular file is ENOTTY.
    const plain = fs.openSync(main.file, 'r+');
    try {
      const err = await new Promise<NodeJS.ErrnoException | null>((res) => ops.discard(plain, 0, 512, res));
      assert.equal(err?.code, 'ENOTTY');
      assert.equal(err?.syscall, 'ioctl(BLKDISCARD)');
    } finally {
      fs.closeSync(plain);
    }
  } finally {
    fs.closeSync(fd);
  }
});

test('a read-only device must be exported read-only', async (t) => {
  if (!needLoop(t)) return;
  await assert.rejects(openBlockBackstore(readOnlyLoop.dev), {
    code: 'BACKSTORE_READ_ONLY',
    message: new RegExp(`${readOnlyLoop.dev} is read-only .* — export it read-only`),
  });
  const b = await openBlockBackstore(readOnlyLoop.dev, { readOnly: true });
  assert.equal(b.sizeBytes, 4 * MiB);
  const buf = Buffer.alloc(4096, 1);
  await read(b, buf, 0, 4096, 0);
  assert.ok(buf.every((x) => x === 0));
  await close(b);
});

test('a 4096-byte-sector device exports 4 KiB blocks and cannot be shrunk to 512', async (t) => {
  if (!needLoop(t)) return;
  const b = await openBlockBackstore(k4.dev);
  assert.equal(b.blockSize, 4096);
  assert.equal(b.sizeBytes, 8 * MiB);
  const data = randomBytes(4096);
  await write(b, data, 0, 4096, 4096);
  const back = Buffer.alloc(4096);
  await read(b, back, 0, 4096, 4096);
  assert.ok(back.equals(data));
  if (b.capabilities.canUnmap) await assert.rejects(unmap(b, 512, 4096), { code: 'BACKSTORE_UNALIGNED' });
  await close(b);
  await assert.rejects(openBlockBackstore(k4.dev, { blockSize: 512 }), {
    code: 'BACKSTORE_BAD_SIZE',
    message: /has 4096-byte logical blocks; it cannot be exported with 512-byte blocks — use 4096/,
  });
});

test('block:DEV through the spec parser and openBackstore', async (t) => {
  if (!needLoop(t)) return;
  const b = await openBackstore(parseBackstoreSpec(`block:${main.dev}`));
  assert.equal(b.kind, 'block');
  assert.equal(b.sizeBytes, 64 * MiB);
  await close(b);
});

test('the wrong kind of path gets a message naming the right spec', async (t) => {
  const file = join(dir, 'plain.img');
  fs.writeFileSync(file, Buffer.alloc(MiB));
  await assert.rejects(openBlockBackstore(file), { code: 'BACKSTORE_WRONG_KIND', message: new RegExp(`is an image file, not a block device — export it as file:${file}`) });
  await assert.rejects(openBlockBackstore('/dev/null'), { code: 'BACKSTORE_WRONG_KIND', message: /is not a block device — give a disk such as \/dev\/sdb/ });
  await assert.rejects(openBlockBackstore('/dev/spindle-no-such-disk'), {
    code: 'BACKSTORE_NOT_FOUND',
    message: /Block device \/dev\/spindle-no-such-disk does not exist — check its name with `lsblk`/,
  });
  if (!needLoop(t)) return;
  await assert.rejects(openFileBackstore(main.dev), { code: 'BACKSTORE_WRONG_KIND', message: new RegExp(`is a block device, not an image file — export it as block:${main.dev}`) });
});

test('a loop device with nothing attached has size 0 and is refused before it is opened', async (t) => {
  if (!needLoop(t)) return;
  const r = spawnSync('losetup', ['--find'], { encoding: 'utf8' });
  const free = r.stdout.trim();
  if (r.status !== 0 || !free) return t.skip('no free loop device');
  await assert.rejects(openBlockBackstore(free, { readOnly: true }), { code: 'BACKSTORE_BAD_SIZE', message: /has size 0 — .*attach a file to the loop device/ });
});
