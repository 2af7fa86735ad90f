/**
 * SCSI Data-Out (opcode 0x05) and SCSI Data-In (0x25), RFC 7143 §11.7.
 *
 * These are the hot-path PDUs: parsing reads the BHS in place and keeps
 * `data` as the very Buffer the framer handed over (a view of the socket
 * chunk); encoding writes only the 48-byte header.
 */
import { BhsOffset, EMPTY_BUFFER, allocBhs, beginBhs, decodeLun, encodeLun, expectOpcode } from './bhs';
import { Flag, Opcode } from './constants';
import { PduFormatError } from './errors';

// ---------------------------------------------------------------------------
// SCSI Data-Out
// ---------------------------------------------------------------------------

export interface DataOut {
  opcode: typeof Opcode.SCSI_DATA_OUT;
  /** F: last PDU of this (unsolicited or R2T-solicited) sequence. */
  final: boolean;
  /** Decoded LUN, or LUN_UNSUPPORTED (-1). Only meaningful when ttt is set. */
  lun: number;
  itt: number;
  /** TTT from the R2T, or 0xffffffff for unsolicited data. */
  ttt: number;
  expStatSN: number;
  /** DataSN within the sequence, starting at 0 per R2T / unsolicited burst. */
  dataSN: number;
  bufferOffset: number;
  data: Buffer;
}
export type DataOutFields = Omit<DataOut, 'opcode'>;

export function parseDataOut(bhs: Buffer, data: Buffer = EMPTY_BUFFER): DataOut {
  expectOpcode(bhs, Opcode.SCSI_DATA_OUT);
  return {
    opcode: Opcode.SCSI_DATA_OUT,
    final: (bhs[1] & Flag.F) !== 0,
    lun: decodeLun(bhs, BhsOffset.LUN),
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    ttt: bhs.readUInt32BE(BhsOffset.TTT),
    expStatSN: bhs.readUInt32BE(BhsOffset.EXP_STAT_SN),
    dataSN: bhs.readUInt32BE(BhsOffset.DATA_SN),
    bufferOffset: bhs.readUInt32BE(BhsOffset.BUFFER_OFFSET),
    data,
  };
}

export function encodeDataOut(pdu: DataOutFields, out: Buffer = allocBhs()): Buffer {
  beginBhs(out, Opcode.SCSI_DATA_OUT, false, pdu.final ? Flag.F : 0, pdu.data.length);
  encodeLun(pdu.lun, out, BhsOffset.LUN);
  out.writeUInt32BE(pdu.itt >>> 0, BhsOffset.ITT);
  out.writeUInt32BE(pdu.ttt >>> 0, BhsOffset.TTT);
  out.writeUInt32BE(pdu.expStatSN >>> 0, BhsOffset.EXP_STAT_SN);
  out.writeUInt32BE(pdu.dataSN >>> 0, BhsOffset.DATA_SN);
  out.writeUInt32BE(pdu.bufferOffset >>> 0, BhsOffset.BUFFER_OFFSET);
  return out;
}

// ---------------------------------------------------------------------------
// SCSI Data-In
// ---------------------------------------------------------------------------

export interface DataIn {
  opcode: typeof Opcode.SCSI_DATA_IN;
  /** F: last Data-In of the command (or of the sequence when A is used). */
  final: boolean;
  /** A: initiator must send a DataACK SNACK (ErrorRecoveryLevel ≥ 1 only). */
  acknowledge: boolean;
  /** O: residual overflow — meaningful only when statusPresent. */
  residualOverflow: boolean;
  /** U: residual underflow — meaningful only when statusPresent. */
  residualUnderflow: boolean;
  /** S: this PDU carries the command status; no SCSI Response follows (§11.7.3). */
  statusPresent: boolean;
  /** SCSI status when statusPresent, else reserved (0). */
  status: number;
  /** Decoded LUN, or LUN_UNSUPPORTED (-1). Required when acknowledge is set. */
  lun: number;
  itt: number;
  /** TTT (with A set) or 0xffffffff. */
  ttt: number;
  /** StatSN when statusPresent, else reserved (0). */
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  dataSN: number;
  bufferOffset: number;
  /** Residual count when statusPresent, else reserved (0). */
  residualCount: number;
  data: Buffer;
}
export type DataInFields = Omit<DataIn, 'opcode'>;

export function parseDataIn(bhs: Buffer, data: Buffer = EMPTY_BUFFER): DataIn {
  expectOpcode(bhs, Opcode.SCSI_DATA_IN);
  const b1 = bhs[1];
  const final = (b1 & Flag.F) !== 0;
  const statusPresent = (b1 & Flag.S) !== 0;
  // §11.7.3: the S bit may be set only together with the F bit.
  if (statusPresent && !final) throw new PduFormatError('INVALID_FIELD', 'Data-In with S bit set but F bit clear');
  return {
    opcode: Opcode.SCSI_DATA_IN,
    final,
    acknowledge: (b1 & Flag.A) !== 0,
    residualOverflow: (b1 & Flag.O) !== 0,
    residualUnderflow: (b1 & Flag.U) !== 0,
    statusPresent,
    status: bhs[3],
    lun: decodeLun(bhs, BhsOffset.LUN),
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    ttt: bhs.readUInt32BE(BhsOffset.TTT),
    statSN: bhs.readUInt32BE(BhsOffset.STAT_SN),
    expCmdSN: bhs.readUInt32BE(BhsOffset.EXP_CMD_SN),
    maxCmdSN: bhs.readUInt32BE(BhsOffset.MAX_CMD_SN),
    dataSN: bhs.readUInt32BE(BhsOffset.DATA_SN),
    bufferOffset: bhs.readUInt32BE(BhsOffset.BUFFER_OFFSET),
    residualCount: bhs.readUInt32BE(BhsOffset.RESIDUAL_COUNT),
    data,
  };
}

export function encodeDataIn(pdu: DataInFields, out: Buffer = allocBhs()): Buffer {
  if (pdu.statusPresent && !pdu.final) throw new RangeError('Data-In: S bit requires the F bit (§11.7.3)');
  if (pdu.residualOverflow && pdu.residualUnderflow) throw new RangeError('Data-In: O and U are mutually exclusive');
  let flags = 0;
  if (pdu.final) flags |= Flag.F;
  if (pdu.acknowledge) flags |= Flag.A;
  if (pdu.statusPresent) {
    flags |= Flag.S;
    if (pdu.residualOverflow) flags |= Flag.O;
    if (pdu.residualUnderflow) flags |= Flag.U;
  }
  beginBhs(out, Opcode.SCSI_DATA_IN, false, flags, pdu.data.length);
  if (pdu.statusPresent) out[3] = pdu.status;
  encodeLun(pdu.lun, out, BhsOffset.LUN);
  out.writeUInt32BE(pdu.itt >>> 0, BhsOffset.ITT);
  out.writeUInt32BE(pdu.ttt >>> 0, BhsOffset.TTT);
  if (pdu.statusPresent) out.writeUInt32BE(pdu.statSN >>> 0, BhsOffset.STAT_SN);
  out.writeUInt32BE(pdu.expCmdSN >>> 0, BhsOffset.EXP_CMD_SN);
  out.writeUInt32BE(pdu.maxCmdSN >>> 0, BhsOffset.MAX_CMD_SN);
  out.writeUInt32BE(pdu.dataSN >>> 0, BhsOffset.DATA_SN);
  out.writeUInt32BE(pdu.bufferOffset >>> 0, BhsOffset.BUFFER_OFFSET);
  if (pdu.statusPresent) out.writeUInt32BE(pdu.residualCount >>> 0, BhsOffset.RESIDUAL_COUNT);
  return out;
}
