/**
 * Stream framer: cuts a TCP byte stream into iSCSI PDUs (RFC 7143 §11.1–§11.2).
 *
 *   BHS (48) | AHS (TotalAHSLength*4) | HeaderDigest (4)? |
 *   data (DataSegmentLength) | pad to 4 | DataDigest (4, only if data)?
 *
 * Feed it every socket chunk with push(); it calls `onPdu` synchronously for
 * each complete PDU, in order:
 *   - a PDU lying inside one chunk is delivered as subarrays of that chunk
 *     (zero copies);
 *   - a PDU spanning chunks is assembled once into a buffer of its size
 *     (one copy; `allocate` may supply pooled buffers), obtained only after
 *     the header — and its digest — has been checked and DataSegmentLength
 *     is within maxRecvDataSegmentLength. Memory held is therefore bounded
 *     by 1072 bytes + one PDU of at most that size, whatever the peer claims.
 * Delivered buffers are never reused by the framer; they stay valid as long
 * as the caller keeps them.
 *
 * Errors go to `onError`:
 *   - HeaderDigestError, DataSegmentTooLongError: fatal — the framer stops
 *     (push() becomes a no-op) and the caller must close the connection;
 *   - DataDigestError: not fatal — the PDU is dropped, framing continues;
 *     the caller answers with Reject reason 0x02 carrying error.bhs.
 *
 * Digests are off during login and switch on for the Full Feature Phase
 * (§13.1: a negotiated digest is used for every PDU in Full Feature Phase).
 * Set `headerDigest` / `dataDigest` from within onPdu (or any time between
 * PDUs): the next PDU is framed with the new setting, even if its bytes are
 * already in the current chunk.
 */
import { EMPTY_BUFFER, padLength } from './bhs';
import { crc32cOf } from './digest';
import { BHS_LENGTH, DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH, DIGEST_LENGTH, MAX_DATA_SEGMENT_LENGTH, MAX_TOTAL_AHS_LENGTH } from './constants';
import { DataDigestError, DataSegmentTooLongError, HeaderDigestError, type FramingError } from './errors';
import type { RawPdu } from './pdu';

export type { RawPdu } from './pdu';

export interface FramerOptions {
  /** Called synchronously, in stream order, for each complete PDU. */
  onPdu: (pdu: RawPdu) => void;
  /** Called for framing faults; `error.fatal` says whether to drop the connection. */
  onError: (error: FramingError) => void;
  /** Our declared MaxRecvDataSegmentLength; larger segments are a protocol error. Default 8192. */
  maxRecvDataSegmentLength?: number;
  /** Expect a CRC32C HeaderDigest after BHS+AHS. Default false (login). */
  headerDigest?: boolean;
  /** Expect a CRC32C DataDigest after each non-empty, padded data segment. Default false. */
  dataDigest?: boolean;
  /**
   * Buffer source for PDUs that span chunks (default Buffer.allocUnsafe).
   * Supply a pool here to recycle large Data-Out buffers (SPEC §6). Sizes
   * range from 48 bytes to a whole PDU; the buffer must have at least
   * `size` bytes, and stays in use until the consumer is done with the PDU.
   */
  allocate?: (size: number) => Buffer;
}

/** Largest header we ever gather byte by byte: BHS + max AHS + HeaderDigest. */
const MAX_HEADER_LENGTH = BHS_LENGTH + MAX_TOTAL_AHS_LENGTH + DIGEST_LENGTH;

export class PduFramer {
  /** HeaderDigest=CRC32C in effect for the next PDU. */
  headerDigest: boolean;
  /** DataDigest=CRC32C in effect for the next PDU. */
  dataDigest: boolean;

  private maxDsl: number;
  private readonly onPdu: (pdu: RawPdu) => void;
  private readonly onError: (error: FramingError) => void;
  private readonly allocate: (size: number) => Buffer;

  /** Set after a fatal error or destroy(): input is ignored from then on. */
  private stopped = false;

  /** Scratch for a header that arrives split across chunks; never handed out. */
  private readonly scratch = Buffer.allocUnsafe(MAX_HEADER_LENGTH);
  private scratchLength = 0;

  /** Buffer of one PDU being assembled across chunks, its fill level and the PDU's size. */
  private assembly: Buffer | null = null;
  private assemblyLength = 0;
  private assemblyTotal = 0;

  /** Layout of the PDU in progress (valid while scratch or assembly is in use). */
  private pduHeaderDigest = false;
  private pduDataDigest = false;
  private pduHeaderLength = 0;

  constructor(options: FramerOptions) {
    this.onPdu = options.onPdu;
    this.onError = options.onError;
    this.allocate = options.allocate ?? Buffer.allocUnsafe;
    this.headerDigest = options.headerDigest ?? false;
    this.dataDigest = options.dataDigest ?? false;
    this.maxDsl = DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH;
    this.maxRecvDataSegmentLength = options.maxRecvDataSegmentLength ?? DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH;
  }

  /** Our MaxRecvDataSegmentLength; raise it once the negotiated value applies. */
  get maxRecvDataSegmentLength(): number {
    return this.maxDsl;
  }
  set maxRecvDataSegmentLength(value: number) {
    if (!Number.isInteger(value) || value < 0 || value > MAX_DATA_SEGMENT_LENGTH) {
      throw new RangeError(`MaxRecvDataSegmentLength ${value} is outside 0..${MAX_DATA_SEGMENT_LENGTH}`);
    }
    this.maxDsl = value;
  }

  /** Switch digests, e.g. when the Full Feature Phase starts. */
  setDigests(headerDigest: boolean, dataDigest: boolean): void {
    this.headerDigest = headerDigest;
    this.dataDigest = dataDigest;
  }

  /** True once a fatal error occurred or destroy() was called. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** Bytes currently held for an incomplete PDU (bounded; see top of file). */
  get bufferedBytes(): number {
    return this.assembly !== null ? this.assemblyLength : this.scratchLength;
  }

  /** True when no partial PDU is held (a clean cut between PDUs). */
  get idle(): boolean {
    return this.assembly === null && this.scratchLength === 0;
  }

  /** Stop framing and drop any partial PDU. */
  destroy(): void {
    this.stopped = true;
    this.assembly = null;
    this.assemblyLength = 0;
    this.scratchLength = 0;
  }

  /** Feed one chunk from the socket. */
  push(chunk: Buffer): void {
    const n = chunk.length;
    let off = 0;
    while (off < n && !this.stopped) {
      // 1. Finishing a PDU that spans chunks: copy straight into its buffer.
      if (this.assembly !== null) {
        const asm = this.assembly;
        const take = Math.min(this.assemblyTotal - this.assemblyLength, n - off);
        chunk.copy(asm, this.assemblyLength, off, off + take);
        this.assemblyLength += take;
        off += take;
        if (this.assemblyLength === this.assemblyTotal) {
          this.assembly = null;
          this.assemblyLength = 0;
          this.deliver(asm, 0);
        }
        continue;
      }

      // 2. A header split across chunks: gather it in the scratch buffer.
      if (this.scratchLength > 0) {
        off = this.gatherHeader(chunk, off);
        continue;
      }

      // 3. At a PDU boundary: frame in place when the chunk holds enough.
      this.pduHeaderDigest = this.headerDigest;
      this.pduDataDigest = this.dataDigest;
      const avail = n - off;
      if (avail >= BHS_LENGTH) this.pduHeaderLength = this.headerLength(chunk, off);
      if (avail < BHS_LENGTH || avail < this.pduHeaderLength) {
        chunk.copy(this.scratch, 0, off, n);
        this.scratchLength = avail;
        off = n;
        continue;
      }
      const total = this.checkHeader(chunk, off);
      if (total < 0) return;
      if (avail >= total) {
        off += total;
        this.deliver(chunk, off - total);
      } else {
        const asm = this.allocAssembly(total);
        chunk.copy(asm, 0, off, n);
        this.assembly = asm;
        this.assemblyLength = avail;
        off = n;
      }
    }
  }

  private allocAssembly(total: number): Buffer {
    const buf = this.allocate(total);
    if (buf.length < total) {
      this.destroy();
      throw new RangeError(`allocate(${total}) returned only ${buf.length} bytes`);
    }
    this.assemblyTotal = total;
    return buf;
  }

  /** BHS + AHS + HeaderDigest length of the PDU whose BHS starts at `start`. */
  private headerLength(buf: Buffer, start: number): number {
    return BHS_LENGTH + (buf[start + 4] << 2) + (this.pduHeaderDigest ? DIGEST_LENGTH : 0);
  }

  /** Continue gathering a split header from `chunk` at `off`; returns the new offset. */
  private gatherHeader(chunk: Buffer, off: number): number {
    const scratch = this.scratch;
    let want = this.scratchLength < BHS_LENGTH ? BHS_LENGTH : this.pduHeaderLength;
    for (;;) {
      const take = Math.min(want - this.scratchLength, chunk.length - off);
      chunk.copy(scratch, this.scratchLength, off, off + take);
      this.scratchLength += take;
      off += take;
      if (this.scratchLength < want) return off;
      if (want === BHS_LENGTH) {
        this.pduHeaderLength = this.headerLength(scratch, 0);
        if (this.pduHeaderLength > BHS_LENGTH) {
          want = this.pduHeaderLength;
          continue;
        }
      }
      break;
    }
    // Whole header in scratch: validate, then move it into the PDU's own buffer.
    const headerLength = this.pduHeaderLength;
    const total = this.checkHeader(scratch, 0);
    this.scratchLength = 0;
    if (total < 0) return chunk.length;
    const asm = this.allocAssembly(total);
    scratch.copy(asm, 0, 0, headerLength);
    if (total === headerLength) {
      this.deliver(asm, 0);
    } else {
      this.assembly = asm;
      this.assemblyLength = headerLength;
    }
    return off;
  }

  /**
   * Check the complete header at `start` (digest first, since the lengths it
   * carries are only trustworthy once it matches; then DataSegmentLength).
   * Returns the PDU's total wire length, or -1 after reporting a fatal error.
   */
  private checkHeader(buf: Buffer, start: number): number {
    const ahsLength = buf[start + 4] << 2;
    const headerEnd = start + BHS_LENGTH + ahsLength;
    if (this.pduHeaderDigest) {
      const expected = crc32cOf(buf.subarray(start, headerEnd));
      const received = buf.readUInt32LE(headerEnd);
      if (expected !== received) {
        this.fail(new HeaderDigestError(expected, received));
        return -1;
      }
    }
    const dsl = (buf[start + 5] << 16) | (buf[start + 6] << 8) | buf[start + 7];
    if (dsl > this.maxDsl) {
      this.fail(new DataSegmentTooLongError(Buffer.from(buf.subarray(start, start + BHS_LENGTH)), dsl, this.maxDsl));
      return -1;
    }
    if (dsl === 0) return this.pduHeaderLength;
    return this.pduHeaderLength + dsl + padLength(dsl) + (this.pduDataDigest ? DIGEST_LENGTH : 0);
  }

  /** Hand out the complete PDU at `start` of `buf` (views only), after the DataDigest check. */
  private deliver(buf: Buffer, start: number): void {
    const ahsLength = buf[start + 4] << 2;
    const dsl = (buf[start + 5] << 16) | (buf[start + 6] << 8) | buf[start + 7];
    const bhs = buf.subarray(start, start + BHS_LENGTH);
    const ahs = ahsLength === 0 ? EMPTY_BUFFER : buf.subarray(start + BHS_LENGTH, start + BHS_LENGTH + ahsLength);
    let data = EMPTY_BUFFER;
    if (dsl !== 0) {
      const dataStart = start + this.pduHeaderLength;
      data = buf.subarray(dataStart, dataStart + dsl);
      if (this.pduDataDigest) {
        // The digest covers the padding bytes as sent (§13.1).
        const paddedEnd = dataStart + dsl + padLength(dsl);
        const expected = crc32cOf(buf.subarray(dataStart, paddedEnd));
        const received = buf.readUInt32LE(paddedEnd);
        if (expected !== received) {
          this.guarded(this.onError, new DataDigestError(bhs, expected, received));
          return;
        }
      }
    }
    this.guarded(this.onPdu, { bhs, ahs, data });
  }

  /**
   * Run a user callback. If it throws, framing stops (rather than silently
   * losing the rest of the chunk) and the exception propagates to push()'s caller.
   */
  private guarded<T>(fn: (arg: T) => void, arg: T): void {
    try {
      fn(arg);
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  private fail(error: FramingError): void {
    this.destroy();
    this.onError(error);
  }
}
