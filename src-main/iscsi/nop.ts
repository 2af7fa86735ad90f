/**
 * NOP-Out (opcode 0x00, RFC 7143 §11.18) and NOP-In (0x20, §11.19): pings in
 * both directions. A NOP-Out answering a target's NOP-In echoes its TTT and
 * uses ITT 0xffffffff; a NOP-In answering a NOP-Out echoes the ITT and ping data.
 */
import { BhsOffset, EMPTY_BUFFER, allocBhs, beginBhs, decodeLun, encodeLun, expectOpcode } from './bhs';
import { Flag, IMMEDIATE_BIT, Opcode } from './constants';

export interface NopOut {
  opcode: typeof Opcode.NOP_OUT;
  immediate: boolean;
  /** Decoded LUN, or LUN_UNSUPPORTED (-1); echoes the NOP-In's LUN when answering one. */
  lun: number;
  /** ITT, or 0xffffffff when this answers a NOP-In (then no NOP-In comes back). */
  itt: number;
  /** The NOP-In's TTT when answering one, else 0xffffffff. */
  ttt: number;
  cmdSN: number;
  expStatSN: number;
  /** Ping data. */
  data: Buffer;
}
export type NopOutFields = Omit<NopOut, 'opcode'>;

export interface NopIn {
  opcode: typeof Opcode.NOP_IN;
  lun: number;
  /** The NOP-Out's ITT when answering one, else 0xffffffff. */
  itt: number;
  /** 0xffffffff, or a tag asking the initiator to answer with a NOP-Out. */
  ttt: number;
  /** StatSN; advanced only when answering a NOP-Out (ITT ≠ 0xffffffff). */
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  data: Buffer;
}
export type NopInFields = Omit<NopIn, 'opcode'>;

export function parseNopOut(bhs: Buffer, data: Buffer = EMPTY_BUFFER): NopOut {
  expectOpcode(bhs, Opcode.NOP_OUT);
  return {
    opcode: Opcode.NOP_OUT,
    immediate: (bhs[0] & IMMEDIATE_BIT) !== 0,
    lun: decodeLun(bhs, BhsOffset.LUN),
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    ttt: bhs.readUInt32BE(BhsOffset.TTT),
    cmdSN: bhs.readUInt32BE(BhsOffset.CMD_SN),
    expStatSN: bhs.readUInt32BE(BhsOffset.EXP_STAT_SN),
    data,
  };
}

export function encodeNopOut(pdu: NopOutFields, out: Buffer = allocBhs()): Buffer {
  // Byte 1 bit 7 is always 1 in NOP-Out.
  beginBhs(out, Opcode.NOP_OUT, pdu.immediate, Flag.F, pdu.data.length);
  encodeLun(pdu.lun, out, BhsOffset.LUN);
  out.writeUInt32BE(pdu.itt >>> 0, BhsOffset.ITT);
  out.writeUInt32BE(pdu.ttt >>> 0, BhsOffset.TTT);
  out.writeUInt32BE(pdu.cmdSN >>> 0, BhsOffset.CMD_SN);
  out.writeUInt32BE(pdu.expStatSN >>> 0, BhsOffset.EXP_STAT_SN);
  return out;
}

export function parseNopIn(bhs: Buffer, data: Buffer = EMPTY_BUFFER): NopIn {
  expectOpcode(bhs, Opcode.NOP_IN);
  return {
    opcode: Opcode.NOP_IN,
    lun: decodeLun(bhs, BhsOffset.LUN),
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    ttt: bhs.readUInt32BE(BhsOffset.TTT),
    statSN: bhs.readUInt32BE(BhsOffset.STAT_SN),
    expCmdSN: bhs.readUInt32BE(BhsOffset.EXP_CMD_SN),
    maxCmdSN: bhs.readUInt32BE(BhsOffset.MAX_CMD_SN),
    data,
  };
}

export function encodeNopIn(pdu: NopInFields, out: Buffer = allocBhs()): Buffer {
  beginBhs(out, Opcode.NOP_IN, false, Flag.F, pdu.data.length);
  encodeLun(pdu.lun, out, BhsOffset.LUN);
  out.writeUInt32BE(pdu.itt >>> 0, BhsOffset.ITT);
  out.writeUInt32BE(pdu.ttt >>> 0, BhsOffset.TTT);
  out.writeUInt32BE(pdu.statSN >>> 0, BhsOffset.STAT_SN);
  out.writeUInt32BE(pdu.expCmdSN >>> 0, BhsOffset.EXP_CMD_SN);
  out.writeUInt32BE(pdu.maxCmdSN >>> 0, BhsOffset.MAX_CMD_SN);
  return out;
}
