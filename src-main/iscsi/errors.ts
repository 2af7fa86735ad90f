/**
 * Error types of the PDU codec and framer. Every error has a stable `code`
 * and says what the connection should do about it:
 *   - `fatal: true`  — the byte stream can no longer be trusted: close the
 *                      connection (the only recovery at ErrorRecoveryLevel 0).
 *   - `fatal: false` — framing is intact: answer with a Reject PDU carrying
 *                      `rejectReason` and the offending header, keep going.
 */
import { RejectReason } from './constants';

export type PduFormatErrorCode =
  /** parseX() was handed a PDU with another opcode. */
  | 'WRONG_OPCODE'
  /** A field holds a value the RFC forbids (e.g. Data-In S=1 with F=0). */
  | 'INVALID_FIELD'
  /** The AHS chain is truncated or malformed (§11.2.2). */
  | 'INVALID_AHS'
  /** A data segment is shorter than its own inner lengths say. */
  | 'INVALID_DATA_SEGMENT';

/** A whole PDU arrived but its content violates the PDU layout. Not fatal by itself. */
export class PduFormatError extends Error {
  override readonly name = 'PduFormatError';
  readonly fatal = false;
  constructor(
    readonly code: PduFormatErrorCode,
    message: string,
    readonly rejectReason: number = RejectReason.INVALID_PDU_FIELD,
  ) {
    super(message);
  }
}

export type FramingErrorCode =
  /** HeaderDigest mismatch: lengths cannot be trusted, drop the connection. */
  | 'HEADER_DIGEST_ERROR'
  /** DataDigest mismatch: Reject with reason 0x02 and keep the connection. */
  | 'DATA_DIGEST_ERROR'
  /** DataSegmentLength exceeds our MaxRecvDataSegmentLength: protocol error. */
  | 'DATA_SEGMENT_TOO_LONG';

/** Base class of everything the framer reports. */
export abstract class FramingError extends Error {
  abstract readonly code: FramingErrorCode;
  /** True when the connection must be closed. */
  abstract readonly fatal: boolean;
}

/** Bad HeaderDigest (§13.1): the PDU boundaries are lost; close the connection. */
export class HeaderDigestError extends FramingError {
  override readonly name = 'HeaderDigestError';
  readonly code = 'HEADER_DIGEST_ERROR' as const;
  readonly fatal = true;
  constructor(
    readonly expected: number,
    readonly received: number,
  ) {
    super(
      `iSCSI header digest mismatch (computed 0x${expected.toString(16)}, received 0x${received.toString(16)}); the connection must be dropped`,
    );
  }
}

/**
 * Bad DataDigest (§13.1). The header was good, so the framer has already
 * skipped the PDU and continues with the next one. Answer with a Reject PDU
 * (reason `rejectReason` = 0x02, data = `bhs`) — or, for a Data-Out, you may
 * instead re-request the data with a recovery R2T (ErrorRecoveryLevel ≥ 1).
 */
export class DataDigestError extends FramingError {
  override readonly name = 'DataDigestError';
  readonly code = 'DATA_DIGEST_ERROR' as const;
  readonly fatal = false;
  readonly rejectReason = RejectReason.DATA_DIGEST_ERROR;
  constructor(
    /** The 48-byte BHS of the discarded PDU (not reused by the framer). */
    readonly bhs: Buffer,
    readonly expected: number,
    readonly received: number,
  ) {
    super(
      `iSCSI data digest mismatch (computed 0x${expected.toString(16)}, received 0x${received.toString(16)}); PDU discarded`,
    );
  }
}

/**
 * The peer announced a data segment longer than our MaxRecvDataSegmentLength
 * (§13.12): a protocol error. The framer stops before buffering any of it.
 */
export class DataSegmentTooLongError extends FramingError {
  override readonly name = 'DataSegmentTooLongError';
  readonly code = 'DATA_SEGMENT_TOO_LONG' as const;
  readonly fatal = true;
  readonly rejectReason = RejectReason.PROTOCOL_ERROR;
  constructor(
    /** The 48-byte BHS that announced it (for a Reject before closing, if wanted). */
    readonly bhs: Buffer,
    readonly dataSegmentLength: number,
    readonly maxRecvDataSegmentLength: number,
  ) {
    super(
      `iSCSI DataSegmentLength ${dataSegmentLength} exceeds MaxRecvDataSegmentLength ${maxRecvDataSegmentLength}`,
    );
  }
}
