import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  classify,
  constraintsOf,
  isEmpty,
  isInUseBySpindle,
  isSystemDisk,
  mountedPartitions,
  sortDisks,
  worstVerdict,
  type ClassifyContext,
} from '../../src-main/disks/constraints';
import { parseLsblk } from '../../src-main/disks/lsblk';
import type { Disk, Partition, RawDisk } from '../../src-main/disks/types';

const linux: ClassifyContext = { platform: 'linux' };

function disk(over: Partial<RawDisk> = {}): RawDisk {
  return {
    name: 'sdx',
    path: '/dev/sdx',
    sizeBytes: 1_000_000_000,
    model: 'Test Disk',
    serial: null,
    rotational: false,
    removable: false,
    readOnly: false,
    kind: 'disk',
    fstype: null,
    mountpoints: [],
    partitions: [],
    ...over,
  };
}

function part(name: string, over: Partial<Partition> = {}): Partition {
  return { name, path: `/dev/${name}`, sizeBytes: 1000, fstype: 'ext4', label: null, mountpoints: [], ...over };
}

const homelab = () =>
  parseLsblk(readFileSync(new URL('./fixtures/disks/lsblk-homelab.json', import.meta.url), 'utf8')).map((d) => classify(d, linux));
const find = (disks: Disk[], name: string) => disks.find((d) => d.name === name) as Disk;
const messages = (d: Disk) => d.constraints.map((c) => c.message);

test('a disk holding / is never shareable and says why', () => {
  const nvme = find(homelab(), 'nvme0n1');
  assert.equal(nvme.share, 'no');
  assert.deepEqual(nvme.constraints[0], { code: 'system', allows: 'no', message: 'holds / — your system disk' });
});

test('a system disk also lists each mounted partition, after the system reason', () => {
  const nvme = find(homelab(), 'nvme0n1');
  assert.deepEqual(messages(nvme).slice(1), [
    'nvme0n1p1 is mounted at /boot/efi on this computer — unmount it to share read-write',
    'nvme0n1p2 is mounted at /var/lib/docker/btrfs, /home, / on this computer — unmount it to share read-write',
    'nvme0n1p3 is mounted at [SWAP] on this computer — unmount it to share read-write',
  ]);
});

test('/boot, /boot/efi, /usr, /var and active swap each make a disk the system disk', () => {
  for (const mp of ['/boot', '/boot/efi', '/usr', '/var', '[SWAP]']) {
    const d = disk({ partitions: [part('sdx1', { mountpoints: [mp] })] });
    assert.equal(isSystemDisk(d, 'linux'), true, mp);
    assert.equal(classify(d, linux).share, 'no', mp);
  }
  const swap = classify(disk({ partitions: [part('sdx2', { mountpoints: ['[SWAP]'] })] }), linux);
  assert.equal(swap.constraints[0].message, 'holds swap space this computer is using — your system disk');
});

test('/home or /srv alone is mounted, not system', () => {
  const d = disk({ partitions: [part('sdx1', { mountpoints: ['/home'] })] });
  assert.equal(isSystemDisk(d, 'linux'), false);
  assert.equal(classify(d, linux).share, 'read-only');
});

test('a disk whose LVM-on-LUKS volume is mounted is read-only, naming the partition and the mount', () => {
  const sda = find(homelab(), 'sda');
  assert.equal(sda.share, 'read-only');
  assert.deepEqual(messages(sda), ['sda1 is mounted at /srv/media on this computer — unmount it to share read-write']);
});

test('an open LUKS or active LVM with nothing mounted still blocks read-write', () => {
  const d = classify(disk({ partitions: [part('sdx1', { fstype: 'crypto_LUKS', holders: ['luks-1234'] })] }), linux);
  assert.equal(d.share, 'read-only');
  assert.equal(d.constraints[0].code, 'mounted');
  assert.match(d.constraints[0].message, /^sdx1 is in use by luks-1234 .* close or deactivate it to share read-write$/);
});

test('a mounted USB stick is read-only while mounted, and removable is listed but not a restriction', () => {
  const sdb = find(homelab(), 'sdb');
  assert.equal(sdb.share, 'read-only');
  assert.deepEqual(sdb.constraints, [
    { code: 'mounted', allows: 'read-only', message: 'sdb1 is mounted at /media/alice/CRUZER on this computer — unmount it to share read-write' },
    { code: 'removable', allows: 'read-write', message: 'removable — clients lose it if it is unplugged' },
  ]);
  const unmounted = classify(disk({ removable: true }), linux);
  assert.equal(unmounted.share, 'read-write');
  assert.deepEqual(unmounted.constraints.map((c) => c.code), ['removable']);
});

test('a write-protected SD card can only be shared read-only', () => {
  const sd = find(homelab(), 'mmcblk0');
  assert.equal(sd.share, 'read-only');
  assert.deepEqual(messages(sd), ['the device is write-protected — it can only be shared read-only']);
});

test('an unmounted spare disk is shareable read-write with no constraints', () => {
  const sdd = find(homelab(), 'sdd');
  assert.equal(sdd.share, 'read-write');
  assert.deepEqual(sdd.constraints, []);
});

test('an empty card reader is listed but not shareable', () => {
  const sdc = find(homelab(), 'sdc');
  assert.equal(isEmpty(sdc), true);
  assert.equal(sdc.share, 'no');
  assert.deepEqual(sdc.constraints.map((c) => c.code), ['empty', 'removable']);
  assert.equal(sdc.constraints[0].message, 'no medium — insert a card or disk, then rescan');
});

test('a loop device is shareable, with a note that its image file can be shared directly', () => {
  const loop0 = find(homelab(), 'loop0');
  assert.equal(loop0.share, 'read-write');
  assert.deepEqual(loop0.constraints.map((c) => [c.code, c.allows]), [['virtual', 'read-write']]);
});

test('a disk (or one of its partitions) already shared by Spindle cannot be shared again', () => {
  const d = disk({ partitions: [part('sdx1')] });
  assert.equal(isInUseBySpindle(d, new Set(['/dev/sdx'])), true);
  assert.equal(isInUseBySpindle(d, new Set(['/dev/sdx1'])), true);
  assert.equal(isInUseBySpindle(d, new Set(['/dev/sdy'])), false);
  const c = classify(d, { ...linux, inUseBySpindle: new Set(['/dev/sdx1']) });
  assert.equal(c.share, 'no');
  assert.deepEqual(c.constraints, [{ code: 'in-use-by-spindle', allows: 'no', message: 'already shared by Spindle' }]);
});

test('a partitionless file system mounted on the whole disk counts as mounted', () => {
  const d = disk({ fstype: 'ext4', mountpoints: ['/mnt/scratch'] });
  assert.deepEqual(mountedPartitions(d), [{ name: 'sdx', mountpoints: ['/mnt/scratch'] }]);
  assert.equal(classify(d, linux).share, 'read-only');
});

test('Windows: the disk holding C:\\ (any case) or flagged IsSystem/IsBoot is the system disk', () => {
  const win: ClassifyContext = { platform: 'win32' };
  const c = disk({ partitions: [part('Disk 0 Partition 3', { mountpoints: ['c:\\'] })] });
  assert.deepEqual(classify(c, win).constraints[0], { code: 'system', allows: 'no', message: 'holds C:\\ — your system disk' });
  const flagged = classify(disk({ system: true }), win);
  assert.equal(flagged.share, 'no');
  assert.equal(flagged.constraints[0].message, 'the operating system starts from this disk — your system disk');
  const d = classify(disk({ partitions: [part('Disk 1 Partition 1', { mountpoints: ['D:\\'] })] }), { platform: 'win32', systemDrive: 'D:' });
  assert.equal(d.share, 'no');
  assert.match(classify(disk({ partitions: [part('Disk 1 Partition 1', { mountpoints: ['E:\\'] })] }), win).constraints[0].message, /E:\\ .* remove its drive letter/);
});

test('macOS: the disk holding / is the system disk; mounted volumes are to be ejected', () => {
  const mac: ClassifyContext = { platform: 'darwin' };
  assert.equal(classify(disk({ partitions: [part('disk0s2', { mountpoints: ['/', '/System/Volumes/Data'] })] }), mac).share, 'no');
  const ext = classify(disk({ partitions: [part('disk4s2', { mountpoints: ['/Volumes/T7'] })] }), mac);
  assert.equal(ext.constraints[0].message, 'disk4s2 is mounted at /Volumes/T7 on this computer — eject it to share read-write');
});

test('the verdict is the worst of the constraints, and constraints come most severe first', () => {
  assert.equal(worstVerdict([]), 'read-write');
  assert.equal(worstVerdict(['read-write', 'read-only']), 'read-only');
  assert.equal(worstVerdict(['read-only', 'no', 'read-write']), 'no');
  const c = constraintsOf(disk({ removable: true, readOnly: true, partitions: [part('sdx1', { mountpoints: ['/'] })] }), linux);
  assert.deepEqual(c.map((x) => x.allows), ['no', 'read-only', 'read-only', 'read-write']);
});

test('sortDisks puts safe disks first, then by path with numbers compared as numbers', () => {
  const order = sortDisks(homelab()).map((d) => `${d.share} ${d.path}`);
  assert.deepEqual(order, [
    'read-write /dev/loop0',
    'read-write /dev/sdd',
    'read-only /dev/loop1',
    'read-only /dev/mmcblk0',
    'read-only /dev/sda',
    'read-only /dev/sdb',
    'no /dev/nvme0n1',
    'no /dev/sdc',
  ]);
  const nvme = ['/dev/nvme10n1', '/dev/nvme2n1'].map((p) => classify(disk({ path: p }), linux));
  assert.deepEqual(sortDisks(nvme).map((d) => d.path), ['/dev/nvme2n1', '/dev/nvme10n1']);
});

test('classify keeps every raw field and does not mutate its input', () => {
  const raw = disk({ partitions: [part('sdx1', { mountpoints: ['/data'] })] });
  const before = structuredClone(raw);
  const c = classify(raw, linux);
  assert.deepEqual(raw, before);
  const { share: _s, constraints: _c, ...rest } = c;
  assert.deepEqual(rest, raw);
});
