import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseDarwin, physicalDiskIds, readList } from '../../src-main/disks/darwin';
import { parsePlist } from '../../src-main/disks/plist';
import { classify } from '../../src-main/disks/constraints';
import type { RawDisk } from '../../src-main/disks/types';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/disks/${name}`, import.meta.url), 'utf8');
const infos = () => ({
  disk0: fixture('darwin-info-disk0.plist'),
  disk4: fixture('darwin-info-disk4.plist'),
  disk5: fixture('darwin-info-disk5.plist'),
});
const mac = () => parseDarwin(fixture('darwin-diskutil-list.plist'), infos());
const byName = (disks: RawDisk[], name: string) => disks.find((d) => d.name === name) as RawDisk;

test('plist: dict, array, string, integer, real, true/false, empty forms, comments and entities', () => {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <!-- a comment -->
  <key>Name</key><string>Tom &amp; Jerry &lt;3 &#x41;&#66;</string>
  <key>Size</key><integer>4000752599040</integer>
  <key>Ratio</key><real>0.5</real>
  <key>Yes</key><true/>
  <key>No</key><false/>
  <key>Empty</key><string/>
  <key>None</key><array/>
  <key>Nested</key><array><dict><key>A</key><integer>-1</integer></dict><dict/></array>
</dict>
</plist>`;
  assert.deepEqual(parsePlist(xml), {
    Name: 'Tom & Jerry <3 AB',
    Size: 4000752599040,
    Ratio: 0.5,
    Yes: true,
    No: false,
    Empty: '',
    None: [],
    Nested: [{ A: -1 }, {}],
  });
});

test('plist: truncated or malformed XML is an error, not a partial result', () => {
  for (const bad of ['', '<plist><dict><key>A</key>', '<plist><dict><key>A</key><integer>x</integer></dict></plist>', '<plist><dict><string>no key</string></dict></plist>', '<plist><foo/></plist>']) {
    assert.throws(() => parsePlist(bad), Error, JSON.stringify(bad));
  }
});

test('a Mac lists its physical disks only; APFS containers (synthesized disks) are folded into them', () => {
  const list = readList(fixture('darwin-diskutil-list.plist'));
  assert.deepEqual(physicalDiskIds(list), ['disk0', 'disk4', 'disk5']);
  assert.deepEqual(mac().map((d) => d.path), ['/dev/disk0', '/dev/disk4', '/dev/disk5']);
});

test('the internal APFS disk holds / through its container, so it is the system disk', () => {
  const disk0 = byName(mac(), 'disk0');
  assert.deepEqual(
    { model: disk0.model, size: disk0.sizeBytes, removable: disk0.removable, rotational: disk0.rotational, readOnly: disk0.readOnly },
    { model: 'APPLE SSD AP0512Z', size: 500277790720, removable: false, rotational: false, readOnly: false },
  );
  const main = disk0.partitions[1];
  assert.equal(main.name, 'disk0s2');
  assert.deepEqual(main.holders, ['disk3']);
  assert.deepEqual(main.mountpoints, [
    '/',
    '/System/Volumes/Preboot',
    '/System/Volumes/Update',
    '/System/Volumes/Data',
    '/System/Volumes/VM',
  ]);
  const c = classify(disk0, { platform: 'darwin' });
  assert.equal(c.share, 'no');
  assert.equal(c.constraints[0].message, 'holds / — your system disk');
});

test('an external USB SSD with a mounted exFAT volume is removable and read-only until ejected', () => {
  const disk4 = byName(mac(), 'disk4');
  assert.deepEqual([disk4.removable, disk4.model, disk4.rotational], [true, 'Samsung PSSD T7', false]);
  assert.deepEqual(disk4.partitions.map((p) => [p.name, p.fstype, p.label, p.mountpoints]), [
    ['disk4s1', 'EFI', 'EFI', []],
    ['disk4s2', 'Microsoft Basic Data', 'T7', ['/Volumes/T7']],
  ]);
  const c = classify(disk4, { platform: 'darwin' });
  assert.equal(c.share, 'read-only');
  assert.equal(c.constraints[0].message, 'disk4s2 is mounted at /Volumes/T7 on this computer — eject it to share read-write');
});

test('an external HDD whose APFS volume is mounted counts as mounted, with the path decoded', () => {
  const disk5 = byName(mac(), 'disk5');
  assert.equal(disk5.rotational, true);
  assert.deepEqual(disk5.partitions[1].mountpoints, ['/Volumes/Archive & Backups']);
  assert.equal(classify(disk5, { platform: 'darwin' }).share, 'read-only');
});

test('a disk without `diskutil info` details is still listed with safe defaults', () => {
  const disks = parseDarwin(fixture('darwin-diskutil-list.plist'), {});
  const disk5 = byName(disks, 'disk5');
  assert.deepEqual(
    [disk5.path, disk5.sizeBytes, disk5.model, disk5.removable, disk5.readOnly],
    ['/dev/disk5', 4000752599040, null, false, false],
  );
  // Still the system disk without details: "/" comes from the list itself.
  assert.equal(classify(byName(disks, 'disk0'), { platform: 'darwin' }).share, 'no');
});

test('garbled diskutil output throws DISK_SCAN_FAILED saying to run it in Terminal', () => {
  for (const bad of ['diskutil: command failed', '<plist version="1.0"><dict><key>AllDisks</key><array/></dict></plist>', '<plist><dict>']) {
    assert.throws(
      () => parseDarwin(bad, {}),
      (err: Error & { code?: string }) => err.code === 'DISK_SCAN_FAILED' && /Terminal/.test(err.message),
    );
  }
  assert.throws(() => parseDarwin(fixture('darwin-diskutil-list.plist'), { disk0: '<plist><dict>' }), { code: 'DISK_SCAN_FAILED' });
});
