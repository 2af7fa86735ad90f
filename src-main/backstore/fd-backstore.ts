// I/O on a file descriptor, shared by the file and block backstores:
// fs.read/fs.write (libuv thread pool) with completion callbacks, no promise
// per I/O. FUA writes go through a second descriptor opened with O_DSYNC —
// measured faster here than write + fdatasync (one thread-pool hop instead
// of two; see native/fua-bench.mjs). flush() is fdatasync.
//
// Small I/O skips the thread pool when it cannot block (docs/benchmarks.md:
// the pool round trip was about half of the main thread's time at 4 KiB):
//   - a read of at most SYNC_IO_MAX bytes is first tried with the addon's
//     preadNowait (preadv2 RWF_NOWAIT), which copies from the page cache and
//     answers EAGAIN instead of waiting for the disk; what it could not get
//     goes through the thread pool as before. Without the addon every read
//     takes the thread pool.
//   - a non-FUA write of at most SYNC_IO_MAX bytes covering whole pages
//     (nothing to read back first) is a synchronous pwrite into the page
//     cache. Linux has no RWF_NOWAIT for buffered writes on ext4 (EOPNOTSUPP),
//     so instead a synchronous write that takes longer than
//     SLOW_SYNC_WRITE_MS (dirty-page throttling, a slow file system) sends
//     writes back to the thread pool for a while: SYNC_WRITE_BACKOFF_MIN_MS
//     at first, twice as long each time the first write tried after a
//     backoff is slow again, up to SYNC_WRITE_BACKOFF_MS. One slow write on
//     a busy machine is usually the thread being preempted, not the kernel
//     waiting; a backoff of a whole second for it (as before) sent writes
//     through the thread pool, which costs the main thread more than the
//     write itself (≈ 14 µs to hand a 4 KiB write to a worker here, against
//     ≈ 8 µs for the synchronous write).
// Completion is still asynchronous (process.nextTick), as the Backstore
// interface promises. SPINDLE_SYNC_IO=off turns both off, =reads keeps only
// the reads (for comparisons).
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { AllocationExtent, Backstore, BackstoreCapabilities, IoCallback } from './types';
import { BackstoreError } from './errors';
import { checkIo, checkRange, closedError, fail, InFlight, readOnlyError, unsupportedError } from './common';
import { native, type PreadNowait } from './native';

/** Largest read or write tried on the main thread (see the top of the file). */
export const SYNC_IO_MAX = 64 << 10;
/** A synchronous write slower than this sends writes to the thread pool for a while. */
export const SLOW_SYNC_WRITE_MS = 1;
/** Backoff after one slow synchronous write, doubled while they stay slow, up to SYNC_WRITE_BACKOFF_MS. */
export const SYNC_WRITE_BACKOFF_MIN_MS = 10;
export const SYNC_WRITE_BACKOFF_MS = 1000;
/** Synchronous writes must cover whole pages of this size (no read-modify-write in the kernel). */
const PAGE_SIZE = 4096;
const EAGAIN = 11;

const syncIoSetting = process.env.SPINDLE_SYNC_IO;
const syncReadsOn = syncIoSetting !== 'off';
const syncWritesOn = syncIoSetting !== 'off' && syncIoSetting !== 'reads';

export interface FdBackstoreInit {
  kind: 'file' | 'block';
  description: string;
  sizeBytes: number;
  blockSize: number;
  readOnly: boolean;
  capabilities: BackstoreCapabilities;
  /** Opened O_RDWR, or O_RDONLY for a read-only backstore. */
  fd: number;
  /** Same file opened O_RDWR | O_DSYNC, for FUA writes; null when read-only. */
  dsyncFd: number | null;
}

type AllocationCallback = (err: NodeJS.ErrnoException | null, extents?: AllocationExtent[]) => void;

function readAll(fd: number, buf: Buffer, bufOffset: number, length: number, position: number, cb: IoCallback): void {
  fs.read(fd, buf, bufOffset, length, position, (err, n) => {
    if (err) return cb(err);
    if (n === length) return cb(null);
    if (n === 0) {
      return cb(new BackstoreError('BACKSTORE_IO', `Unexpected end of data at offset ${position}: the file or device shrank while in use`));
    }
    readAll(fd, buf, bufOffset + n, length - n, position + n, cb);
  });
}

function writeAll(fd: number, buf: Buffer, bufOffset: number, length: number, position: number, cb: IoCallback): void {
  fs.write(fd, buf, bufOffset, length, position, (err, n) => {
    if (err) return cb(err);
    if (n === length) return cb(null);
    if (n === 0) return cb(new BackstoreError('BACKSTORE_IO', `A write at offset ${position} made no progress`));
    writeAll(fd, buf, bufOffset + n, length - n, position + n, cb);
  });
}

export abstract class FdBackstore implements Backstore {
  readonly kind: 'file' | 'block';
  readonly description: string;
  readonly sizeBytes: number;
  readonly blockSize: number;
  readonly readOnly: boolean;
  readonly capabilities: BackstoreCapabilities;
  protected readonly fd: number;
  private readonly dsyncFd: number | null;
  private readonly inFlight = new InFlight();
  private closed = false;
  /** preadv2(RWF_NOWAIT) for small reads; null without the addon or once the descriptor refuses it. */
  private preadNowait: PreadNowait | null = syncReadsOn ? (native?.preadNowait ?? null) : null;
  /** Small page-aligned writes go straight to the page cache (until SLOW_SYNC_WRITE_MS says otherwise). */
  private syncWrites = syncWritesOn;
  /** performance.now() before which writes take the thread pool (after a slow synchronous one). */
  private syncWritesAfter = 0;
  /** The current backoff (ms): 0 after a fast synchronous write. */
  private syncWriteBackoff = 0;

  constructor(init: FdBackstoreInit) {
    this.kind = init.kind;
    this.description = init.description;
    this.sizeBytes = init.sizeBytes;
    this.blockSize = init.blockSize;
    this.readOnly = init.readOnly;
    this.capabilities = Object.freeze({ ...init.capabilities });
    this.fd = init.fd;
    this.dsyncFd = init.dsyncFd;
  }

  /** Wraps `cb` so the in-flight count drops before it runs. */
  private done(cb: IoCallback): IoCallback {
    return (err) => {
      this.inFlight.end();
      cb(err);
    };
  }

  read(buf: Buffer, bufOffset: number, length: number, offset: number, cb: IoCallback): void {
    const bad = checkIo(buf, bufOffset, length, offset, this.sizeBytes, this.description, 'read');
    if (bad) return fail(cb, bad);
    if (!this.inFlight.begin()) return fail(cb, closedError(this.description));
    if (length === 0) return fail(this.done(cb), null);
    const nowait = this.preadNowait;
    if (nowait !== null && length <= SYNC_IO_MAX) {
      const n = nowait(this.fd, buf, bufOffset, length, offset);
      if (n === length) {
        this.inFlight.end();
        process.nextTick(cb, null);
        return;
      }
      if (n > 0) return readAll(this.fd, buf, bufOffset + n, length - n, offset + n, this.done(cb));
      // EAGAIN: not cached (the thread pool waits for the disk). 0 (end of file): readAll reports it.
      // Anything else: this descriptor cannot do it (e.g. EOPNOTSUPP) — stop trying.
      if (n < 0 && n !== -EAGAIN) this.preadNowait = null;
    }
    readAll(this.fd, buf, bufOffset, length, offset, this.done(cb));
  }

  /** A synchronous pwrite into the page cache; false when the write must take the thread pool instead. */
  private writeNow(buf: Buffer, bufOffset: number, length: number, offset: number, cb: IoCallback): boolean {
    const t0 = performance.now();
    if (t0 < this.syncWritesAfter) return false;
    let n: number;
    try {
      n = fs.writeSync(this.fd, buf, bufOffset, length, offset);
    } catch (err) {
      this.inFlight.end();
      process.nextTick(cb, err as NodeJS.ErrnoException);
      return true;
    }
    const t1 = performance.now();
    if (t1 - t0 > SLOW_SYNC_WRITE_MS) {
      const backoff = this.syncWriteBackoff === 0 ? SYNC_WRITE_BACKOFF_MIN_MS : Math.min(this.syncWriteBackoff * 2, SYNC_WRITE_BACKOFF_MS);
      this.syncWriteBackoff = backoff;
      this.syncWritesAfter = t1 + backoff;
    } else if (this.syncWriteBackoff !== 0) {
      this.syncWriteBackoff = 0;
    }
    if (n === length) {
      this.inFlight.end();
      process.nextTick(cb, null);
    } else {
      writeAll(this.fd, buf, bufOffset + n, length - n, offset + n, this.done(cb));
    }
    return true;
  }

  write(buf: Buffer, bufOffset: number, length: number, offset: number, fua: boolean, cb: IoCallback): void {
    if (this.readOnly) return fail(cb, readOnlyError(this.description));
    const bad = checkIo(buf, bufOffset, length, offset, this.sizeBytes, this.description, 'write');
    if (bad) return fail(cb, bad);
    if (!this.inFlight.begin()) return fail(cb, closedError(this.description));
    if (length === 0) return fail(this.done(cb), null);
    if (!fua) {
      if (this.syncWrites && length <= SYNC_IO_MAX && offset % PAGE_SIZE === 0 && length % PAGE_SIZE === 0 && this.writeNow(buf, bufOffset, length, offset, cb)) return;
      return writeAll(this.fd, buf, bufOffset, length, offset, this.done(cb));
    }
    if (this.dsyncFd !== null) return writeAll(this.dsyncFd, buf, bufOffset, length, offset, this.done(cb));
    // No O_DSYNC descriptor (not expected for a writable backstore): write, then fdatasync.
    const done = this.done(cb);
    writeAll(this.fd, buf, bufOffset, length, offset, (err) => (err ? done(err) : fs.fdatasync(this.fd, done)));
  }

  flush(cb: IoCallback): void {
    if (!this.inFlight.begin()) return fail(cb, closedError(this.description));
    if (this.readOnly) return fail(this.done(cb), null);
    fs.fdatasync(this.fd, this.done(cb));
  }

  unmap(offset: number, length: number, cb: IoCallback): void {
    if (this.readOnly) return fail(cb, readOnlyError(this.description));
    if (!this.capabilities.canUnmap) return fail(cb, unsupportedError(this.description, 'unmap'));
    const bad = checkRange(offset, length, this.sizeBytes, this.blockSize, this.description, 'An unmap', true);
    if (bad) return fail(cb, bad);
    if (!this.inFlight.begin()) return fail(cb, closedError(this.description));
    if (length === 0) return fail(this.done(cb), null);
    this.unmapRange(offset, length, this.done(cb));
  }

  allocation(offset: number, length: number, cb: AllocationCallback): void {
    if (!this.capabilities.canReportAllocation) {
      return process.nextTick(cb, unsupportedError(this.description, 'report allocation'));
    }
    const bad = checkRange(offset, length, this.sizeBytes, this.blockSize, this.description, 'An allocation query', false);
    if (bad) return process.nextTick(cb, bad);
    if (!this.inFlight.begin()) return process.nextTick(cb, closedError(this.description));
    if (length === 0) {
      this.inFlight.end();
      return process.nextTick(cb, null, []);
    }
    this.allocationMap(offset, length, (err, extents) => {
      this.inFlight.end();
      if (err) cb(err);
      else cb(null, extents);
    });
  }

  close(cb: IoCallback): void {
    if (this.closed) return fail(cb, null);
    this.inFlight.drain(() => {
      if (this.closed) return cb(null);
      this.closed = true;
      fs.close(this.fd, (err1) => {
        if (this.dsyncFd === null) return cb(err1);
        fs.close(this.dsyncFd, (err2) => cb(err1 ?? err2));
      });
    });
  }

  /** Deallocates [offset, offset+length): checked, in range, whole blocks, length > 0. */
  protected abstract unmapRange(offset: number, length: number, cb: IoCallback): void;

  /** Extents covering a prefix (at least one extent) of [offset, offset+length), length > 0. */
  protected allocationMap(_offset: number, _length: number, cb: AllocationCallback): void {
    process.nextTick(cb, unsupportedError(this.description, 'report allocation'));
  }
}
