/**
 * In-place accessors over the 48-byte Basic Header Segment (RFC 7143 §11.2.1).
 *
 * Nothing here allocates: every reader takes the BHS Buffer (usually a
 * subarray of a socket chunk) and reads the field at its fixed offset. The
 * connection state machine can peek at an opcode, ITT or CmdSN without a full
 * parse; the per-family modules (scsi-command.ts, data.ts, ...) build on it.
 *
 *   Byte 0      : .|I| Opcode (6 bits)
 *   Byte 1      : F | opcode-specific
 *   Bytes 2-3   : opcode-specific
 *   Byte 4      : TotalAHSLength (4-byte words)
 *   Bytes 5-7   : DataSegmentLength (bytes, excluding padding)
 *   Bytes 8-15  : LUN or opcode-specific
 *   Bytes 16-19 : Initiator Task Tag
 *   Bytes 20-47 : opcode-specific
 */
import { BHS_LENGTH, IMMEDIATE_BIT, MAX_DATA_SEGMENT_LENGTH, OPCODE_MASK, Flag, Opcode, opcodeName } from './constants';
import { PduFormatError } from './errors';

/** Fixed byte offsets of BHS fields, named as in the RFC figures. */
export const BhsOffset = {
  OPCODE: 0,
  FLAGS: 1,
  TOTAL_AHS_LENGTH: 4,
  DATA_SEGMENT_LENGTH: 5,
  LUN: 8,
  ISID: 8,
  TSIH: 14,
  ITT: 16,
  // Bytes 20-23
  TTT: 20,
  EXPECTED_DATA_TRANSFER_LENGTH: 20,
  REFERENCED_TASK_TAG: 20,
  SNACK_TAG: 20,
  CID: 20,
  // Bytes 24-27
  CMD_SN: 24,
  STAT_SN: 24,
  // Bytes 28-31
  EXP_STAT_SN: 28,
  EXP_CMD_SN: 28,
  // Bytes 32-35
  MAX_CMD_SN: 32,
  REF_CMD_SN: 32,
  CDB: 32,
  // Bytes 36-39
  DATA_SN: 36,
  R2T_SN: 36,
  EXP_DATA_SN: 36,
  STATUS_CLASS: 36,
  STATUS_DETAIL: 37,
  ASYNC_EVENT: 36,
  ASYNC_VCODE: 37,
  PARAMETER1: 38,
  // Bytes 40-43
  BUFFER_OFFSET: 40,
  BIDIRECTIONAL_READ_RESIDUAL_COUNT: 40,
  BEG_RUN: 40,
  TIME2WAIT: 40,
  PARAMETER2: 40,
  TIME2RETAIN: 42,
  PARAMETER3: 42,
  // Bytes 44-47
  RESIDUAL_COUNT: 44,
  DESIRED_DATA_TRANSFER_LENGTH: 44,
  RUN_LENGTH: 44,
} as const;

/** A shared zero-length Buffer for PDUs without AHS or data. Never write to it. */
export const EMPTY_BUFFER: Buffer = Buffer.alloc(0);

// ---------------------------------------------------------------------------
// Common fields
// ---------------------------------------------------------------------------

export function readOpcode(bhs: Buffer): number {
  return bhs[0] & OPCODE_MASK;
}

/** I bit: immediate delivery (initiator PDUs only). */
export function readImmediate(bhs: Buffer): boolean {
  return (bhs[0] & IMMEDIATE_BIT) !== 0;
}

/** F bit (also T in Login PDUs). */
export function readFinal(bhs: Buffer): boolean {
  return (bhs[1] & Flag.F) !== 0;
}

/** TotalAHSLength as sent: a count of 4-byte words (§11.2.1.5). */
export function readTotalAHSLength(bhs: Buffer): number {
  return bhs[4];
}

/** AHS length in bytes (TotalAHSLength * 4), at most 1020. */
export function readAhsByteLength(bhs: Buffer): number {
  return bhs[4] << 2;
}

/** DataSegmentLength: 24-bit payload length excluding padding (§11.2.1.6). */
export function readDataSegmentLength(bhs: Buffer): number {
  return (bhs[5] << 16) | (bhs[6] << 8) | bhs[7];
}

export function writeDataSegmentLength(bhs: Buffer, length: number): void {
  if (!(length >= 0 && length <= MAX_DATA_SEGMENT_LENGTH) || !Number.isInteger(length)) {
    throw new RangeError(`DataSegmentLength ${length} does not fit 24 bits`);
  }
  bhs[5] = length >>> 16;
  bhs[6] = (length >>> 8) & 0xff;
  bhs[7] = length & 0xff;
}

export function writeTotalAHSLength(bhs: Buffer, ahsBytes: number): void {
  if ((ahsBytes & 3) !== 0 || ahsBytes < 0 || ahsBytes > 255 * 4) {
    throw new RangeError(`AHS length ${ahsBytes} is not a multiple of 4 up to 1020`);
  }
  bhs[4] = ahsBytes >>> 2;
}

/** Initiator Task Tag (§11.2.1.8). */
export function readITT(bhs: Buffer): number {
  return bhs.readUInt32BE(BhsOffset.ITT);
}
export function writeITT(bhs: Buffer, itt: number): void {
  bhs.writeUInt32BE(itt >>> 0, BhsOffset.ITT);
}

/** Target Transfer Tag (bytes 20-23 of Data-Out/In, R2T, NOP, Text). */
export function readTTT(bhs: Buffer): number {
  return bhs.readUInt32BE(BhsOffset.TTT);
}

/** CmdSN of an initiator PDU (bytes 24-27). */
export function readCmdSN(bhs: Buffer): number {
  return bhs.readUInt32BE(BhsOffset.CMD_SN);
}
/** ExpStatSN of an initiator PDU (bytes 28-31). */
export function readExpStatSN(bhs: Buffer): number {
  return bhs.readUInt32BE(BhsOffset.EXP_STAT_SN);
}
/** StatSN of a target PDU (bytes 24-27). */
export function readStatSN(bhs: Buffer): number {
  return bhs.readUInt32BE(BhsOffset.STAT_SN);
}
/** ExpCmdSN of a target PDU (bytes 28-31). */
export function readExpCmdSN(bhs: Buffer): number {
  return bhs.readUInt32BE(BhsOffset.EXP_CMD_SN);
}
/** MaxCmdSN of a target PDU (bytes 32-35). */
export function readMaxCmdSN(bhs: Buffer): number {
  return bhs.readUInt32BE(BhsOffset.MAX_CMD_SN);
}
/** DataSN / R2TSN / ExpDataSN (bytes 36-39). */
export function readDataSN(bhs: Buffer): number {
  return bhs.readUInt32BE(BhsOffset.DATA_SN);
}
/** Buffer Offset of Data-Out / Data-In / R2T (bytes 40-43). */
export function readBufferOffset(bhs: Buffer): number {
  return bhs.readUInt32BE(BhsOffset.BUFFER_OFFSET);
}

// ---------------------------------------------------------------------------
// LUN (§11.2.1.7; format from SAM-5 "logical unit numbers")
// ---------------------------------------------------------------------------

/** Largest LUN encodable with single-level flat addressing (14 bits). */
export const MAX_LUN = 0x3fff;
/** decodeLun() result for LUN fields that are not a single-level peripheral/flat LUN. */
export const LUN_UNSUPPORTED = -1;

/**
 * Write `lun` (0..16383) as an 8-byte single-level SAM LUN at `offset`:
 * peripheral device addressing (method 00b, bus 0) below 256, flat space
 * addressing (method 01b) above — the same choice Linux and libiscsi make.
 */
export function encodeLun(lun: number, out: Buffer = Buffer.alloc(8), offset = 0): Buffer {
  if (!Number.isInteger(lun) || lun < 0 || lun > MAX_LUN) {
    throw new RangeError(`LUN ${lun} is outside 0..${MAX_LUN}`);
  }
  if (lun < 256) {
    out[offset] = 0x00;
    out[offset + 1] = lun;
  } else {
    out[offset] = 0x40 | (lun >>> 8);
    out[offset + 1] = lun & 0xff;
  }
  out.writeUInt16BE(0, offset + 2);
  out.writeUInt32BE(0, offset + 4);
  return out;
}

/**
 * Read the 8-byte LUN at `offset`. Returns 0..16383 for single-level
 * peripheral (bus 0) or flat addressing, LUN_UNSUPPORTED (-1) for anything
 * else (other buses, logical unit / extended addressing, multi-level LUNs).
 */
export function decodeLun(buf: Buffer, offset = 0): number {
  // Second to fourth levels must be empty for a single-level LUN.
  if (buf.readUInt32BE(offset + 4) !== 0 || buf[offset + 2] !== 0 || buf[offset + 3] !== 0) {
    return LUN_UNSUPPORTED;
  }
  const b0 = buf[offset];
  const method = b0 >>> 6;
  if (method === 0) return (b0 & 0x3f) === 0 ? buf[offset + 1] : LUN_UNSUPPORTED;
  if (method === 1) return ((b0 & 0x3f) << 8) | buf[offset + 1];
  return LUN_UNSUPPORTED;
}

/** The BHS LUN field decoded (see decodeLun). */
export function readLun(bhs: Buffer): number {
  return decodeLun(bhs, BhsOffset.LUN);
}

/** The raw 64-bit BHS LUN field, for addressing methods decodeLun does not cover. */
export function readLunRaw(bhs: Buffer): bigint {
  return bhs.readBigUInt64BE(BhsOffset.LUN);
}

// ---------------------------------------------------------------------------
// Helpers shared by the encoders / parsers
// ---------------------------------------------------------------------------

/**
 * Zero the 48 header bytes of `out` and write opcode, I bit, byte 1 flags and
 * DataSegmentLength: the common prologue of every encoder. Reserved fields
 * must be 0 when sent, hence the fill.
 */
export function beginBhs(
  out: Buffer,
  opcode: number,
  immediate: boolean,
  flags: number,
  dataSegmentLength: number,
): Buffer {
  if (out.length < BHS_LENGTH) throw new RangeError(`BHS buffer must be ${BHS_LENGTH} bytes, got ${out.length}`);
  out.fill(0, 0, BHS_LENGTH);
  out[0] = opcode | (immediate ? IMMEDIATE_BIT : 0);
  out[1] = flags;
  writeDataSegmentLength(out, dataSegmentLength);
  return out;
}

/** Allocate a header buffer for an encoder when the caller gave none (pooled, no zeroing). */
export function allocBhs(): Buffer {
  return Buffer.allocUnsafe(BHS_LENGTH);
}

/** Throw PduFormatError unless `bhs` is a BHS with `opcode`. */
export function expectOpcode(bhs: Buffer, opcode: Opcode): void {
  if (bhs.length < BHS_LENGTH) {
    throw new PduFormatError('INVALID_FIELD', `BHS is ${bhs.length} bytes, expected ${BHS_LENGTH}`);
  }
  const actual = bhs[0] & OPCODE_MASK;
  if (actual !== opcode) {
    throw new PduFormatError('WRONG_OPCODE', `expected ${opcodeName(opcode)} PDU, got ${opcodeName(actual)}`);
  }
}

/** Bytes of zero padding after a segment of `length` bytes (§11.1). */
export function padLength(length: number): number {
  return (4 - (length & 3)) & 3;
}

/** PADDING[n] is n zero bytes (n = 0..3), shared and never written to. */
export const PADDING: readonly Buffer[] = [EMPTY_BUFFER, Buffer.alloc(1), Buffer.alloc(2), Buffer.alloc(3)];
