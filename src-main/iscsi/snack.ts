/**
 * SNACK Request (opcode 0x10), RFC 7143 §11.16: the initiator asks for
 * retransmission (Data/R2T, Status, R-Data) or acknowledges data (DataACK).
 * Only used at ErrorRecoveryLevel ≥ 1. No data segment.
 */
import { BhsOffset, allocBhs, beginBhs, decodeLun, encodeLun, expectOpcode } from './bhs';
import { Flag, Opcode, SNACK_TYPE_MASK } from './constants';

export interface SnackRequest {
  opcode: typeof Opcode.SNACK_REQUEST;
  /** Type, see SnackType. */
  type: number;
  /** Decoded LUN, or LUN_UNSUPPORTED (-1); set for DataACK. */
  lun: number;
  /** ITT of the task (Data/R2T, R-Data), or 0xffffffff (Status SNACK). */
  itt: number;
  /** Target Transfer Tag (DataACK) or SNACK Tag (R-Data), else 0xffffffff. */
  tttOrSnackTag: number;
  expStatSN: number;
  /** BegRun: first DataSN / R2TSN / StatSN to resend (or acknowledge). */
  begRun: number;
  /** RunLength: how many, 0 meaning "all from BegRun on". */
  runLength: number;
}
export type SnackRequestFields = Omit<SnackRequest, 'opcode'>;

export function parseSnackRequest(bhs: Buffer): SnackRequest {
  expectOpcode(bhs, Opcode.SNACK_REQUEST);
  return {
    opcode: Opcode.SNACK_REQUEST,
    type: bhs[1] & SNACK_TYPE_MASK,
    lun: decodeLun(bhs, BhsOffset.LUN),
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    tttOrSnackTag: bhs.readUInt32BE(BhsOffset.TTT),
    expStatSN: bhs.readUInt32BE(BhsOffset.EXP_STAT_SN),
    begRun: bhs.readUInt32BE(BhsOffset.BEG_RUN),
    runLength: bhs.readUInt32BE(BhsOffset.RUN_LENGTH),
  };
}

export function encodeSnackRequest(pdu: SnackRequestFields, out: Buffer = allocBhs()): Buffer {
  // Byte 1 bit 7 is always 1; the type is the low 4 bits.
  beginBhs(out, Opcode.SNACK_REQUEST, false, Flag.F | (pdu.type & SNACK_TYPE_MASK), 0);
  encodeLun(pdu.lun, out, BhsOffset.LUN);
  out.writeUInt32BE(pdu.itt >>> 0, BhsOffset.ITT);
  out.writeUInt32BE(pdu.tttOrSnackTag >>> 0, BhsOffset.TTT);
  out.writeUInt32BE(pdu.expStatSN >>> 0, BhsOffset.EXP_STAT_SN);
  out.writeUInt32BE(pdu.begRun >>> 0, BhsOffset.BEG_RUN);
  out.writeUInt32BE(pdu.runLength >>> 0, BhsOffset.RUN_LENGTH);
  return out;
}
