// Sparse image file backstore. UNMAP punches holes (fallocate PUNCH_HOLE |
// KEEP_SIZE) and GET LBA STATUS walks SEEK_DATA/SEEK_HOLE, both through the
// native addon; without it those capabilities are reported as absent.
//
// Exclusive use of an image (two LUNs on one file) is the service's job:
// Node has no flock, and a lock here would not stop other programs anyway.
import fs from 'node:fs';
import { open, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { AllocationExtent, BackstoreCapabilities, IoCallback } from './types';
import { BackstoreError, describeOpenError, formatBytes } from './errors';
import { FdBackstore } from './fd-backstore';
import { checkBlockSize, checkImageSize, pushExtent } from './common';
import { native, type NativeOps } from './native';
import { sysBlockInfo } from './sysfs';

/** The smallest unit of every image size; LUN block sizes are 512 or 4096. */
export const SECTOR = 512;

/** GET LBA STATUS walks at most this many extents per call; the caller asks again from where it ended. */
const MAX_EXTENTS_PER_QUERY = 1024;

export interface CreateImageOptions {
  /**
   * true (the default): sparse, blocks are allocated as the initiator writes;
   * the image may be larger than the free space (a warning is returned).
   * false: thick, the space is reserved now and must be free now.
   */
  thin?: boolean;
  /** The image size must be a multiple of this (default 512). */
  blockSize?: number;
}

export interface CreatedImage {
  path: string;
  sizeBytes: number;
  thin: boolean;
  /** Set when a thin image is larger than the free space of its volume. */
  warning: string | null;
}

export interface OpenFileOptions {
  readOnly?: boolean;
  /** Logical block size of the LUN: 512 (default) or 4096. */
  blockSize?: number;
}

/** The mount point holding `dir`: the highest ancestor on the same device. */
async function mountPointOf(dir: string): Promise<string> {
  let current = dir;
  const dev = (await stat(current)).dev;
  for (;;) {
    const parent = dirname(current);
    if (parent === current) return current;
    try {
      if ((await stat(parent)).dev !== dev) return current;
    } catch {
      return current;
    }
    current = parent;
  }
}

/**
 * Creates a new image file of `sizeBytes`. Never overwrites: an existing file
 * is refused with BACKSTORE_EXISTS. Thin (default) images are sparse
 * (ftruncate); thick ones are preallocated and need the space to be free.
 */
export async function createImage(path: string, sizeBytes: number, options: CreateImageOptions = {}): Promise<CreatedImage> {
  const thin = options.thin ?? true;
  const blockSize = options.blockSize ?? SECTOR;
  const file = resolve(path);
  checkBlockSize(blockSize);
  checkImageSize(sizeBytes, blockSize, `Cannot create ${file}`);

  const dir = dirname(file);
  let dirStat: fs.Stats;
  try {
    dirStat = await stat(dir);
  } catch (err) {
    throw describeOpenError(err as NodeJS.ErrnoException, dir, 'folder', 'create it first, or choose another place for the image');
  }
  if (!dirStat.isDirectory()) {
    throw new BackstoreError('BACKSTORE_WRONG_KIND', `Cannot create ${file}: ${dir} is not a folder.`, { path: dir });
  }

  // Free space for unprivileged users (bavail); null when the file system does not say.
  const free = await statfs(dir).then(
    (s) => s.bavail * s.bsize,
    () => null,
  );
  let warning: string | null = null;
  if (free !== null && sizeBytes > free) {
    const volume = await mountPointOf(dir);
    const shortfall = `only ${formatBytes(free)} free on ${volume}, the image needs ${formatBytes(sizeBytes)}`;
    if (!thin) {
      throw new BackstoreError(
        'BACKSTORE_NO_SPACE',
        `Cannot create ${file}: ${shortfall} — free some space, choose a smaller size or another volume, ` +
          `or create a thin image instead (sparse files grow as written).`,
        { path: file },
      );
    }
    warning =
      `${file}: ${shortfall} — the thin image is created, but writes to the LUN will fail once ${volume} is full ` +
      `(sparse files grow as written). Free some space or choose a smaller size to be safe.`;
  }

  let handle: FileHandle;
  try {
    // 'wx': O_CREAT | O_EXCL — refuses atomically if the file exists.
    handle = await open(file, 'wx', 0o600);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EEXIST') {
      throw new BackstoreError(
        'BACKSTORE_EXISTS',
        `${file} already exists and Spindle never overwrites an image — use it as it is (file:${file} without a size), ` +
          `or choose another name. The file was not changed.`,
        { path: file, cause: e },
      );
    }
    throw describeOpenError(e, file, 'image file');
  }

  try {
    await handle.truncate(sizeBytes);
    if (!thin) await preallocate(handle.fd, sizeBytes, native);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(file).catch(() => undefined);
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOSPC') {
      throw new BackstoreError('BACKSTORE_NO_SPACE', `Cannot create ${file}: the volume ran out of space — free some space or choose a smaller size.`, {
        path: file,
        cause: e,
      });
    }
    if (e.code === 'EFBIG') {
      throw new BackstoreError(
        'BACKSTORE_BAD_SIZE',
        `Cannot create ${file}: its volume's file system cannot hold a file of ${formatBytes(sizeBytes)} ` +
          `(FAT32 stops at 4 GiB, ext4 at 16 TiB) — choose a smaller size or another volume.`,
        { path: file, cause: e },
      );
    }
    throw new BackstoreError('BACKSTORE_IO', `Cannot create ${file}: ${e.message}`, { path: file, cause: e });
  }
  await handle.close();
  await syncDir(dir);
  return { path: file, sizeBytes, thin, warning };
}

function preallocate(fd: number, sizeBytes: number, ops: NativeOps | null): Promise<void> {
  if (ops !== null) {
    return new Promise((res, rej) => ops.allocate(fd, 0, sizeBytes, (err) => (err ? rej(err) : res())));
  }
  // Without fallocate: write zeros (slow, but it reserves the blocks just the same).
  return new Promise((res, rej) => {
    const chunk = Buffer.alloc(Math.min(8 << 20, sizeBytes));
    const step = (pos: number): void => {
      if (pos >= sizeBytes) return res();
      const n = Math.min(chunk.length, sizeBytes - pos);
      fs.write(fd, chunk, 0, n, pos, (err, written) => (err ? rej(err) : step(pos + written)));
    };
    step(0);
  });
}

async function syncDir(dir: string): Promise<void> {
  // Makes the new directory entry durable; best effort (not every file system allows it).
  try {
    const h = await open(dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    // ignore
  }
}

function openFd(path: string, flags: number): Promise<number> {
  return new Promise((res, rej) => fs.open(path, flags, (err, fd) => (err ? rej(err) : res(fd))));
}

function closeFd(fd: number): Promise<void> {
  return new Promise((res) => fs.close(fd, () => res()));
}

function probe(run: (cb: (err: NodeJS.ErrnoException | null) => void) => void): Promise<boolean> {
  return new Promise((res) => run((err) => res(err === null)));
}

class FileBackstore extends FdBackstore {
  private readonly ops: NativeOps | null;

  constructor(init: ConstructorParameters<typeof FdBackstore>[0], ops: NativeOps | null) {
    super(init);
    this.ops = ops;
  }

  protected override unmapRange(offset: number, length: number, cb: IoCallback): void {
    // canUnmap is only true when ops is set.
    (this.ops as NativeOps).punchHole(this.fd, offset, length, cb);
  }

  protected override allocationMap(
    offset: number,
    length: number,
    cb: (err: NodeJS.ErrnoException | null, extents?: AllocationExtent[]) => void,
  ): void {
    const ops = this.ops as NativeOps;
    const end = offset + length;
    const bs = this.blockSize;
    const extents: AllocationExtent[] = [];
    const step = (pos: number): void => {
      if (pos >= end || extents.length >= MAX_EXTENTS_PER_QUERY) return cb(null, extents);
      ops.seekData(this.fd, pos, (err, data) => {
        if (err) return cb(err);
        if (data < 0 || data >= end) {
          pushExtent(extents, pos, end - pos, false);
          return cb(null, extents);
        }
        // Whole blocks: a block with any data in it counts as allocated.
        const dataStart = Math.max(pos, Math.floor(data / bs) * bs);
        pushExtent(extents, pos, dataStart - pos, false);
        ops.seekHole(this.fd, dataStart, (err2, hole) => {
          if (err2) return cb(err2);
          let dataEnd = Math.min(end, hole < 0 ? end : Math.ceil(hole / bs) * bs);
          if (dataEnd <= dataStart) dataEnd = Math.min(end, dataStart + bs);
          pushExtent(extents, dataStart, dataEnd - dataStart, true);
          step(dataEnd);
        });
      });
    };
    step(offset);
  }
}

/**
 * Opens an existing image file as a backstore. The file must be a regular
 * file whose size is a multiple of the block size.
 */
export async function openFileBackstore(path: string, options: OpenFileOptions = {}): Promise<FdBackstore> {
  const file = resolve(path);
  const readOnly = options.readOnly ?? false;
  const blockSize = options.blockSize ?? SECTOR;
  checkBlockSize(blockSize);

  let st: fs.Stats;
  try {
    st = await stat(file);
  } catch (err) {
    throw describeOpenError(err as NodeJS.ErrnoException, file, 'image file', `check the path, or create it with file:${file}:SIZE (e.g. file:${file}:20GiB)`);
  }
  if (st.isBlockDevice()) {
    throw new BackstoreError('BACKSTORE_WRONG_KIND', `${file} is a block device, not an image file — export it as block:${file}.`, { path: file });
  }
  if (st.isDirectory()) {
    throw new BackstoreError('BACKSTORE_WRONG_KIND', `${file} is a folder — give the path of the image file itself.`, { path: file });
  }
  if (!st.isFile()) {
    throw new BackstoreError('BACKSTORE_WRONG_KIND', `${file} is not a regular file — an image must be an ordinary file (not a pipe, socket or character device).`, {
      path: file,
    });
  }
  if (st.size === 0) {
    throw new BackstoreError('BACKSTORE_BAD_SIZE', `${file} is empty — give it a size (truncate -s 20G ${file}) or create a new image with file:PATH:SIZE.`, {
      path: file,
    });
  }
  if (st.size % blockSize !== 0) {
    const up = Math.ceil(st.size / blockSize) * blockSize;
    throw new BackstoreError(
      'BACKSTORE_BAD_SIZE',
      `${file} is ${st.size} bytes, not a multiple of the ${blockSize}-byte block size — it is probably not a disk image; ` +
        `if it is, pad it with \`truncate -s ${up} ${file}\`.`,
      { path: file },
    );
  }

  const { O_RDONLY, O_RDWR, O_DSYNC } = fs.constants;
  let fd: number;
  try {
    fd = await openFd(file, readOnly ? O_RDONLY : O_RDWR);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (!readOnly && (e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS')) {
      throw new BackstoreError(
        e.code === 'EROFS' ? 'BACKSTORE_READ_ONLY' : 'BACKSTORE_ACCESS_DENIED',
        `${file} cannot be opened for writing (${e.code}) — export it read-only, or give Spindle write permission on it.`,
        { path: file, cause: e },
      );
    }
    throw describeOpenError(e, file, 'image file');
  }
  let dsyncFd: number | null = null;
  try {
    if (!readOnly) dsyncFd = await openFd(file, O_RDWR | O_DSYNC);
  } catch (err) {
    await closeFd(fd);
    throw describeOpenError(err as NodeJS.ErrnoException, file, 'image file');
  }

  const ops = native;
  // Punching past the end with KEEP_SIZE touches no data: it only tells
  // whether this file system can punch holes at all (vfat cannot).
  const canUnmap = ops !== null && !readOnly && (await probe((cb) => ops.punchHole(fd, st.size, blockSize, cb)));
  const canReportAllocation = ops !== null && (await probe((cb) => ops.seekData(fd, 0, (err) => cb(err))));
  const volume = await sysBlockInfo(st.dev).catch(() => null);

  const capabilities: BackstoreCapabilities = {
    canUnmap,
    // Holes (punched or never written) read back as zeros.
    unmapZeroes: true,
    canFua: true,
    canReportAllocation,
    rotational: volume?.rotational ?? false,
  };
  return new FileBackstore(
    { kind: 'file', description: file, sizeBytes: st.size, blockSize, readOnly, capabilities, fd, dsyncFd },
    canUnmap || canReportAllocation ? ops : null,
  );
}
