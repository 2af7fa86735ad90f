/**
 * Size-class pool for Data-In buffers and WRITE Data-Out buffers. READs at
 * QD 32 would otherwise allocate (and later collect) a fresh multi-KiB
 * buffer per command, and 1 MiB WRITEs a megabyte each; here a buffer of the
 * next power of two is taken from a free list and given back once the
 * connection layer has sent it (reads) or the write has completed (writes).
 *
 * Classes run from 4 KiB to 16 MiB. Each class keeps at most a few free
 * buffers and the pool as a whole keeps at most `maxRetainedBytes`, so an
 * idle target holds little. Buffers bigger than the largest class are
 * allocated plainly and not pooled.
 */

const MIN_SHIFT = 12; // 4 KiB
const MAX_SHIFT = 24; // 16 MiB

export interface BufferPoolOptions {
  /** Free bytes the pool may hold (default 24 MiB: QD 8 of 1 MiB reads and writes, with room; SPEC §6 memory goal). */
  maxRetainedBytes?: number;
  /** Free buffers kept per size class (default 32). */
  maxPerClass?: number;
}

export class BufferPool {
  private readonly free: Buffer[][] = [];
  private retained = 0;
  private readonly maxRetainedBytes: number;
  private readonly maxPerClass: number;

  constructor(options: BufferPoolOptions = {}) {
    this.maxRetainedBytes = options.maxRetainedBytes ?? 24 << 20;
    this.maxPerClass = options.maxPerClass ?? 32;
    for (let s = MIN_SHIFT; s <= MAX_SHIFT; s++) this.free.push([]);
  }

  /** Bytes currently held in free lists. */
  get retainedBytes(): number {
    return this.retained;
  }

  private static classOf(size: number): number {
    if (size <= 1 << MIN_SHIFT) return 0;
    return 32 - Math.clz32(size - 1) - MIN_SHIFT;
  }

  /**
   * A buffer of at least `size` bytes (its contents are stale — callers
   * overwrite it). Use `subarray(0, size)` for the payload and hand the
   * buffer itself back to `release`.
   */
  acquire(size: number): Buffer {
    const cls = BufferPool.classOf(size);
    if (cls >= this.free.length) return Buffer.allocUnsafeSlow(size);
    const list = this.free[cls];
    const buf = list.pop();
    if (buf !== undefined) {
      this.retained -= buf.length;
      return buf;
    }
    return Buffer.allocUnsafeSlow(1 << (cls + MIN_SHIFT));
  }

  /** Gives back a buffer from `acquire`. Anything else is ignored. */
  release(buf: Buffer): void {
    const len = buf.length;
    if (len < 1 << MIN_SHIFT || (len & (len - 1)) !== 0 || buf.byteOffset !== 0 || buf.buffer.byteLength !== len) return;
    const cls = BufferPool.classOf(len);
    if (cls >= this.free.length) return;
    const list = this.free[cls];
    if (list.length >= this.maxPerClass || this.retained + len > this.maxRetainedBytes) return;
    list.push(buf);
    this.retained += len;
  }

  /** Drops every free buffer. */
  trim(): void {
    for (const list of this.free) list.length = 0;
    this.retained = 0;
  }
}

/** The pool the SCSI layer uses unless given another. */
export const defaultBufferPool = new BufferPool();
