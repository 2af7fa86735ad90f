import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseWindows, parseWindowsEnvelope, parseWindowsJson } from '../../src-main/disks/windows';
import { classify } from '../../src-main/disks/constraints';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/disks/${name}`, import.meta.url), 'utf8');
const laptop = () =>
  parseWindowsJson(fixture('windows-get-disk.json'), fixture('windows-get-partition.json'), fixture('windows-get-volume.json'));

test('a Windows laptop shows its NVMe system disk and the USB stick as PhysicalDrive0 and 1', () => {
  const disks = laptop();
  assert.deepEqual(disks.map((d) => [d.name, d.path]), [
    ['PhysicalDrive0', '\\\\.\\PhysicalDrive0'],
    ['PhysicalDrive1', '\\\\.\\PhysicalDrive1'],
  ]);
  const [nvme, usb] = disks;
  assert.deepEqual(
    { size: nvme.sizeBytes, model: nvme.model, serial: nvme.serial, removable: nvme.removable, readOnly: nvme.readOnly, system: nvme.system, kind: nvme.kind },
    { size: 1000204886016, model: 'Samsung SSD 980 PRO 1TB', serial: '0025_38B2_21A1_B2C3', removable: false, readOnly: false, system: true, kind: 'disk' },
  );
  assert.deepEqual([usb.model, usb.removable, usb.system], ['Ultra', true, false]);
});

test('partitions get drive letters as mount points; volume GUID paths are not mounts', () => {
  const [nvme, usb] = laptop();
  assert.deepEqual(
    nvme.partitions.map((p) => [p.name, p.mountpoints, p.fstype, p.label]),
    [
      ['Disk 0 Partition 1', [], 'FAT32', null],
      ['Disk 0 Partition 2', [], null, null],
      ['Disk 0 Partition 3', ['C:\\'], 'NTFS', 'Windows'],
      ['Disk 0 Partition 4', [], 'NTFS', 'Windows RE tools'],
    ],
  );
  assert.equal(nvme.partitions[2].path, '\\\\?\\GLOBALROOT\\Device\\Harddisk0\\Partition3');
  assert.deepEqual([usb.partitions[0].mountpoints, usb.partitions[0].fstype, usb.partitions[0].label], [['E:\\'], 'FAT32', 'SANDISK']);
});

test('the Windows system disk is never shareable; the mounted USB stick is read-only until its letter is removed', () => {
  const [nvme, usb] = laptop().map((d) => classify(d, { platform: 'win32' }));
  assert.equal(nvme.share, 'no');
  assert.equal(nvme.constraints[0].message, 'holds C:\\ — your system disk');
  assert.equal(usb.share, 'read-only');
  assert.deepEqual(usb.constraints.map((c) => c.message), [
    'Disk 1 Partition 1 is mounted at E:\\ on this computer — remove its drive letter or take the disk offline to share read-write',
    'removable — clients lose it if it is unplugged',
  ]);
});

test('IsSystem/IsBoot alone (no C: on the disk) marks the system disk', () => {
  const disks = parseWindows({
    disks: { Number: 3, FriendlyName: 'Boot SSD', Size: 256060514304, BusType: 'SATA', IsSystem: true, IsBoot: false, IsReadOnly: false },
    partitions: [],
  });
  assert.equal(classify(disks[0], { platform: 'win32' }).share, 'no');
});

test('one disk prints as an object, not a list; no partitions print nothing', () => {
  const disks = parseWindowsJson('{"Number": 2, "FriendlyName": "WD Red", "Size": 4000787030016, "BusType": "SATA", "IsReadOnly": true}', '');
  assert.equal(disks.length, 1);
  assert.deepEqual([disks[0].name, disks[0].readOnly, disks[0].removable, disks[0].partitions], ['PhysicalDrive2', true, false, []]);
  assert.equal(classify(disks[0], { platform: 'win32' }).share, 'read-only');
});

test('numeric enums and chars: BusType 7 is USB, 15 a VHD; DriveLetter 69 is E', () => {
  const disks = parseWindows({
    disks: [
      { Number: 1, Model: 'Flash', Size: 8e9, BusType: 7 },
      { Number: 4, Model: 'Msft Virtual Disk', Size: 2e10, BusType: 15 },
    ],
    partitions: [{ DiskNumber: 1, PartitionNumber: 1, DriveLetter: 69, AccessPaths: [null], Size: 8e9 }],
  });
  assert.deepEqual(disks.map((d) => [d.removable, d.kind]), [[true, 'disk'], [false, 'image']]);
  assert.deepEqual(disks[0].partitions[0].mountpoints, ['E:\\']);
});

test('folder mount points count as mounts; \\u0000 is no drive letter', () => {
  const [d] = parseWindows({
    disks: [{ Number: 5, Size: 1e12, BusType: 'SAS' }],
    partitions: [{ DiskNumber: 5, PartitionNumber: 2, DriveLetter: '\u0000', AccessPaths: ['D:\\mnt\\data\\', '\\\\?\\Volume{1}\\'], Size: 1e12 }],
  });
  assert.deepEqual(d.partitions[0].mountpoints, ['D:\\mnt\\data\\']);
  assert.equal(classify(d, { platform: 'win32' }).share, 'read-only');
});

test('Get-PhysicalDisk MediaType HDD marks a disk rotational', () => {
  const disks = parseWindows({
    disks: [{ Number: 0, Size: 1 }, { Number: 1, Size: 1 }],
    partitions: [],
    physicalDisks: [{ DeviceId: '0', MediaType: 'SSD' }, { DeviceId: '1', MediaType: 'HDD' }],
  });
  assert.deepEqual(disks.map((d) => d.rotational), [false, true]);
});

test('the runner envelope {Disks, Partitions, Volumes} parses like the separate outputs', () => {
  const envelope = JSON.stringify({
    Disks: JSON.parse(fixture('windows-get-disk.json')),
    Partitions: JSON.parse(fixture('windows-get-partition.json')),
    Volumes: JSON.parse(fixture('windows-get-volume.json')),
    PhysicalDisks: [],
  });
  assert.deepEqual(parseWindowsEnvelope(`\uFEFF${envelope}`), laptop());
});

test('garbled PowerShell output throws DISK_SCAN_FAILED naming the command to check', () => {
  for (const [d, p] of [['{"Number": 0,', '[]'], ['[]', 'Get-Partition : Access denied'], ['"text"', '[]']]) {
    assert.throws(
      () => parseWindowsJson(d, p),
      (err: Error & { code?: string }) => err.code === 'DISK_SCAN_FAILED' && /Get-Disk/.test(err.message),
    );
  }
  assert.throws(() => parseWindowsEnvelope('[1,2]'), { code: 'DISK_SCAN_FAILED' });
});
