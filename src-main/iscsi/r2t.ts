/**
 * Ready To Transfer, R2T (opcode 0x31), RFC 7143 §11.8. No data segment.
 */
import { BhsOffset, allocBhs, beginBhs, decodeLun, encodeLun, expectOpcode } from './bhs';
import { Flag, Opcode } from './constants';

export interface R2T {
  opcode: typeof Opcode.R2T;
  /** Decoded LUN, or LUN_UNSUPPORTED (-1). */
  lun: number;
  itt: number;
  /** Tag the initiator echoes in every Data-Out answering this R2T. */
  ttt: number;
  /** StatSN field: the next StatSN, not advanced by an R2T (§11.8.3). */
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  /** R2TSN: per-command R2T sequence number, from 0. */
  r2tSN: number;
  bufferOffset: number;
  /** Desired Data Transfer Length: at most MaxBurstLength, never 0. */
  desiredDataTransferLength: number;
}
export type R2TFields = Omit<R2T, 'opcode'>;

export function parseR2T(bhs: Buffer): R2T {
  expectOpcode(bhs, Opcode.R2T);
  return {
    opcode: Opcode.R2T,
    lun: decodeLun(bhs, BhsOffset.LUN),
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    ttt: bhs.readUInt32BE(BhsOffset.TTT),
    statSN: bhs.readUInt32BE(BhsOffset.STAT_SN),
    expCmdSN: bhs.readUInt32BE(BhsOffset.EXP_CMD_SN),
    maxCmdSN: bhs.readUInt32BE(BhsOffset.MAX_CMD_SN),
    r2tSN: bhs.readUInt32BE(BhsOffset.R2T_SN),
    bufferOffset: bhs.readUInt32BE(BhsOffset.BUFFER_OFFSET),
    desiredDataTransferLength: bhs.readUInt32BE(BhsOffset.DESIRED_DATA_TRANSFER_LENGTH),
  };
}

export function encodeR2T(pdu: R2TFields, out: Buffer = allocBhs()): Buffer {
  // Byte 1 bit 7 is always 1 in an R2T.
  beginBhs(out, Opcode.R2T, false, Flag.F, 0);
  encodeLun(pdu.lun, out, BhsOffset.LUN);
  out.writeUInt32BE(pdu.itt >>> 0, BhsOffset.ITT);
  out.writeUInt32BE(pdu.ttt >>> 0, BhsOffset.TTT);
  out.writeUInt32BE(pdu.statSN >>> 0, BhsOffset.STAT_SN);
  out.writeUInt32BE(pdu.expCmdSN >>> 0, BhsOffset.EXP_CMD_SN);
  out.writeUInt32BE(pdu.maxCmdSN >>> 0, BhsOffset.MAX_CMD_SN);
  out.writeUInt32BE(pdu.r2tSN >>> 0, BhsOffset.R2T_SN);
  out.writeUInt32BE(pdu.bufferOffset >>> 0, BhsOffset.BUFFER_OFFSET);
  out.writeUInt32BE(pdu.desiredDataTransferLength >>> 0, BhsOffset.DESIRED_DATA_TRANSFER_LENGTH);
  return out;
}
