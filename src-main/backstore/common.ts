// Checks and bookkeeping shared by every backstore: argument checks that
// return an error (never throw on the I/O path), in-flight counting so that
// close() waits for running I/O, and deferral so a callback is never called
// before the method that took it has returned.
import type { AllocationExtent, IoCallback } from './types';
import { BackstoreError } from './errors';

export function outOfRange(what: string, offset: number, length: number, sizeBytes: number, description: string): BackstoreError {
  return new BackstoreError(
    'BACKSTORE_OUT_OF_RANGE',
    `${what} of ${length} bytes at offset ${offset} is outside ${description} (${sizeBytes} bytes)`,
  );
}

/** Null when an I/O of `length` bytes at `offset` between `buf[bufOffset..]` and the backstore is valid. */
export function checkIo(
  buf: Buffer,
  bufOffset: number,
  length: number,
  offset: number,
  sizeBytes: number,
  description: string,
  what: 'read' | 'write',
): BackstoreError | null {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || offset + length > sizeBytes) {
    return outOfRange(what === 'read' ? 'A read' : 'A write', offset, length, sizeBytes, description);
  }
  if (!Number.isSafeInteger(bufOffset) || bufOffset < 0 || bufOffset + length > buf.length) {
    return new BackstoreError(
      'BACKSTORE_OUT_OF_RANGE',
      `A ${what} of ${length} bytes at buffer offset ${bufOffset} does not fit the ${buf.length}-byte buffer`,
    );
  }
  return null;
}

/** Null when [offset, offset+length) is inside the backstore and, if `align`, whole blocks. */
export function checkRange(
  offset: number,
  length: number,
  sizeBytes: number,
  blockSize: number,
  description: string,
  what: string,
  align: boolean,
): BackstoreError | null {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || offset + length > sizeBytes) {
    return outOfRange(what, offset, length, sizeBytes, description);
  }
  if (align && (offset % blockSize !== 0 || length % blockSize !== 0)) {
    return new BackstoreError(
      'BACKSTORE_UNALIGNED',
      `${what} of ${length} bytes at offset ${offset} is not a whole number of ${blockSize}-byte blocks`,
    );
  }
  return null;
}

export function readOnlyError(description: string): BackstoreError {
  return new BackstoreError('BACKSTORE_READ_ONLY', `${description} is exported read-only; writes and unmaps are refused`);
}

export function closedError(description: string): BackstoreError {
  return new BackstoreError('BACKSTORE_CLOSED', `${description} is closed`);
}

export function unsupportedError(description: string, what: string): BackstoreError {
  return new BackstoreError('BACKSTORE_UNSUPPORTED', `${description} cannot ${what} (see its capabilities)`);
}

/** Calls cb(err) on the next tick. */
export function fail(cb: IoCallback, err: NodeJS.ErrnoException | null): void {
  process.nextTick(cb, err);
}

/**
 * Counts I/O in flight so close() can wait for it. `begin()` returns false
 * once closing has started (the caller then fails with closedError).
 */
export class InFlight {
  private count = 0;
  private closeWaiters: Array<() => void> | null = null;

  get closing(): boolean {
    return this.closeWaiters !== null;
  }

  begin(): boolean {
    if (this.closeWaiters !== null) return false;
    this.count++;
    return true;
  }

  end(): void {
    this.count--;
    if (this.count === 0 && this.closeWaiters !== null) {
      const waiters = this.closeWaiters;
      this.closeWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Stops new I/O; calls `drained` once every running I/O has completed. */
  drain(drained: () => void): void {
    if (this.closeWaiters === null) this.closeWaiters = [];
    if (this.count === 0) process.nextTick(drained);
    else this.closeWaiters.push(drained);
  }
}

/** Appends an extent, merging it with the previous one when they touch and agree. */
export function pushExtent(extents: AllocationExtent[], offset: number, length: number, allocated: boolean): void {
  if (length <= 0) return;
  const last = extents[extents.length - 1];
  if (last !== undefined && last.allocated === allocated && last.offset + last.length === offset) {
    last.length += length;
  } else {
    extents.push({ offset, length, allocated });
  }
}

export function checkBlockSize(blockSize: number): void {
  if (blockSize !== 512 && blockSize !== 4096) {
    throw new BackstoreError('BACKSTORE_BAD_SIZE', `A block size of ${blockSize} bytes is not supported — use 512 or 4096.`);
  }
}

export function checkImageSize(sizeBytes: number, blockSize: number, what: string): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) {
    throw new BackstoreError('BACKSTORE_BAD_SIZE', `${what}: the size must be a whole number of bytes greater than zero (got ${sizeBytes}).`);
  }
  if (sizeBytes % blockSize !== 0) {
    const down = Math.floor(sizeBytes / blockSize) * blockSize;
    const up = down + blockSize;
    throw new BackstoreError(
      'BACKSTORE_BAD_SIZE',
      `${what}: ${sizeBytes} bytes is not a multiple of the ${blockSize}-byte block size — use ${down > 0 ? `${down} or ` : ''}${up}.`,
    );
  }
}
