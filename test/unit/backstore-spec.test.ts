import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackstoreError, formatBytes, openBackstore, parseBackstoreSpec, parseSize } from '../../src-main/backstore/index';
import { devMajorMinor } from '../../src-main/backstore/sysfs';

const GiB = 1024 ** 3;

function refused(spec: string, code: string, message: RegExp | string): void {
  assert.throws(
    () => parseBackstoreSpec(spec),
    (e: unknown) => {
      assert.ok(e instanceof BackstoreError, `${spec}: not a BackstoreError`);
      assert.equal(e.code, code, `${spec}: ${e.message}`);
      if (typeof message === 'string') assert.equal(e.message, message);
      else assert.match(e.message, message);
      return true;
    },
    spec,
  );
}

test('sizes: bytes, KiB/MiB/GiB/TiB and K/M/G/T in any case, with or without a space', () => {
  assert.equal(parseSize('1048576'), 1048576);
  assert.equal(parseSize('512B'), 512);
  assert.equal(parseSize('1KiB'), 1024);
  assert.equal(parseSize('64k'), 64 * 1024);
  assert.equal(parseSize('512MiB'), 512 * 1024 ** 2);
  assert.equal(parseSize('512mib'), 512 * 1024 ** 2);
  assert.equal(parseSize('1GiB'), GiB);
  assert.equal(parseSize('1 GiB'), GiB);
  assert.equal(parseSize('1g'), GiB);
  assert.equal(parseSize('1G'), GiB);
  assert.equal(parseSize('1.5GiB'), 1.5 * GiB);
  assert.equal(parseSize('2T'), 2 * 1024 ** 4);
  assert.equal(parseSize('2tib'), 2 * 1024 ** 4);
});

test('memory:SIZE, file:PATH, file:PATH:SIZE and block:DEV parse to typed specs', () => {
  assert.deepEqual(parseBackstoreSpec('memory:1GiB'), { kind: 'memory', sizeBytes: GiB });
  assert.deepEqual(parseBackstoreSpec('MEMORY:64m'), { kind: 'memory', sizeBytes: 64 * 1024 ** 2 });
  assert.deepEqual(parseBackstoreSpec('file:/srv/spindle/a.img'), { kind: 'file', path: '/srv/spindle/a.img' });
  assert.deepEqual(parseBackstoreSpec('file:/srv/spindle/a.img:20GiB'), {
    kind: 'file',
    path: '/srv/spindle/a.img',
    sizeBytes: 20 * GiB,
    create: true,
  });
  // A colon inside the path is part of the path unless a size follows the last one.
  assert.deepEqual(parseBackstoreSpec('file:/srv/vm:alpha.img'), { kind: 'file', path: '/srv/vm:alpha.img' });
  assert.deepEqual(parseBackstoreSpec('file:/srv/vm:alpha.img:1G'), { kind: 'file', path: '/srv/vm:alpha.img', sizeBytes: GiB, create: true });
  assert.deepEqual(parseBackstoreSpec('file:disk.img'), { kind: 'file', path: 'disk.img' });
  assert.deepEqual(parseBackstoreSpec('block:/dev/sdb'), { kind: 'block', path: '/dev/sdb' });
  assert.deepEqual(parseBackstoreSpec('block:/dev/disk/by-id/ata-WDC_WD40-part1'), { kind: 'block', path: '/dev/disk/by-id/ata-WDC_WD40-part1' });
});

test('a bad unit is refused with the units and an example', () => {
  refused('memory:12XB', 'BACKSTORE_BAD_SPEC', '"memory:12XB" — size must be a number with KiB, MiB, GiB or TiB, e.g. memory:1GiB');
  refused('memory:lots', 'BACKSTORE_BAD_SPEC', /size must be a number with KiB, MiB, GiB or TiB, e.g. memory:1GiB/);
  refused('memory:-1G', 'BACKSTORE_BAD_SPEC', /size must be a number/);
  refused('file:/srv/a.img:12XB', 'BACKSTORE_BAD_SPEC', /size must be a number with KiB, MiB, GiB or TiB, e.g. file:\/srv\/a.img:20GiB/);
});

test('decimal units (GB) are refused as ambiguous, naming the binary spelling', () => {
  refused('memory:10GB', 'BACKSTORE_BAD_SPEC', /"GB" is ambiguous; sizes are binary, write 10GiB \(or 10G\)/);
  refused('memory:5mb', 'BACKSTORE_BAD_SPEC', /write 5MiB \(or 5M\)/);
});

test('sizes must be whole blocks and greater than zero', () => {
  refused('memory:1000', 'BACKSTORE_BAD_SIZE', '"memory:1000" — 1000 bytes is not a whole number of 512-byte blocks');
  refused('memory:0', 'BACKSTORE_BAD_SIZE', /greater than zero/);
  refused('memory:0.5', 'BACKSTORE_BAD_SIZE', /not a whole number of bytes/);
  refused('file:/srv/a.img:1.25K', 'BACKSTORE_BAD_SIZE', /1280 bytes is not a whole number of 512-byte blocks/);
  refused('file:/srv/a.img:1.1K', 'BACKSTORE_BAD_SIZE', /1.1K is not a whole number of bytes/);
  assert.throws(() => parseBackstoreSpec('memory:1KiB', 4096), /1024 bytes is not a whole number of 4096-byte blocks/);
  assert.equal(parseBackstoreSpec('memory:4KiB', 4096).sizeBytes, 4096);
});

test('missing parts and unknown kinds say what a LUN spec looks like', () => {
  refused('memory:', 'BACKSTORE_BAD_SPEC', /give the size of the memory LUN, e.g. memory:1GiB/);
  refused('file:', 'BACKSTORE_BAD_SPEC', /give the image path, e.g. file:\/srv\/spindle\/disk1.img:20GiB/);
  refused('file::20GiB', 'BACKSTORE_BAD_SPEC', /give the image path/);
  refused('file:/srv/a.img:', 'BACKSTORE_BAD_SPEC', /give the size after the last colon, e.g. file:\/srv\/a.img:20GiB/);
  refused('block:', 'BACKSTORE_BAD_SPEC', /give the device, e.g. block:\/dev\/sdb/);
  refused('block:sdb', 'BACKSTORE_BAD_SPEC', /give the device's full path, e.g. block:\/dev\/sdb/);
  refused('block:/dev/sdb:10G', 'BACKSTORE_BAD_SPEC', /a block device has its own size; write block:\/dev\/sdb/);
  refused('disk:/dev/sdb', 'BACKSTORE_BAD_SPEC', /unknown kind "disk"; a LUN is file:PATH\[:SIZE\], memory:SIZE or block:DEV/);
  refused('/srv/a.img', 'BACKSTORE_BAD_SPEC', /a LUN is file:PATH\[:SIZE\], memory:SIZE or block:DEV/);
  refused('', 'BACKSTORE_BAD_SPEC', /a LUN is file:PATH/);
});

test('openBackstore opens a parsed memory spec, and refuses specs missing what they need', async () => {
  const b = await openBackstore(parseBackstoreSpec('memory:8MiB'));
  assert.equal(b.kind, 'memory');
  assert.equal(b.sizeBytes, 8 * 1024 ** 2);
  assert.equal(b.blockSize, 512);
  assert.equal(b.description, 'memory (8 MiB)');
  await new Promise<void>((res) => b.close(() => res()));
  await assert.rejects(openBackstore({ kind: 'memory' }), { code: 'BACKSTORE_BAD_SIZE' });
  await assert.rejects(openBackstore({ kind: 'file' }), { code: 'BACKSTORE_BAD_SPEC' });
  await assert.rejects(openBackstore({ kind: 'block' }), { code: 'BACKSTORE_BAD_SPEC' });
  await assert.rejects(openBackstore({ kind: 'file', path: '/nonexistent-spindle/x.img', create: true }), {
    code: 'BACKSTORE_BAD_SIZE',
    message: /give its size, e.g. file:\/nonexistent-spindle\/x.img:20GiB/,
  });
});

test('sizes in messages read like a person wrote them', () => {
  assert.equal(formatBytes(3.1 * GiB), '3.1 GiB');
  assert.equal(formatBytes(100 * GiB), '100 GiB');
  assert.equal(formatBytes(1536 * 1024), '1.5 MiB');
  assert.equal(formatBytes(16 * 1024 ** 4), '16 TiB');
  assert.equal(formatBytes(512), '512 bytes');
});

test('device numbers decode like glibc major()/minor()', () => {
  assert.deepEqual(devMajorMinor(1792), [7, 0]); // loop0
  assert.deepEqual(devMajorMinor(65024), [254, 0]);
  assert.deepEqual(devMajorMinor(2049), [8, 1]); // sda1
  // major 259, minor 300: minor's high bits live above bit 20.
  assert.deepEqual(devMajorMinor((259 << 8) | (300 & 0xff) | ((300 & ~0xff) << 12)), [259, 300]);
  // A major above 4095 uses the high 32 bits.
  assert.deepEqual(devMajorMinor(4096 * 2 ** 32), [4096, 0]);
});
