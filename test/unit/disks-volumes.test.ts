import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { findMount, listVolumes, parseDfPosix, parseProcMounts, toVolumes, type DriveLike } from '../../src-main/disks/volumes';

const PROC_MOUNTS = [
  'sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0',
  'udev /dev devtmpfs rw,nosuid,relatime,size=8123456k,nr_inodes=2030864,mode=755 0 0',
  'tmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,size=1628404k,mode=755 0 0',
  '/dev/nvme0n1p2 / ext4 rw,relatime,errors=remount-ro 0 0',
  '/dev/loop3 /snap/core22/1380 squashfs ro,nodev,relatime,errors=continue 0 0',
  'tank/media /tank/media zfs rw,xattr,noacl 0 0',
  '/dev/sdb1 /media/alice/My\\040Passport fuseblk rw,nosuid,nodev,relatime,user_id=0,group_id=0,allow_other 0 0',
  '/dev/sr0 /media/alice/CDROM iso9660 ro,nosuid,nodev,relatime 0 0',
  'nas:/export/images /mnt/images nfs4 rw,relatime,vers=4.2 0 0',
].join('\n');

// What node-disk-info hands back for the same machine (df -P, 1K blocks, split on spaces).
const DRIVES: DriveLike[] = [
  { filesystem: 'udev', blocks: 8123456, used: 0, available: 8123456, mounted: '/dev' },
  { filesystem: 'tmpfs', blocks: 1628404, used: 2040, available: 1626364, mounted: '/run' },
  { filesystem: '/dev/nvme0n1p2', blocks: 959862832, used: 412345678, available: 498765432, mounted: '/' },
  { filesystem: '/dev/loop3', blocks: 75904, used: 75904, available: 0, mounted: '/snap/core22/1380' },
  { filesystem: 'tank/media', blocks: 3812345678, used: 1234567890, available: 2577777788, mounted: '/tank/media' },
  { filesystem: '/dev/sdb1', blocks: 976728060, used: 123456, available: 976604604, mounted: '/media/alice/My' },
  { filesystem: 'nas:/export/images', blocks: 1953125000, used: 953125000, available: 1000000000, mounted: '/mnt/images' },
];

test('Linux volumes: df -P 1K blocks become bytes', () => {
  const root = toVolumes(DRIVES, 'linux', parseProcMounts(PROC_MOUNTS)).find((v) => v.mountpoint === '/');
  assert.deepEqual(root, {
    filesystem: '/dev/nvme0n1p2',
    mountpoint: '/',
    sizeBytes: 959862832 * 1024,
    usedBytes: 412345678 * 1024,
    freeBytes: 498765432 * 1024,
  });
});

test('Linux volumes: RAM-backed, pseudo and read-only file systems are not places for image files', () => {
  const mounts = toVolumes(DRIVES, 'linux', parseProcMounts(PROC_MOUNTS)).map((v) => v.mountpoint);
  assert.deepEqual(mounts, ['/', '/tank/media', '/media/alice/My Passport', '/mnt/images']);
});

test('a mount point with a space, cut short by node-disk-info, is restored from /proc/self/mounts', () => {
  const mounts = parseProcMounts(PROC_MOUNTS);
  assert.equal(mounts.find((m) => m.source === '/dev/sdb1')?.mountpoint, '/media/alice/My Passport');
  assert.equal(findMount(DRIVES[5], mounts)?.mountpoint, '/media/alice/My Passport');
  // Ambiguous or unknown: dropped rather than shown with a wrong path.
  const twice = parseProcMounts('/dev/sdb1 /media/My\\040A vfat rw 0 0\n/dev/sdb1 /media/My\\040B vfat rw 0 0');
  assert.equal(findMount({ ...DRIVES[5], mounted: '/media/My' }, twice), null);
  assert.deepEqual(toVolumes([{ ...DRIVES[5], mounted: '/media/My' }], 'linux', twice), []);
});

test('macOS df -P counts 512-byte blocks; Windows reports bytes and drive letters get a backslash', () => {
  const [mac] = toVolumes([{ filesystem: '/dev/disk4s2', blocks: 1953112704, used: 100, available: 1953112604, mounted: '/Volumes/T7' }], 'darwin');
  assert.equal(mac.sizeBytes, 1953112704 * 512);
  assert.deepEqual(
    toVolumes([{ filesystem: '/dev/disk3s5', blocks: 10, used: 1, available: 9, mounted: '/System/Volumes/Data' }], 'darwin'),
    [],
  );
  const [c] = toVolumes([{ filesystem: 'Local Fixed Disk', blocks: 999231156224, used: 386885480448, available: 612345675776, mounted: 'C:' }], 'win32');
  assert.deepEqual([c.mountpoint, c.sizeBytes, c.freeBytes], ['C:\\', 999231156224, 612345675776]);
  assert.deepEqual(toVolumes([{ filesystem: 'CD-ROM Disc', blocks: 0, used: 0, available: 0, mounted: 'D:' }], 'win32'), []);
});

test('df -P output (the fallback when df exits 1) keeps mount points with spaces', () => {
  const text = [
    'Filesystem     1024-blocks      Used Available Capacity Mounted on',
    '/dev/sdb1        976728060    123456 976604604       1% /media/alice/My Passport',
    'map auto_home            0         0         0     100% /System/Volumes/Data/home',
  ].join('\n');
  assert.deepEqual(parseDfPosix(text), [
    { filesystem: '/dev/sdb1', blocks: 976728060, used: 123456, available: 976604604, mounted: '/media/alice/My Passport' },
    { filesystem: 'map auto_home', blocks: 0, used: 0, available: 0, mounted: '/System/Volumes/Data/home' },
  ]);
});

test('on this machine, volume sizes in bytes match df -B1', { skip: process.platform !== 'linux' }, async () => {
  const volumes = await listVolumes('linux');
  assert.ok(volumes.length > 0, 'at least one volume');
  const df = execFileSync('df', ['-B1', '--output=target,size,used,avail', ...volumes.map((v) => v.mountpoint)], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => /^(.*?)\s+(\d+)\s+(\d+)\s+(\d+)$/.exec(line.trim()))
    .filter((m): m is RegExpExecArray => m !== null);
  for (const v of volumes) {
    const row = df.find((m) => m[1] === v.mountpoint);
    assert.ok(row, `df -B1 knows ${v.mountpoint}`);
    // Sizes are exact; used/free may move a little while other tests write files.
    assert.ok(Math.abs(v.sizeBytes - Number(row[2])) < 1024, `size of ${v.mountpoint}: ${v.sizeBytes} vs ${row[2]}`);
    const slack = Math.max(256 * 2 ** 20, v.sizeBytes * 0.01);
    assert.ok(Math.abs(v.usedBytes - Number(row[3])) < slack, `used of ${v.mountpoint}`);
    assert.ok(Math.abs(v.freeBytes - Number(row[4])) < slack, `free of ${v.mountpoint}`);
  }
});

test('df block size is fixed even when POSIXLY_CORRECT would make df count 512-byte blocks', { skip: process.platform !== 'linux' }, async () => {
  const plain = await listVolumes('linux');
  process.env.POSIXLY_CORRECT = '1';
  try {
    const posix = await listVolumes('linux');
    assert.equal(process.env.POSIXLY_CORRECT, '1', 'the variable is restored');
    assert.deepEqual(posix.map((v) => [v.mountpoint, v.sizeBytes]), plain.map((v) => [v.mountpoint, v.sizeBytes]));
  } finally {
    delete process.env.POSIXLY_CORRECT;
  }
});
