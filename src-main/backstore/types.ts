// What a LUN is stored on. One small interface, capability flags in the
// spirit of nbdkit's can_trim / can_fua; the SCSI layer asks, never guesses.

export interface BackstoreCapabilities {
  /** UNMAP / WRITE SAME with UNMAP deallocate (punch holes). */
  canUnmap: boolean;
  /** Deallocated blocks read back as zeros (LBPRZ). */
  unmapZeroes: boolean;
  /** Writes can be made durable individually (FUA) — else the caller flushes. */
  canFua: boolean;
  /** Can report which ranges are allocated (GET LBA STATUS). */
  canReportAllocation: boolean;
  /** Rotational media (VPD B1 MEDIUM ROTATION RATE). */
  rotational: boolean;
}

export interface AllocationExtent {
  offset: number;
  length: number;
  allocated: boolean;
}

/** Completion callback: no per-I/O promise on the hot path. */
export type IoCallback = (err: NodeJS.ErrnoException | null) => void;

export interface Backstore {
  readonly kind: 'file' | 'block' | 'memory';
  /** Human-readable origin, e.g. the file path. */
  readonly description: string;
  readonly sizeBytes: number;
  /** Logical block size in bytes (512 or 4096). */
  readonly blockSize: number;
  readonly readOnly: boolean;
  readonly capabilities: BackstoreCapabilities;

  /** Reads `length` bytes at `offset` into `buf` starting at `bufOffset`. */
  read(buf: Buffer, bufOffset: number, length: number, offset: number, cb: IoCallback): void;
  /** Writes; with `fua` the data is durable before `cb` is called. */
  write(buf: Buffer, bufOffset: number, length: number, offset: number, fua: boolean, cb: IoCallback): void;
  /** Makes every completed write durable (fdatasync). */
  flush(cb: IoCallback): void;
  /** Deallocates a range (only when capabilities.canUnmap). */
  unmap(offset: number, length: number, cb: IoCallback): void;
  /** Allocation status from `offset` (only when canReportAllocation). */
  allocation(offset: number, length: number, cb: (err: NodeJS.ErrnoException | null, extents?: AllocationExtent[]) => void): void;
  close(cb: IoCallback): void;
}
