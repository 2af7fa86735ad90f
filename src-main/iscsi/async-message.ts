/**
 * Asynchronous Message (opcode 0x32), RFC 7143 §11.9. Sent by the target
 * unsolicited (ITT 0xffffffff); the data segment holds SenseLength + sense
 * data (for SCSI async events) followed by iSCSI event data.
 */
import { BhsOffset, EMPTY_BUFFER, allocBhs, beginBhs, decodeLun, encodeLun, expectOpcode } from './bhs';
import { Flag, Opcode, RESERVED_TAG } from './constants';

export interface AsyncMessage {
  opcode: typeof Opcode.ASYNC_MESSAGE;
  /** Decoded LUN, or LUN_UNSUPPORTED (-1); meaningful for SCSI async events. */
  lun: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  /** AsyncEvent, see the AsyncEvent constants. */
  asyncEvent: number;
  /** AsyncVCode: vendor code for AsyncEvent 255. */
  asyncVCode: number;
  /** Event 2: CID of the connection that will be dropped. */
  parameter1: number;
  /** Events 2/3: Time2Wait. */
  parameter2: number;
  /** Events 1/4: seconds within which to Logout / renegotiate; events 2/3: Time2Retain (§11.9.1). */
  parameter3: number;
  data: Buffer;
}
export type AsyncMessageFields = Omit<AsyncMessage, 'opcode'>;

export function parseAsyncMessage(bhs: Buffer, data: Buffer = EMPTY_BUFFER): AsyncMessage {
  expectOpcode(bhs, Opcode.ASYNC_MESSAGE);
  return {
    opcode: Opcode.ASYNC_MESSAGE,
    lun: decodeLun(bhs, BhsOffset.LUN),
    statSN: bhs.readUInt32BE(BhsOffset.STAT_SN),
    expCmdSN: bhs.readUInt32BE(BhsOffset.EXP_CMD_SN),
    maxCmdSN: bhs.readUInt32BE(BhsOffset.MAX_CMD_SN),
    asyncEvent: bhs[BhsOffset.ASYNC_EVENT],
    asyncVCode: bhs[BhsOffset.ASYNC_VCODE],
    parameter1: bhs.readUInt16BE(BhsOffset.PARAMETER1),
    parameter2: bhs.readUInt16BE(BhsOffset.PARAMETER2),
    parameter3: bhs.readUInt16BE(BhsOffset.PARAMETER3),
    data,
  };
}

export function encodeAsyncMessage(pdu: AsyncMessageFields, out: Buffer = allocBhs()): Buffer {
  beginBhs(out, Opcode.ASYNC_MESSAGE, false, Flag.F, pdu.data.length);
  encodeLun(pdu.lun, out, BhsOffset.LUN);
  out.writeUInt32BE(RESERVED_TAG, BhsOffset.ITT);
  out.writeUInt32BE(pdu.statSN >>> 0, BhsOffset.STAT_SN);
  out.writeUInt32BE(pdu.expCmdSN >>> 0, BhsOffset.EXP_CMD_SN);
  out.writeUInt32BE(pdu.maxCmdSN >>> 0, BhsOffset.MAX_CMD_SN);
  out[BhsOffset.ASYNC_EVENT] = pdu.asyncEvent;
  out[BhsOffset.ASYNC_VCODE] = pdu.asyncVCode;
  out.writeUInt16BE(pdu.parameter1, BhsOffset.PARAMETER1);
  out.writeUInt16BE(pdu.parameter2, BhsOffset.PARAMETER2);
  out.writeUInt16BE(pdu.parameter3, BhsOffset.PARAMETER3);
  return out;
}
