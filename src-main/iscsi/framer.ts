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
 *   - with `placeData`, a PDU spanning chunks whose data segment the
 *     consumer already has a home for (a write's own buffer) has its data
 *     copied straight there, once; only its header is copied apart.
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
  /**
   * Asked, once a PDU's header is complete and checked but its data segment
   * (of `dataLength` > 0 bytes) is still arriving, for a buffer to receive
   * exactly that data — e.g. the slice of a write's buffer a Data-Out will
   * fill. The framer copies the data there as it arrives and delivers the
   * PDU with `data` = that buffer's first `dataLength` bytes; null (or a
   * shorter buffer) means "assemble it as usual". Delivery still happens
   * (or the DataDigest fails) as for any PDU, so the consumer checks the
   * PDU then; the bytes are in its buffer either way. `bhs` is valid only
   * during the call.
   */
  placeData?: (bhs: Buffer, dataLength: number) => Buffer | null;
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
  private readonly placeData: ((bhs: Buffer, dataLength: number) => Buffer | null) | null;

  /** Set after a fatal error or destroy(): input is ignored from then on. */
  private stopped = false;

  /** Scratch for a header that arrives split across chunks; never handed out. */
  private readonly scratch = Buffer.allocUnsafe(MAX_HEADER_LENGTH);
  private scratchLength = 0;

  /** Buffer of one PDU being assembled across chunks, its fill level and the PDU's size. */
  private assembly: Buffer | null = null;
  private assemblyLength = 0;
  private assemblyTotal = 0;

  /**
   * A PDU whose data goes to the consumer's buffer (placeData): its header
   * (copied), where its data goes, how much of it has come, and its tail
   * (padding, DataDigest) gathered apart.
   */
  private placedHeader: Buffer | null = null;
  private placedData: Buffer | null = null;
  private placedLength = 0;
  private placedFill = 0;
  private readonly placedTail = Buffer.allocUnsafe(3 + DIGEST_LENGTH);
  private placedTailLength = 0;
  private placedTailFill = 0;

  /** PDUs handed out as views of a pushed chunk (see chunkViews). */
  private views = 0;

  /** Layout of the PDU in progress (valid while scratch or assembly is in use). */
  private pduHeaderDigest = false;
  private pduDataDigest = false;
  private pduHeaderLength = 0;

  constructor(options: FramerOptions) {
    this.onPdu = options.onPdu;
    this.onError = options.onError;
    this.allocate = options.allocate ?? Buffer.allocUnsafe;
    this.placeData = options.placeData ?? null;
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

  /**
   * How many PDUs so far were delivered as views of a pushed chunk (zero
   * copy). A caller that reads the socket into memory it wants to reuse
   * may do so after push() only when this did not change during the call:
   * everything else (partial headers, assembled and placed PDUs) is copied
   * out of the chunk before push() returns.
   */
  get chunkViews(): number {
    return this.views;
  }

  /** Bytes currently held for an incomplete PDU (bounded; see top of file). */
  get bufferedBytes(): number {
    if (this.placedHeader !== null) return this.placedHeader.length + this.placedFill + this.placedTailFill;
    return this.assembly !== null ? this.assemblyLength : this.scratchLength;
  }

  /** True when no partial PDU is held (a clean cut between PDUs). */
  get idle(): boolean {
    return this.assembly === null && this.scratchLength === 0 && this.placedHeader === null;
  }

  /** Stop framing and drop any partial PDU. */
  destroy(): void {
    this.stopped = true;
    this.assembly = null;
    this.assemblyLength = 0;
    this.scratchLength = 0;
    this.placedHeader = null;
    this.placedData = null;
  }

  /** Feed one chunk from the socket. */
  push(chunk: Buffer): void {
    const n = chunk.length;
    let off = 0;
    while (off < n && !this.stopped) {
      // 0. A PDU whose data goes straight to the consumer's buffer.
      if (this.placedHeader !== null) {
        off = this.continuePlaced(chunk, off);
        continue;
      }

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
        this.views++;
        this.deliver(chunk, off - total);
      } else if (this.placeData !== null && this.startPlaced(chunk, off, total)) {
        off += this.pduHeaderLength;
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

  /**
   * The checked header of a PDU of `total` bytes is at `start` of `src`: ask
   * the consumer for a home for its data. On yes, keep a copy of the header
   * and switch to placing (the caller moves past the header).
   */
  private startPlaced(src: Buffer, start: number, total: number): boolean {
    const headerLength = this.pduHeaderLength;
    const dsl = (src[start + 5] << 16) | (src[start + 6] << 8) | src[start + 7];
    if (dsl === 0) return false;
    const dst = this.guardedPlace(src.subarray(start, start + BHS_LENGTH), dsl);
    if (dst === null || dst.length < dsl) return false;
    const header = this.allocate(headerLength);
    src.copy(header, 0, start, start + headerLength);
    this.placedHeader = header;
    this.placedData = dst;
    this.placedLength = dsl;
    this.placedFill = 0;
    this.placedTailLength = total - headerLength - dsl;
    this.placedTailFill = 0;
    return true;
  }

  private guardedPlace(bhs: Buffer, dsl: number): Buffer | null {
    try {
      return this.placeData!(bhs, dsl);
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  /** Feed a placed PDU from `chunk` at `off`; returns the new offset. */
  private continuePlaced(chunk: Buffer, off: number): number {
    const n = chunk.length;
    if (this.placedFill < this.placedLength) {
      const take = Math.min(this.placedLength - this.placedFill, n - off);
      chunk.copy(this.placedData!, this.placedFill, off, off + take);
      this.placedFill += take;
      off += take;
    }
    if (this.placedFill === this.placedLength && this.placedTailFill < this.placedTailLength) {
      const take = Math.min(this.placedTailLength - this.placedTailFill, n - off);
      chunk.copy(this.placedTail, this.placedTailFill, off, off + take);
      this.placedTailFill += take;
      off += take;
    }
    if (this.placedFill === this.placedLength && this.placedTailFill === this.placedTailLength) this.deliverPlaced();
    return off;
  }

  private deliverPlaced(): void {
    const header = this.placedHeader!;
    const dst = this.placedData!;
    const dsl = this.placedLength;
    const dataDigest = this.pduDataDigest;
    this.placedHeader = null;
    this.placedData = null;
    const ahsLength = header[4] << 2;
    const bhs = header.subarray(0, BHS_LENGTH);
    const ahs = ahsLength === 0 ? EMPTY_BUFFER : header.subarray(BHS_LENGTH, BHS_LENGTH + ahsLength);
    const data = dst.length === dsl ? dst : dst.subarray(0, dsl);
    if (dataDigest) {
      const pad = padLength(dsl);
      let expected = crc32cOf(data);
      if (pad > 0) expected = crc32cOf(this.placedTail.subarray(0, pad), expected);
      const received = this.placedTail.readUInt32LE(pad);
      if (expected !== received) {
        this.guarded(this.onError, new DataDigestError(bhs, expected, received));
        return;
      }
    }
    this.guarded(this.onPdu, { bhs, ahs, data });
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
    if (total > headerLength && this.placeData !== null && this.startPlaced(scratch, 0, total)) return off;
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
