// Safety classification of disks: small pure predicates, one per concern
// (in the style of Etcher's drive-constraints), and `classify`, which turns
// their findings into constraints and a share verdict. SPEC §4: never export
// read-write a disk that is mounted on this host or is the system disk.
import type { Disk, DiskConstraint, Partition, RawDisk, ShareVerdict } from './types';

export type DiskPlatform = 'linux' | 'win32' | 'darwin';

export interface ClassifyContext {
  platform: DiskPlatform;
  /** Device paths Spindle already exports or has attached (disks or partitions). */
  inUseBySpindle?: ReadonlySet<string>;
  /** Windows only: the drive the OS runs from (%SystemDrive%); default "C:". */
  systemDrive?: string;
}

/** Mount points that make a disk the system disk, most telling first. */
export function systemMountpoints(platform: DiskPlatform, systemDrive = 'C:'): string[] {
  switch (platform) {
    case 'linux':
      return ['/', '/usr', '/var', '/boot', '/boot/efi', '/efi', '/boot/firmware', '[SWAP]'];
    case 'darwin':
      return ['/', '/System/Volumes/Data', '/System/Volumes/VM'];
    case 'win32':
      return [`${systemDrive.replace(/[\\/]+$/, '').toUpperCase()}\\`];
  }
}

// ---- predicates --------------------------------------------------------------

/** Every mount point on the disk: its own and its partitions'. */
function allMountpoints(raw: RawDisk): string[] {
  return [...raw.mountpoints, ...raw.partitions.flatMap((p) => p.mountpoints)];
}

/** The system mount point the disk holds, or null. Windows drive letters compare case-insensitively. */
export function systemMountOf(raw: RawDisk, platform: DiskPlatform, systemDrive?: string): string | null {
  const norm = (m: string) => (platform === 'win32' ? m.toUpperCase() : m);
  const held = new Set(allMountpoints(raw).map(norm));
  return systemMountpoints(platform, systemDrive).find((m) => held.has(norm(m))) ?? null;
}

export function isSystemDisk(raw: RawDisk, platform: DiskPlatform, systemDrive?: string): boolean {
  return raw.system === true || systemMountOf(raw, platform, systemDrive) !== null;
}

export interface MountedPart {
  /** The disk's or the partition's name. */
  name: string;
  mountpoints: string[];
}

/** Which of the disk's devices are mounted here, and where (the disk itself first). */
export function mountedPartitions(raw: RawDisk): MountedPart[] {
  const devices: Array<RawDisk | Partition> = [raw, ...raw.partitions];
  return devices.filter((d) => d.mountpoints.length > 0).map((d) => ({ name: d.name, mountpoints: d.mountpoints }));
}

/** Devices that nothing mounts but that have active holders (an open LUKS, an active LVM PV, a RAID member). */
export function heldPartitions(raw: RawDisk): Array<{ name: string; holders: string[] }> {
  const devices: Array<RawDisk | Partition> = [raw, ...raw.partitions];
  return devices
    .filter((d) => d.mountpoints.length === 0 && (d.holders?.length ?? 0) > 0)
    .map((d) => ({ name: d.name, holders: d.holders ?? [] }));
}

export function isRemovable(raw: RawDisk): boolean {
  return raw.removable;
}

export function isReadOnly(raw: RawDisk): boolean {
  return raw.readOnly;
}

/** The disk, or one of its partitions, is already exported or attached by Spindle. */
export function isInUseBySpindle(raw: RawDisk, inUse: ReadonlySet<string> = new Set()): boolean {
  return inUse.has(raw.path) || raw.partitions.some((p) => inUse.has(p.path));
}

/** No medium (an empty card reader) or a zero-size device. */
export function isEmpty(raw: RawDisk): boolean {
  return raw.sizeBytes <= 0;
}

/** A device backed by a file (loop device, attached VHD or disk image). */
export function isVirtual(raw: RawDisk): boolean {
  return raw.kind === 'loop' || raw.kind === 'image';
}

// ---- constraints -------------------------------------------------------------

function systemConstraint(raw: RawDisk, ctx: ClassifyContext): DiskConstraint[] {
  const mount = systemMountOf(raw, ctx.platform, ctx.systemDrive);
  if (mount === '[SWAP]') {
    return [{ code: 'system', allows: 'no', message: 'holds swap space this computer is using — your system disk' }];
  }
  if (mount) return [{ code: 'system', allows: 'no', message: `holds ${mount} — your system disk` }];
  if (raw.system) return [{ code: 'system', allows: 'no', message: 'the operating system starts from this disk — your system disk' }];
  return [];
}

function unmountAdvice(platform: DiskPlatform): string {
  if (platform === 'win32') return 'remove its drive letter or take the disk offline';
  if (platform === 'darwin') return 'eject it';
  return 'unmount it';
}

function mountedConstraints(raw: RawDisk, ctx: ClassifyContext): DiskConstraint[] {
  const advice = unmountAdvice(ctx.platform);
  const mounted = mountedPartitions(raw).map((m): DiskConstraint => ({
    code: 'mounted',
    allows: 'read-only',
    message: `${m.name} is mounted at ${m.mountpoints.join(', ')} on this computer — ${advice} to share read-write`,
  }));
  const held = heldPartitions(raw).map((h): DiskConstraint => ({
    code: 'mounted',
    allows: 'read-only',
    message: `${h.name} is in use by ${h.holders.join(', ')} (encryption, LVM or RAID) on this computer — close or deactivate it to share read-write`,
  }));
  return [...mounted, ...held];
}

function when(cond: boolean, c: DiskConstraint): DiskConstraint[] {
  return cond ? [c] : [];
}

/** Every restriction on the disk, the most severe first. */
export function constraintsOf(raw: RawDisk, ctx: ClassifyContext): DiskConstraint[] {
  const all = [
    ...systemConstraint(raw, ctx),
    ...when(isInUseBySpindle(raw, ctx.inUseBySpindle), { code: 'in-use-by-spindle', allows: 'no', message: 'already shared by Spindle' }),
    ...when(isEmpty(raw), { code: 'empty', allows: 'no', message: 'no medium — insert a card or disk, then rescan' }),
    ...mountedConstraints(raw, ctx),
    ...when(isReadOnly(raw), { code: 'read-only', allows: 'read-only', message: 'the device is write-protected — it can only be shared read-only' }),
    ...when(isRemovable(raw), { code: 'removable', allows: 'read-write', message: 'removable — clients lose it if it is unplugged' }),
    ...when(isVirtual(raw), { code: 'virtual', allows: 'read-write', message: 'backed by an image file — you can also share that file directly' }),
  ];
  // Array.prototype.sort is stable, so equal verdicts keep the order above.
  return all.sort((a, b) => rank(b.allows) - rank(a.allows));
}

const RANK: Record<ShareVerdict, number> = { 'read-write': 0, 'read-only': 1, no: 2 };

function rank(v: ShareVerdict): number {
  return RANK[v];
}

/** The most restrictive of the verdicts; 'read-write' when there are none. */
export function worstVerdict(verdicts: Iterable<ShareVerdict>): ShareVerdict {
  let worst: ShareVerdict = 'read-write';
  for (const v of verdicts) if (rank(v) > rank(worst)) worst = v;
  return worst;
}

export function classify(raw: RawDisk, ctx: ClassifyContext): Disk {
  const constraints = constraintsOf(raw, ctx);
  return { ...raw, constraints, share: worstVerdict(constraints.map((c) => c.allows)) };
}

/** Safe first (read-write, read-only, no), then by path, numbers compared as numbers (nvme2n1 before nvme10n1). */
export function sortDisks<T extends Disk>(disks: readonly T[]): T[] {
  return [...disks].sort(
    (a, b) => rank(a.share) - rank(b.share) || a.path.localeCompare(b.path, 'en', { numeric: true }),
  );
}
