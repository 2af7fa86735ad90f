import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { columnsWithout, LSBLK_COLUMNS, parseLsblk } from '../../src-main/disks/lsblk';
import { scanDisks } from '../../src-main/disks/index';
import type { RawDisk } from '../../src-main/disks/types';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/disks/${name}`, import.meta.url), 'utf8');
const homelab = () => parseLsblk(fixture('lsblk-homelab.json'));
const byName = (disks: RawDisk[], name: string) => {
  const d = disks.find((x) => x.name === name);
  assert.ok(d, `${name} is listed`);
  return d;
};

test('lists whole disks and attached loops; skips zram, optical drives and unattached loops', () => {
  assert.deepEqual(
    homelab().map((d) => d.path),
    ['/dev/loop0', '/dev/loop1', '/dev/sda', '/dev/sdb', '/dev/sdc', '/dev/sdd', '/dev/mmcblk0', '/dev/nvme0n1'],
  );
});

test('a whole disk carries its identity and flags from lsblk', () => {
  const sdd = byName(homelab(), 'sdd');
  assert.deepEqual(
    { size: sdd.sizeBytes, model: sdd.model, serial: sdd.serial, rota: sdd.rotational, rm: sdd.removable, ro: sdd.readOnly, kind: sdd.kind },
    { size: 4000787030016, model: 'WDC WD40EFRX-68N32N0', serial: 'WD-WCC7K4HXXXXX', rota: true, rm: false, ro: false, kind: 'disk' },
  );
  assert.deepEqual(sdd.partitions, [
    { name: 'sdd1', path: '/dev/sdd1', sizeBytes: 4000785104896, fstype: 'ext4', label: 'spare', mountpoints: [], holders: [] },
  ]);
});

test('model strings lose lsblk padding', () => {
  assert.equal(byName(homelab(), 'sdb').model, 'Cruzer Blade');
});

test('mountpoints: [null] means not mounted', () => {
  const sdd = byName(homelab(), 'sdd');
  assert.deepEqual(sdd.mountpoints, []);
  assert.deepEqual(sdd.partitions[0].mountpoints, []);
});

test('LVM on LUKS: logical volumes mounted anywhere below a partition count as that partition mounted', () => {
  const sda1 = byName(homelab(), 'sda').partitions[0];
  assert.deepEqual(sda1.mountpoints, ['/srv/media']);
  assert.deepEqual(sda1.holders, ['luks-5d0c6f3e-8d3a-4b1e-9a47-2f1e0c9b7a11']);
});

test('a btrfs partition keeps all its mount points and the swap partition shows [SWAP]', () => {
  const nvme = byName(homelab(), 'nvme0n1');
  assert.deepEqual(
    nvme.partitions.map((p) => [p.name, p.mountpoints]),
    [
      ['nvme0n1p1', ['/boot/efi']],
      ['nvme0n1p2', ['/var/lib/docker/btrfs', '/home', '/']],
      ['nvme0n1p3', ['[SWAP]']],
    ],
  );
});

test('loop devices are kind "loop"; a read-only squashfs loop keeps ro and its mount', () => {
  const disks = homelab();
  assert.equal(byName(disks, 'loop0').kind, 'loop');
  const loop1 = byName(disks, 'loop1');
  assert.deepEqual([loop1.kind, loop1.readOnly, loop1.fstype, loop1.mountpoints], ['loop', true, 'squashfs', ['/snap/core22/1380']]);
});

test('old util-linux: "0"/"1" flags, sizes as strings, single mountpoint, no PATH column', () => {
  const disks = parseLsblk(fixture('lsblk-util-linux-2.32.json'));
  assert.deepEqual(disks.map((d) => d.path), ['/dev/sda', '/dev/sdb', '/dev/sdc']);
  const [sda, sdb, sdc] = disks;
  assert.equal(sda.sizeBytes, 500107862016);
  assert.equal(sda.rotational, true);
  assert.deepEqual(sda.partitions.map((p) => [p.path, p.mountpoints]), [
    ['/dev/sda1', ['/boot']],
    ['/dev/sda2', ['/', '[SWAP]']],
  ]);
  assert.equal(sdb.removable, true);
  assert.equal(sdb.partitions[0].sizeBytes, 16007561216);
  // A RAID member without partitions: the md array is a holder of the whole disk.
  assert.deepEqual([sdc.holders, sdc.mountpoints, sdc.fstype], [['md0'], [], 'linux_raid_member']);
});

test('garbled lsblk output throws DISK_SCAN_FAILED with a message that says what to do', () => {
  for (const bad of ['', '{"blockdevices": [', 'lsblk: unknown column', '{"devices": []}', '{"blockdevices": [1, 2]}', 'null']) {
    assert.throws(
      () => parseLsblk(bad),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'DISK_SCAN_FAILED', `for ${JSON.stringify(bad)}`);
        assert.match(err.message, /util-linux/);
        return true;
      },
    );
  }
});

test('an empty blockdevices list is no disks, not an error', () => {
  assert.deepEqual(parseLsblk('{"blockdevices": []}'), []);
});

test('older lsblk without MOUNTPOINTS is retried with MOUNTPOINT; essential columns are never dropped', () => {
  const cols = [...LSBLK_COLUMNS];
  assert.deepEqual(columnsWithout(cols, 'MOUNTPOINTS'), cols.map((c) => (c === 'MOUNTPOINTS' ? 'MOUNTPOINT' : c)));
  assert.deepEqual(columnsWithout(cols, 'PATH'), cols.filter((c) => c !== 'PATH'));
  assert.equal(columnsWithout(cols, 'NAME'), null);
  assert.equal(columnsWithout(cols, 'BOGUS'), null);
  assert.equal(columnsWithout(cols, null), null);
});

test('on this machine, scanDisks() lists the same disks as a direct lsblk call, and the disk holding / is not shareable', { skip: process.platform !== 'linux' }, async () => {
  const direct = JSON.parse(execFileSync('lsblk', ['--json', '--bytes', '-o', 'NAME,TYPE,SIZE'], { encoding: 'utf8' })) as {
    blockdevices: Array<{ name: string; type: string; size: number | string }>;
  };
  // The filter rule, restated independently: disks except RAM and unattached nbd; loops with a size.
  const expected = direct.blockdevices
    .filter((d) => {
      const size = Number(d.size);
      if (d.type === 'loop') return size > 0;
      return d.type === 'disk' && !/^z?ram\d+$/.test(d.name) && !(/^nbd\d+$/.test(d.name) && size === 0);
    })
    .map((d) => `/dev/${d.name}`)
    .sort();

  const report = await scanDisks();
  assert.equal(report.platform, 'linux');
  assert.deepEqual(report.disks.map((d) => d.path).sort(), expected);
  for (const disk of report.disks) {
    const mounts = [...disk.mountpoints, ...disk.partitions.flatMap((p) => p.mountpoints)];
    if (mounts.includes('/')) {
      assert.equal(disk.share, 'no', `${disk.path} holds /`);
      assert.ok(disk.constraints.some((c) => c.code === 'system' && c.message === 'holds / — your system disk'));
    }
  }
  assert.ok(report.volumes.some((v) => v.mountpoint === '/'), 'the root file system is a volume');
  assert.ok(!Number.isNaN(Date.parse(report.scannedAt)));
});
