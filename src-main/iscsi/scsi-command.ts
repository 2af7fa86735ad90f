/**
 * SCSI Command (opcode 0x01, RFC 7143 §11.3) and SCSI Response (0x21, §11.4).
 *
 * Parsed objects alias the buffers they were parsed from (`cdb` is a view of
 * the BHS, `data` is the data segment as handed in); nothing is copied unless
 * an Extended CDB AHS forces the CDB to be reassembled.
 */
import {
  BhsOffset,
  EMPTY_BUFFER,
  allocBhs,
  beginBhs,
  decodeLun,
  encodeLun,
  expectOpcode,
  padLength,
  writeTotalAHSLength,
} from './bhs';
import { ATTR_MASK, AhsType, Flag, Opcode } from './constants';
import { PduFormatError } from './errors';

/** Bytes of CDB carried in the BHS; longer CDBs continue in an Extended CDB AHS. */
export const BHS_CDB_LENGTH = 16;

// ---------------------------------------------------------------------------
// SCSI Command
// ---------------------------------------------------------------------------

export interface ScsiCommand {
  opcode: typeof Opcode.SCSI_COMMAND;
  immediate: boolean;
  /** F: no unsolicited Data-Out PDUs follow (the immediate data, if any, is all). */
  final: boolean;
  /** R: Data-In expected. */
  read: boolean;
  /** W: Data-Out expected. */
  write: boolean;
  /** ATTR, see TaskAttribute. */
  taskAttribute: number;
  /** Decoded LUN, or LUN_UNSUPPORTED (-1). */
  lun: number;
  itt: number;
  expectedDataTransferLength: number;
  cmdSN: number;
  expStatSN: number;
  /** The CDB: 16 bytes from the BHS (trailing bytes zero for short CDBs), longer with an Extended CDB AHS. */
  cdb: Buffer;
  /** From the Bidirectional Read Expected Data Transfer Length AHS (R and W set), else 0. */
  bidirectionalReadExpectedDataTransferLength: number;
  /** Immediate data. */
  data: Buffer;
}
export type ScsiCommandFields = Omit<ScsiCommand, 'opcode'>;

/**
 * Parse a SCSI Command. `ahs` is the PDU's AHS (framer output); it is only
 * consulted when TotalAHSLength is non-zero.
 */
export function parseScsiCommand(bhs: Buffer, data: Buffer = EMPTY_BUFFER, ahs: Buffer = EMPTY_BUFFER): ScsiCommand {
  expectOpcode(bhs, Opcode.SCSI_COMMAND);
  const b1 = bhs[1];
  let cdb = bhs.subarray(BhsOffset.CDB, BhsOffset.CDB + BHS_CDB_LENGTH);
  let bidiReadLength = 0;
  if (ahs.length !== 0) {
    const extra = parseCommandAhs(ahs);
    if (extra.extendedCdb !== undefined) cdb = Buffer.concat([cdb, extra.extendedCdb]);
    bidiReadLength = extra.bidirectionalReadExpectedDataTransferLength;
  }
  return {
    opcode: Opcode.SCSI_COMMAND,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (b1 & Flag.F) !== 0,
    read: (b1 & Flag.R) !== 0,
    write: (b1 & Flag.W) !== 0,
    taskAttribute: b1 & ATTR_MASK,
    lun: decodeLun(bhs, BhsOffset.LUN),
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    expectedDataTransferLength: bhs.readUInt32BE(BhsOffset.EXPECTED_DATA_TRANSFER_LENGTH),
    cmdSN: bhs.readUInt32BE(BhsOffset.CMD_SN),
    expStatSN: bhs.readUInt32BE(BhsOffset.EXP_STAT_SN),
    cdb,
    bidirectionalReadExpectedDataTransferLength: bidiReadLength,
    data,
  };
}

/**
 * Walk an AHS chain (§11.2.2): each AHS is AHSLength (2 bytes, counting from
 * the AHS-specific byte on), AHSType (1 byte), then AHSLength bytes, padded
 * to 4. Unknown types are skipped.
 */
export function parseCommandAhs(ahs: Buffer): { extendedCdb: Buffer | undefined; bidirectionalReadExpectedDataTransferLength: number } {
  let extendedCdb: Buffer | undefined;
  let bidi = 0;
  let off = 0;
  while (off < ahs.length) {
    if (ahs.length - off < 4) throw new PduFormatError('INVALID_AHS', `truncated AHS header at offset ${off}`);
    const ahsLength = ahs.readUInt16BE(off);
    const type = ahs[off + 2];
    const end = off + 3 + ahsLength;
    if (end > ahs.length) throw new PduFormatError('INVALID_AHS', `AHS at offset ${off} overruns TotalAHSLength`);
    if (type === AhsType.EXTENDED_CDB) {
      // §11.2.2.3: AHSLength = CDB length - 15 (one reserved byte, then CDB bytes 16..).
      if (ahsLength < 2) throw new PduFormatError('INVALID_AHS', 'empty Extended CDB AHS');
      extendedCdb = ahs.subarray(off + 4, end);
    } else if (type === AhsType.BIDIRECTIONAL_READ_EXPECTED_DATA_LENGTH) {
      // §11.2.2.4: fixed AHSLength 5 (reserved byte + 4-byte length).
      if (ahsLength !== 5) throw new PduFormatError('INVALID_AHS', `Bidirectional AHS length ${ahsLength}, expected 5`);
      bidi = ahs.readUInt32BE(off + 4);
    }
    off = end + padLength(end - off);
  }
  return { extendedCdb, bidirectionalReadExpectedDataTransferLength: bidi };
}

/** AHS bytes encodeScsiCommandAhs() will produce for `cmd` (0 for CDB ≤ 16 and no bidi). */
export function scsiCommandAhsLength(cmd: Pick<ScsiCommandFields, 'cdb' | 'read' | 'write'>): number {
  let n = 0;
  if (cmd.cdb.length > BHS_CDB_LENGTH) {
    const ext = 3 + 1 + (cmd.cdb.length - BHS_CDB_LENGTH);
    n += ext + padLength(ext);
  }
  if (cmd.read && cmd.write) n += 8;
  return n;
}

/**
 * The AHS for `cmd`: an Extended CDB AHS for CDBs over 16 bytes and a
 * Bidirectional Read Expected Data Transfer Length AHS when R and W are both
 * set. EMPTY_BUFFER when neither applies (the usual case).
 */
export function encodeScsiCommandAhs(cmd: ScsiCommandFields): Buffer {
  const total = scsiCommandAhsLength(cmd);
  if (total === 0) return EMPTY_BUFFER;
  const out = Buffer.alloc(total);
  let off = 0;
  if (cmd.cdb.length > BHS_CDB_LENGTH) {
    const extBytes = cmd.cdb.length - BHS_CDB_LENGTH;
    out.writeUInt16BE(extBytes + 1, off);
    out[off + 2] = AhsType.EXTENDED_CDB;
    cmd.cdb.copy(out, off + 4, BHS_CDB_LENGTH);
    const len = 4 + extBytes;
    off += len + padLength(len);
  }
  if (cmd.read && cmd.write) {
    out.writeUInt16BE(5, off);
    out[off + 2] = AhsType.BIDIRECTIONAL_READ_EXPECTED_DATA_LENGTH;
    out.writeUInt32BE(cmd.bidirectionalReadExpectedDataTransferLength >>> 0, off + 4);
  }
  return out;
}

/**
 * Encode the BHS of a SCSI Command. TotalAHSLength is set to match
 * encodeScsiCommandAhs(cmd), which the caller sends as the AHS when non-empty.
 */
export function encodeScsiCommand(cmd: ScsiCommandFields, out: Buffer = allocBhs()): Buffer {
  let flags = cmd.taskAttribute & ATTR_MASK;
  if (cmd.final) flags |= Flag.F;
  if (cmd.read) flags |= Flag.R;
  if (cmd.write) flags |= Flag.W;
  beginBhs(out, Opcode.SCSI_COMMAND, cmd.immediate, flags, cmd.data.length);
  writeTotalAHSLength(out, scsiCommandAhsLength(cmd));
  encodeLun(cmd.lun, out, BhsOffset.LUN);
  out.writeUInt32BE(cmd.itt >>> 0, BhsOffset.ITT);
  out.writeUInt32BE(cmd.expectedDataTransferLength >>> 0, BhsOffset.EXPECTED_DATA_TRANSFER_LENGTH);
  out.writeUInt32BE(cmd.cmdSN >>> 0, BhsOffset.CMD_SN);
  out.writeUInt32BE(cmd.expStatSN >>> 0, BhsOffset.EXP_STAT_SN);
  cmd.cdb.copy(out, BhsOffset.CDB, 0, Math.min(cmd.cdb.length, BHS_CDB_LENGTH));
  return out;
}

// ---------------------------------------------------------------------------
// SCSI Response
// ---------------------------------------------------------------------------

export interface ScsiResponse {
  opcode: typeof Opcode.SCSI_RESPONSE;
  /** o: bidirectional read residual overflow. */
  bidirectionalReadResidualOverflow: boolean;
  /** u: bidirectional read residual underflow. */
  bidirectionalReadResidualUnderflow: boolean;
  /** O: residual overflow (ResidualCount = bytes not transferred). */
  residualOverflow: boolean;
  /** U: residual underflow. */
  residualUnderflow: boolean;
  /** Response, see ScsiResponseCode. */
  response: number;
  /** Status, see ScsiStatus (valid only when response is 0). */
  status: number;
  itt: number;
  snackTag: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  expDataSN: number;
  bidirectionalReadResidualCount: number;
  residualCount: number;
  /** SenseLength + Sense Data + Response Data (see splitSenseData / encodeSenseData). */
  data: Buffer;
}
export type ScsiResponseFields = Omit<ScsiResponse, 'opcode'>;

export function parseScsiResponse(bhs: Buffer, data: Buffer = EMPTY_BUFFER): ScsiResponse {
  expectOpcode(bhs, Opcode.SCSI_RESPONSE);
  const b1 = bhs[1];
  return {
    opcode: Opcode.SCSI_RESPONSE,
    bidirectionalReadResidualOverflow: (b1 & Flag.BIDI_O) !== 0,
    bidirectionalReadResidualUnderflow: (b1 & Flag.BIDI_U) !== 0,
    residualOverflow: (b1 & Flag.O) !== 0,
    residualUnderflow: (b1 & Flag.U) !== 0,
    response: bhs[2],
    status: bhs[3],
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    snackTag: bhs.readUInt32BE(BhsOffset.SNACK_TAG),
    statSN: bhs.readUInt32BE(BhsOffset.STAT_SN),
    expCmdSN: bhs.readUInt32BE(BhsOffset.EXP_CMD_SN),
    maxCmdSN: bhs.readUInt32BE(BhsOffset.MAX_CMD_SN),
    expDataSN: bhs.readUInt32BE(BhsOffset.EXP_DATA_SN),
    bidirectionalReadResidualCount: bhs.readUInt32BE(BhsOffset.BIDIRECTIONAL_READ_RESIDUAL_COUNT),
    residualCount: bhs.readUInt32BE(BhsOffset.RESIDUAL_COUNT),
    data,
  };
}

export function encodeScsiResponse(rsp: ScsiResponseFields, out: Buffer = allocBhs()): Buffer {
  if (rsp.residualOverflow && rsp.residualUnderflow) {
    throw new RangeError('SCSI Response: O and U bits are mutually exclusive');
  }
  // Byte 1 bit 7 is always 1 in a SCSI Response (§11.4).
  let flags = Flag.F;
  if (rsp.bidirectionalReadResidualOverflow) flags |= Flag.BIDI_O;
  if (rsp.bidirectionalReadResidualUnderflow) flags |= Flag.BIDI_U;
  if (rsp.residualOverflow) flags |= Flag.O;
  if (rsp.residualUnderflow) flags |= Flag.U;
  beginBhs(out, Opcode.SCSI_RESPONSE, false, flags, rsp.data.length);
  out[2] = rsp.response;
  out[3] = rsp.status;
  out.writeUInt32BE(rsp.itt >>> 0, BhsOffset.ITT);
  out.writeUInt32BE(rsp.snackTag >>> 0, BhsOffset.SNACK_TAG);
  out.writeUInt32BE(rsp.statSN >>> 0, BhsOffset.STAT_SN);
  out.writeUInt32BE(rsp.expCmdSN >>> 0, BhsOffset.EXP_CMD_SN);
  out.writeUInt32BE(rsp.maxCmdSN >>> 0, BhsOffset.MAX_CMD_SN);
  out.writeUInt32BE(rsp.expDataSN >>> 0, BhsOffset.EXP_DATA_SN);
  out.writeUInt32BE(rsp.bidirectionalReadResidualCount >>> 0, BhsOffset.BIDIRECTIONAL_READ_RESIDUAL_COUNT);
  out.writeUInt32BE(rsp.residualCount >>> 0, BhsOffset.RESIDUAL_COUNT);
  return out;
}

/**
 * Build the SCSI Response data segment (§11.4.7): 2-byte SenseLength, the
 * sense data, then optional iSCSI response data.
 */
export function encodeSenseData(sense: Buffer, responseData: Buffer = EMPTY_BUFFER): Buffer {
  if (sense.length > 0xffff) throw new RangeError(`sense data of ${sense.length} bytes exceeds SenseLength`);
  const out = Buffer.allocUnsafe(2 + sense.length + responseData.length);
  out.writeUInt16BE(sense.length, 0);
  sense.copy(out, 2);
  responseData.copy(out, 2 + sense.length);
  return out;
}

/** Split a SCSI Response data segment into sense data and response data (views, no copy). */
export function splitSenseData(data: Buffer): { sense: Buffer; responseData: Buffer } {
  if (data.length === 0) return { sense: EMPTY_BUFFER, responseData: EMPTY_BUFFER };
  if (data.length < 2) throw new PduFormatError('INVALID_DATA_SEGMENT', 'SCSI Response data segment shorter than SenseLength');
  const senseLength = data.readUInt16BE(0);
  if (2 + senseLength > data.length) {
    throw new PduFormatError('INVALID_DATA_SEGMENT', `SenseLength ${senseLength} exceeds the ${data.length - 2} bytes present`);
  }
  return { sense: data.subarray(2, 2 + senseLength), responseData: data.subarray(2 + senseLength) };
}
