/**
 * Logout Request (opcode 0x06, RFC 7143 §11.14) and Logout Response (0x26,
 * §11.15). Neither carries a data segment.
 */
import { BhsOffset, allocBhs, beginBhs, expectOpcode } from './bhs';
import { Flag, IMMEDIATE_BIT, LOGOUT_REASON_MASK, Opcode } from './constants';

export interface LogoutRequest {
  opcode: typeof Opcode.LOGOUT_REQUEST;
  immediate: boolean;
  /** Reason Code, see LogoutReason. */
  reasonCode: number;
  itt: number;
  /** CID of the connection to close (reason 1 or 2), else reserved (0). */
  cid: number;
  cmdSN: number;
  expStatSN: number;
}
export type LogoutRequestFields = Omit<LogoutRequest, 'opcode'>;

export interface LogoutResponse {
  opcode: typeof Opcode.LOGOUT_RESPONSE;
  /** Response, see LogoutResponseCode. */
  response: number;
  itt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  /** Time2Wait, seconds (meaningful for connection recovery). */
  time2Wait: number;
  /** Time2Retain, seconds. */
  time2Retain: number;
}
export type LogoutResponseFields = Omit<LogoutResponse, 'opcode'>;

export function parseLogoutRequest(bhs: Buffer): LogoutRequest {
  expectOpcode(bhs, Opcode.LOGOUT_REQUEST);
  return {
    opcode: Opcode.LOGOUT_REQUEST,
    immediate: (bhs[0] & IMMEDIATE_BIT) !== 0,
    reasonCode: bhs[1] & LOGOUT_REASON_MASK,
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    cid: bhs.readUInt16BE(BhsOffset.CID),
    cmdSN: bhs.readUInt32BE(BhsOffset.CMD_SN),
    expStatSN: bhs.readUInt32BE(BhsOffset.EXP_STAT_SN),
  };
}

export function encodeLogoutRequest(pdu: LogoutRequestFields, out: Buffer = allocBhs()): Buffer {
  // Byte 1 bit 7 is always 1; the reason code is the low 7 bits.
  beginBhs(out, Opcode.LOGOUT_REQUEST, pdu.immediate, Flag.F | (pdu.reasonCode & LOGOUT_REASON_MASK), 0);
  out.writeUInt32BE(pdu.itt >>> 0, BhsOffset.ITT);
  out.writeUInt16BE(pdu.cid, BhsOffset.CID);
  out.writeUInt32BE(pdu.cmdSN >>> 0, BhsOffset.CMD_SN);
  out.writeUInt32BE(pdu.expStatSN >>> 0, BhsOffset.EXP_STAT_SN);
  return out;
}

export function parseLogoutResponse(bhs: Buffer): LogoutResponse {
  expectOpcode(bhs, Opcode.LOGOUT_RESPONSE);
  return {
    opcode: Opcode.LOGOUT_RESPONSE,
    response: bhs[2],
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    statSN: bhs.readUInt32BE(BhsOffset.STAT_SN),
    expCmdSN: bhs.readUInt32BE(BhsOffset.EXP_CMD_SN),
    maxCmdSN: bhs.readUInt32BE(BhsOffset.MAX_CMD_SN),
    time2Wait: bhs.readUInt16BE(BhsOffset.TIME2WAIT),
    time2Retain: bhs.readUInt16BE(BhsOffset.TIME2RETAIN),
  };
}

export function encodeLogoutResponse(pdu: LogoutResponseFields, out: Buffer = allocBhs()): Buffer {
  beginBhs(out, Opcode.LOGOUT_RESPONSE, false, Flag.F, 0);
  out[2] = pdu.response;
  out.writeUInt32BE(pdu.itt >>> 0, BhsOffset.ITT);
  out.writeUInt32BE(pdu.statSN >>> 0, BhsOffset.STAT_SN);
  out.writeUInt32BE(pdu.expCmdSN >>> 0, BhsOffset.EXP_CMD_SN);
  out.writeUInt32BE(pdu.maxCmdSN >>> 0, BhsOffset.MAX_CMD_SN);
  out.writeUInt16BE(pdu.time2Wait, BhsOffset.TIME2WAIT);
  out.writeUInt16BE(pdu.time2Retain, BhsOffset.TIME2RETAIN);
  return out;
}
