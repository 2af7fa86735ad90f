// Mounted volumes with free space: the places an image file can live.
import { access, readFile } from 'node:fs/promises';
import { getDiskInfo } from 'node-disk-info';
import type { Volume } from './types';
import type { DiskPlatform } from './constraints';
import { scanFailed } from './exec';

/** The fields of node-disk-info's `Drive` that we use (its figures are in `df -P` blocks). */
export interface DriveLike {
  filesystem: string;
  blocks: number;
  used: number;
  available: number;
  mounted: string;
}

/** A line of /proc/self/mounts. */
export interface MountEntry {
  source: string;
  mountpoint: string;
  fstype: string;
  options: string[];
}

/**
 * Bytes per block in node-disk-info's figures: it runs `df -P`, which counts
 * 1024-byte blocks on Linux and 512-byte blocks on macOS; on Windows (wmic) it
 * reports bytes.
 */
export function dfBlockBytes(platform: DiskPlatform): number {
  return platform === 'linux' ? 1024 : platform === 'darwin' ? 512 : 1;
}

// RAM-backed and pseudo file systems are skipped: an image file on tmpfs
// would vanish at reboot, and the rest are not storage at all.
const PSEUDO_FS = new Set([
  'tmpfs', 'devtmpfs', 'ramfs', 'udev', 'none', 'shm', 'overlay', 'squashfs', 'proc', 'sysfs', 'devpts',
  'cgroup', 'cgroup2', 'mqueue', 'hugetlbfs', 'debugfs', 'tracefs', 'securityfs', 'pstore', 'bpf',
  'configfs', 'fusectl', 'autofs', 'binfmt_misc', 'efivarfs', 'nsfs', 'rpc_pipefs', 'selinuxfs',
  'iso9660', 'devfs', 'fuse.gvfsd-fuse', 'fuse.portal', 'fuse.lxcfs', 'fuse.snapfuse', 'nfsd',
]);

// ---- pure ------------------------------------------------------------------

/** Parse /proc/self/mounts; mount points escape space, tab, newline and backslash as octal. */
export function parseProcMounts(text: string): MountEntry[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
  return text
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f.length >= 4)
    .map(([source, mountpoint, fstype, options]) => ({
      source: unescape(source),
      mountpoint: unescape(mountpoint),
      fstype,
      options: options.split(','),
    }));
}

/**
 * The mount a df line belongs to. node-disk-info splits lines on spaces, so
 * "/media/alice/My Passport" arrives as "/media/alice/My"; find the one mount
 * of the same source whose path continues with a space.
 */
export function findMount(drive: DriveLike, mounts: readonly MountEntry[]): MountEntry | null {
  const exact = mounts.filter((m) => m.mountpoint === drive.mounted);
  if (exact.length > 0) return exact[exact.length - 1]; // the last mount on a path is the visible one
  const truncated = mounts.filter((m) => m.source === drive.filesystem && m.mountpoint.startsWith(`${drive.mounted} `));
  return truncated.length === 1 ? truncated[0] : null;
}

function isStorage(platform: DiskPlatform, drive: DriveLike, mount: MountEntry | null): boolean {
  if (mount) return !PSEUDO_FS.has(mount.fstype) && !mount.options.includes('ro');
  if (PSEUDO_FS.has(drive.filesystem) || drive.filesystem.startsWith('map ')) return false;
  // macOS: /System/Volumes/* share the container (and free space) of "/".
  return !(platform === 'darwin' && drive.mounted.startsWith('/System/Volumes/'));
}

function mountpointOf(platform: DiskPlatform, mounted: string): string {
  return platform === 'win32' && /^[A-Za-z]:$/.test(mounted) ? `${mounted.toUpperCase()}\\` : mounted;
}

/**
 * node-disk-info drives → volumes in bytes. With `mounts` (Linux), a df line
 * with no matching mount is dropped rather than shown with a wrong path.
 */
export function toVolumes(drives: readonly DriveLike[], platform: DiskPlatform, mounts?: readonly MountEntry[] | null): Volume[] {
  const unit = dfBlockBytes(platform);
  const byMountpoint = new Map<string, Volume>();
  for (const drive of drives) {
    const mount = mounts ? findMount(drive, mounts) : null;
    if (mounts && !mount) continue;
    if (drive.blocks <= 0 || !isStorage(platform, drive, mount)) continue;
    const mountpoint = mount?.mountpoint ?? mountpointOf(platform, drive.mounted);
    byMountpoint.set(mountpoint, {
      filesystem: drive.filesystem,
      mountpoint,
      sizeBytes: drive.blocks * unit,
      usedBytes: drive.used * unit,
      freeBytes: drive.available * unit,
    });
  }
  return [...byMountpoint.values()];
}

/** Parse `df -P` output (header optional); the mount point is everything after the fifth column. */
export function parseDfPosix(text: string): DriveLike[] {
  const num = (s: string) => (/^\d+$/.test(s) ? Number(s) : 0);
  return text
    .split('\n')
    .map((line) => /^(.+?)\s+(\d+|-)\s+(\d+|-)\s+(\d+|-)\s+(\d+%|-)\s+(\/.*)$/.exec(line.trimEnd()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ filesystem: m[1], blocks: num(m[2]), used: num(m[3]), available: num(m[4]), mounted: m[6] }));
}

// ---- running -----------------------------------------------------------------

// df reads its block size from these; node-disk-info runs df synchronously
// inside getDiskInfo(), so clearing them around that call is race-free.
const DF_ENV = ['POSIXLY_CORRECT', 'BLOCKSIZE', 'BLOCK_SIZE', 'DF_BLOCK_SIZE'] as const;

async function readDrives(): Promise<DriveLike[]> {
  const saved = DF_ENV.map((k) => [k, process.env[k]] as const);
  let pending: Promise<DriveLike[]>;
  try {
    for (const k of DF_ENV) delete process.env[k];
    pending = getDiskInfo();
  } finally {
    for (const [k, v] of saved) if (v !== undefined) process.env[k] = v;
  }
  try {
    return await pending;
  } catch (err) {
    // df exits 1 when one mount is unreadable (e.g. a FUSE mount of another
    // user) but still prints the rest; keep that.
    const stdout = (err as { stdout?: unknown }).stdout;
    if (Buffer.isBuffer(stdout) && stdout.length > 0) return parseDfPosix(stdout.toString('utf8'));
    throw scanFailed(`Cannot list volumes: ${(err as Error).message}. Check that "df" works in a terminal, then rescan.`, err);
  }
}

async function readProcMounts(): Promise<MountEntry[] | null> {
  try {
    return parseProcMounts(await readFile('/proc/self/mounts', 'utf8'));
  } catch {
    return null;
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

export async function listVolumes(platform: DiskPlatform): Promise<Volume[]> {
  const drives = await readDrives();
  const mounts = platform === 'linux' ? await readProcMounts() : null;
  const volumes = toVolumes(drives, platform, mounts);
  if (platform !== 'darwin') return volumes;
  // No mount table to repair paths cut at a space against: drop what does not exist.
  const keep = await Promise.all(volumes.map((v) => exists(v.mountpoint)));
  return volumes.filter((_, i) => keep[i]);
}
