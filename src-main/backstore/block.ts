// Whole block device backstore (/dev/sdX, /dev/nvme0n1, a partition, a loop
// device). Size, logical block size, rotation and discard support come from
// sysfs (Node cannot ioctl). Buffered I/O: O_DIRECT would need aligned
// buffers from the SCSI layer; flush is fdatasync, which also flushes the
// device's write cache.
//
// A read-write open uses O_EXCL, which on Linux claims the device the way
// mount does: it fails with EBUSY while the device or one of its partitions
// is mounted or used by RAID/LVM, and while we hold it nobody can mount it.
//
// UNMAP, through the native addon:
// - device zeroes ranges without writing (write_zeroes_max_bytes > 0):
//   fallocate(PUNCH_HOLE | KEEP_SIZE), which reads back as zeros (LBPRZ);
// - else device can discard (discard_max_bytes > 0): BLKDISCARD, contents
//   afterwards are the device's business (unmapZeroes = false);
// - else, or without the addon: canUnmap = false.
// GET LBA STATUS is not available for devices (canReportAllocation = false).
import fs from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { BackstoreCapabilities, IoCallback } from './types';
import { BackstoreError, describeOpenError, formatBytes } from './errors';
import { FdBackstore } from './fd-backstore';
import { checkBlockSize } from './common';
import { native, type NativeOps } from './native';
import { sysBlockInfo } from './sysfs';

export interface OpenBlockOptions {
  readOnly?: boolean;
  /** Logical block size of the LUN; defaults to the device's own, and may not be smaller than it. */
  blockSize?: number;
}

type UnmapMethod = 'zeroes' | 'discard' | null;

class BlockBackstore extends FdBackstore {
  private readonly ops: NativeOps | null;
  private readonly method: UnmapMethod;

  constructor(init: ConstructorParameters<typeof FdBackstore>[0], ops: NativeOps | null, method: UnmapMethod) {
    super(init);
    this.ops = ops;
    this.method = method;
  }

  protected override unmapRange(offset: number, length: number, cb: IoCallback): void {
    const ops = this.ops as NativeOps;
    if (this.method === 'zeroes') ops.punchHole(this.fd, offset, length, cb);
    else ops.discard(this.fd, offset, length, cb);
  }
}

function openFd(path: string, flags: number): Promise<number> {
  return new Promise((res, rej) => fs.open(path, flags, (err, fd) => (err ? rej(err) : res(fd))));
}

export async function openBlockBackstore(path: string, options: OpenBlockOptions = {}): Promise<FdBackstore> {
  const dev = resolve(path);
  const readOnly = options.readOnly ?? false;

  let st: fs.Stats;
  try {
    st = await stat(dev);
  } catch (err) {
    throw describeOpenError(err as NodeJS.ErrnoException, dev, 'block device', 'check its name with `lsblk`');
  }
  if (st.isFile()) {
    throw new BackstoreError('BACKSTORE_WRONG_KIND', `${dev} is an image file, not a block device — export it as file:${dev}.`, { path: dev });
  }
  if (!st.isBlockDevice()) {
    throw new BackstoreError('BACKSTORE_WRONG_KIND', `${dev} is not a block device — give a disk such as /dev/sdb (see \`lsblk\`).`, { path: dev });
  }

  const info = await sysBlockInfo(st.rdev);
  if (info === null) {
    throw new BackstoreError('BACKSTORE_IO', `Cannot read the size of ${dev} from /sys/dev/block — is sysfs mounted?`, { path: dev });
  }
  if (info.sizeBytes === 0) {
    throw new BackstoreError('BACKSTORE_BAD_SIZE', `${dev} has size 0 — insert its medium, or attach a file to the loop device, then try again.`, {
      path: dev,
    });
  }
  const blockSize = options.blockSize ?? info.logicalBlockSize;
  checkBlockSize(blockSize);
  if (blockSize < info.logicalBlockSize) {
    throw new BackstoreError(
      'BACKSTORE_BAD_SIZE',
      `${dev} has ${info.logicalBlockSize}-byte logical blocks; it cannot be exported with ${blockSize}-byte blocks — use ${info.logicalBlockSize}.`,
      { path: dev },
    );
  }
  if (info.sizeBytes % blockSize !== 0) {
    throw new BackstoreError(
      'BACKSTORE_BAD_SIZE',
      `${dev} is ${info.sizeBytes} bytes (${formatBytes(info.sizeBytes)}), not a multiple of ${blockSize}-byte blocks — export it with 512-byte blocks.`,
      { path: dev },
    );
  }
  if (!readOnly && info.readOnly) {
    throw new BackstoreError('BACKSTORE_READ_ONLY', `${dev} is read-only (write-protected, or set read-only with blockdev --setro) — export it read-only.`, {
      path: dev,
    });
  }

  const { O_RDONLY, O_RDWR, O_DSYNC, O_EXCL } = fs.constants;
  let fd: number;
  try {
    fd = await openFd(dev, readOnly ? O_RDONLY : O_RDWR | O_EXCL);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EBUSY') {
      throw new BackstoreError(
        'BACKSTORE_IN_USE',
        `${dev} is in use: it or one of its partitions is mounted, part of RAID/LVM, or already exported — ` +
          `unmount it first (see \`lsblk ${dev}\`), or export it read-only.`,
        { path: dev, cause: e },
      );
    }
    throw describeOpenError(e, dev, 'block device');
  }
  let dsyncFd: number | null = null;
  if (!readOnly) {
    try {
      // Not O_EXCL: the exclusive claim is held by `fd` (a second one would fail with EBUSY).
      dsyncFd = await openFd(dev, O_RDWR | O_DSYNC);
    } catch (err) {
      await new Promise<void>((res) => fs.close(fd, () => res()));
      throw describeOpenError(err as NodeJS.ErrnoException, dev, 'block device');
    }
  }

  let method: UnmapMethod = null;
  if (native !== null && !readOnly) {
    if (info.writeZeroesMaxBytes > 0) method = 'zeroes';
    else if (info.discardMaxBytes > 0) method = 'discard';
  }
  const capabilities: BackstoreCapabilities = {
    canUnmap: method !== null,
    unmapZeroes: method === 'zeroes',
    canFua: true,
    canReportAllocation: false,
    rotational: info.rotational,
  };
  return new BlockBackstore(
    { kind: 'block', description: dev, sizeBytes: info.sizeBytes, blockSize, readOnly, capabilities, fd, dsyncFd },
    method === null ? null : native,
    method,
  );
}
