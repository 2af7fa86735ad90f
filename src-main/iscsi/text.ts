/**
 * Text Request (opcode 0x04, RFC 7143 §11.10) and Text Response (0x24, §11.11).
 * The data segment is key=value text (text-keys.ts); C=1 means it continues
 * in the next PDU of the exchange, which the peer solicits with an empty PDU.
 */
import { BhsOffset, EMPTY_BUFFER, allocBhs, beginBhs, decodeLun, encodeLun, expectOpcode } from './bhs';
import { Flag, IMMEDIATE_BIT, Opcode } from './constants';

export interface TextRequest {
  opcode: typeof Opcode.TEXT_REQUEST;
  immediate: boolean;
  /** F: last PDU of this text request sequence. */
  final: boolean;
  /** C: the text continues in the next PDU. */
  continue: boolean;
  /** Decoded LUN, or LUN_UNSUPPORTED (-1); usually reserved (0). */
  lun: number;
  itt: number;
  /** 0xffffffff to start, or the TTT of the Text Response being continued. */
  ttt: number;
  cmdSN: number;
  expStatSN: number;
  data: Buffer;
}
export type TextRequestFields = Omit<TextRequest, 'opcode'>;

export interface TextResponse {
  opcode: typeof Opcode.TEXT_RESPONSE;
  final: boolean;
  continue: boolean;
  lun: number;
  itt: number;
  /** 0xffffffff when final, otherwise a tag the initiator echoes to continue. */
  ttt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  data: Buffer;
}
export type TextResponseFields = Omit<TextResponse, 'opcode'>;

function textFlags(final: boolean, cont: boolean): number {
  // §11.10.2: F=1 with C=1 is invalid.
  if (final && cont) throw new RangeError('Text PDU: F and C bits must not both be set');
  return (final ? Flag.F : 0) | (cont ? Flag.C : 0);
}

export function parseTextRequest(bhs: Buffer, data: Buffer = EMPTY_BUFFER): TextRequest {
  expectOpcode(bhs, Opcode.TEXT_REQUEST);
  return {
    opcode: Opcode.TEXT_REQUEST,
    immediate: (bhs[0] & IMMEDIATE_BIT) !== 0,
    final: (bhs[1] & Flag.F) !== 0,
    continue: (bhs[1] & Flag.C) !== 0,
    lun: decodeLun(bhs, BhsOffset.LUN),
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    ttt: bhs.readUInt32BE(BhsOffset.TTT),
    cmdSN: bhs.readUInt32BE(BhsOffset.CMD_SN),
    expStatSN: bhs.readUInt32BE(BhsOffset.EXP_STAT_SN),
    data,
  };
}

export function encodeTextRequest(pdu: TextRequestFields, out: Buffer = allocBhs()): Buffer {
  beginBhs(out, Opcode.TEXT_REQUEST, pdu.immediate, textFlags(pdu.final, pdu.continue), pdu.data.length);
  encodeLun(pdu.lun, out, BhsOffset.LUN);
  out.writeUInt32BE(pdu.itt >>> 0, BhsOffset.ITT);
  out.writeUInt32BE(pdu.ttt >>> 0, BhsOffset.TTT);
  out.writeUInt32BE(pdu.cmdSN >>> 0, BhsOffset.CMD_SN);
  out.writeUInt32BE(pdu.expStatSN >>> 0, BhsOffset.EXP_STAT_SN);
  return out;
}

export function parseTextResponse(bhs: Buffer, data: Buffer = EMPTY_BUFFER): TextResponse {
  expectOpcode(bhs, Opcode.TEXT_RESPONSE);
  return {
    opcode: Opcode.TEXT_RESPONSE,
    final: (bhs[1] & Flag.F) !== 0,
    continue: (bhs[1] & Flag.C) !== 0,
    lun: decodeLun(bhs, BhsOffset.LUN),
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    ttt: bhs.readUInt32BE(BhsOffset.TTT),
    statSN: bhs.readUInt32BE(BhsOffset.STAT_SN),
    expCmdSN: bhs.readUInt32BE(BhsOffset.EXP_CMD_SN),
    maxCmdSN: bhs.readUInt32BE(BhsOffset.MAX_CMD_SN),
    data,
  };
}

export function encodeTextResponse(pdu: TextResponseFields, out: Buffer = allocBhs()): Buffer {
  beginBhs(out, Opcode.TEXT_RESPONSE, false, textFlags(pdu.final, pdu.continue), pdu.data.length);
  encodeLun(pdu.lun, out, BhsOffset.LUN);
  out.writeUInt32BE(pdu.itt >>> 0, BhsOffset.ITT);
  out.writeUInt32BE(pdu.ttt >>> 0, BhsOffset.TTT);
  out.writeUInt32BE(pdu.statSN >>> 0, BhsOffset.STAT_SN);
  out.writeUInt32BE(pdu.expCmdSN >>> 0, BhsOffset.EXP_CMD_SN);
  out.writeUInt32BE(pdu.maxCmdSN >>> 0, BhsOffset.MAX_CMD_SN);
  return out;
}
