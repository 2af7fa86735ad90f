// Memory backstore, for tests and `--lun N=memory:SIZE`. Sparse by chunks:
// a chunk (1 MiB by default) is allocated on its first write, so a 10 GiB
// memory LUN costs only what has been written. Unallocated chunks read as
// zeros, unmap frees the chunks it covers whole (and zeroes partial ones),
// and allocation() reports allocated chunks. Nothing survives close().
import type { AllocationExtent, Backstore, BackstoreCapabilities, IoCallback } from './types';
import { BackstoreError, formatBytes } from './errors';
import { checkBlockSize, checkImageSize, checkIo, checkRange, closedError, pushExtent, readOnlyError } from './common';

export interface MemoryOptions {
  /** Logical block size: 512 (default) or 4096. */
  blockSize?: number;
  readOnly?: boolean;
  /** Allocation unit in bytes (default 1 MiB); a multiple of the block size. */
  chunkSize?: number;
}

export const DEFAULT_CHUNK_SIZE = 1 << 20;

class MemoryBackstore implements Backstore {
  readonly kind = 'memory' as const;
  readonly description: string;
  readonly sizeBytes: number;
  readonly blockSize: number;
  readonly readOnly: boolean;
  readonly capabilities: BackstoreCapabilities = Object.freeze({
    canUnmap: true,
    unmapZeroes: true,
    // Nothing is more durable than the moment the write returns.
    canFua: true,
    canReportAllocation: true,
    rotational: false,
  });
  private readonly chunkSize: number;
  private chunks: Map<number, Buffer> | null = new Map();

  constructor(sizeBytes: number, blockSize: number, readOnly: boolean, chunkSize: number) {
    this.sizeBytes = sizeBytes;
    this.blockSize = blockSize;
    this.readOnly = readOnly;
    this.chunkSize = chunkSize;
    this.description = `memory (${formatBytes(sizeBytes)})`;
  }

  /** Bytes of memory held by allocated chunks. */
  get allocatedBytes(): number {
    let n = 0;
    for (const c of this.chunks?.values() ?? []) n += c.length;
    return n;
  }

  private chunkLength(index: number): number {
    return Math.min(this.chunkSize, this.sizeBytes - index * this.chunkSize);
  }

  read(buf: Buffer, bufOffset: number, length: number, offset: number, cb: IoCallback): void {
    const chunks = this.chunks;
    if (chunks === null) return process.nextTick(cb, closedError(this.description));
    const bad = checkIo(buf, bufOffset, length, offset, this.sizeBytes, this.description, 'read');
    if (bad) return process.nextTick(cb, bad);
    let pos = offset;
    let at = bufOffset;
    const end = offset + length;
    while (pos < end) {
      const index = Math.floor(pos / this.chunkSize);
      const within = pos - index * this.chunkSize;
      const n = Math.min(end - pos, this.chunkSize - within);
      const chunk = chunks.get(index);
      if (chunk === undefined) buf.fill(0, at, at + n);
      else chunk.copy(buf, at, within, within + n);
      pos += n;
      at += n;
    }
    process.nextTick(cb, null);
  }

  write(buf: Buffer, bufOffset: number, length: number, offset: number, _fua: boolean, cb: IoCallback): void {
    const chunks = this.chunks;
    if (chunks === null) return process.nextTick(cb, closedError(this.description));
    if (this.readOnly) return process.nextTick(cb, readOnlyError(this.description));
    const bad = checkIo(buf, bufOffset, length, offset, this.sizeBytes, this.description, 'write');
    if (bad) return process.nextTick(cb, bad);
    let pos = offset;
    let at = bufOffset;
    const end = offset + length;
    while (pos < end) {
      const index = Math.floor(pos / this.chunkSize);
      const within = pos - index * this.chunkSize;
      const n = Math.min(end - pos, this.chunkSize - within);
      let chunk = chunks.get(index);
      if (chunk === undefined) {
        // Zero-filled; large allocations are mmap'd, so untouched pages cost nothing either.
        chunk = Buffer.alloc(this.chunkLength(index));
        chunks.set(index, chunk);
      }
      buf.copy(chunk, within, at, at + n);
      pos += n;
      at += n;
    }
    process.nextTick(cb, null);
  }

  flush(cb: IoCallback): void {
    process.nextTick(cb, this.chunks === null ? closedError(this.description) : null);
  }

  unmap(offset: number, length: number, cb: IoCallback): void {
    const chunks = this.chunks;
    if (chunks === null) return process.nextTick(cb, closedError(this.description));
    if (this.readOnly) return process.nextTick(cb, readOnlyError(this.description));
    const bad = checkRange(offset, length, this.sizeBytes, this.blockSize, this.description, 'An unmap', true);
    if (bad) return process.nextTick(cb, bad);
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const index = Math.floor(pos / this.chunkSize);
      const within = pos - index * this.chunkSize;
      const n = Math.min(end - pos, this.chunkSize - within);
      const chunk = chunks.get(index);
      if (chunk !== undefined) {
        if (within === 0 && n === chunk.length) chunks.delete(index);
        else chunk.fill(0, within, within + n);
      }
      pos += n;
    }
    process.nextTick(cb, null);
  }

  allocation(offset: number, length: number, cb: (err: NodeJS.ErrnoException | null, extents?: AllocationExtent[]) => void): void {
    const chunks = this.chunks;
    if (chunks === null) return process.nextTick(cb, closedError(this.description));
    const bad = checkRange(offset, length, this.sizeBytes, this.blockSize, this.description, 'An allocation query', false);
    if (bad) return process.nextTick(cb, bad);
    const extents: AllocationExtent[] = [];
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const index = Math.floor(pos / this.chunkSize);
      const next = Math.min(end, (index + 1) * this.chunkSize);
      pushExtent(extents, pos, next - pos, chunks.has(index));
      pos = next;
    }
    process.nextTick(cb, null, extents);
  }

  close(cb: IoCallback): void {
    this.chunks = null;
    process.nextTick(cb, null);
  }
}

export function createMemoryBackstore(sizeBytes: number, options: MemoryOptions = {}): Backstore & { readonly allocatedBytes: number } {
  const blockSize = options.blockSize ?? 512;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  checkBlockSize(blockSize);
  checkImageSize(sizeBytes, blockSize, 'Memory LUN');
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0 || chunkSize % blockSize !== 0) {
    throw new BackstoreError('BACKSTORE_BAD_SIZE', `Memory LUN: the chunk size ${chunkSize} must be a positive multiple of the ${blockSize}-byte block size.`);
  }
  return new MemoryBackstore(sizeBytes, blockSize, options.readOnly ?? false, chunkSize);
}
