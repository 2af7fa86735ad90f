// What the kernel says about a block device, read from /sys (Node cannot
// ioctl, so no BLKGETSIZE64 / BLKSSZGET; sysfs has the same numbers).
import { readFile, realpath, access } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';

export interface SysBlockInfo {
  /** Kernel name, e.g. "sdb", "sdb1", "loop3", "nvme0n1". */
  name: string;
  /** The device's directory under /sys/devices. */
  sysPath: string;
  partition: boolean;
  sizeBytes: number;
  logicalBlockSize: number;
  physicalBlockSize: number;
  rotational: boolean;
  /** The kernel's read-only flag (write-protected medium, `blockdev --setro`). */
  readOnly: boolean;
  /** > 0 when the device accepts BLKDISCARD. */
  discardMaxBytes: number;
  discardGranularity: number;
  /** > 0 when the device zeroes ranges without writing them (fallocate PUNCH_HOLE works). */
  writeZeroesMaxBytes: number;
}

/** Linux dev_t (glibc encoding, as Node's stat returns it) → [major, minor]. */
export function devMajorMinor(dev: number): [number, number] {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & 0xfffff000n);
  const minor = (d & 0xffn) | ((d >> 12n) & 0xffffff00n);
  return [Number(major), Number(minor)];
}

async function readNumber(path: string): Promise<number | null> {
  try {
    const n = Number((await readFile(path, 'utf8')).trim());
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Info for the block device with number `dev` (stat.rdev of a device node, or stat.dev of a file). Null if sysfs has none. */
export async function sysBlockInfo(dev: number, sysRoot = '/sys'): Promise<SysBlockInfo | null> {
  const [major, minor] = devMajorMinor(dev);
  let sysPath: string;
  try {
    sysPath = await realpath(join(sysRoot, 'dev', 'block', `${major}:${minor}`));
  } catch {
    return null;
  }
  const sectors = await readNumber(join(sysPath, 'size'));
  if (sectors === null) return null;
  const partition = await exists(join(sysPath, 'partition'));
  // A partition has no queue/ of its own: its disk's applies.
  const queue = join(partition ? dirname(sysPath) : sysPath, 'queue');
  const q = (file: string) => readNumber(join(queue, file));
  const logical = (await q('logical_block_size')) ?? 512;
  return {
    name: basename(sysPath),
    sysPath,
    partition,
    // /sys/.../size is in 512-byte sectors whatever the logical block size.
    sizeBytes: sectors * 512,
    logicalBlockSize: logical,
    physicalBlockSize: (await q('physical_block_size')) ?? logical,
    rotational: (await q('rotational')) === 1,
    readOnly: (await readNumber(join(sysPath, 'ro'))) === 1,
    discardMaxBytes: (await q('discard_max_bytes')) ?? 0,
    discardGranularity: (await q('discard_granularity')) ?? 0,
    writeZeroesMaxBytes: (await q('write_zeroes_max_bytes')) ?? 0,
  };
}
