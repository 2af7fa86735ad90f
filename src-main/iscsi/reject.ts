/**
 * Reject (opcode 0x3f), RFC 7143 §11.17. The data segment carries the
 * complete header of the rejected PDU, so the initiator can tell which one.
 */
import { BHS_LENGTH, Flag, Opcode, RESERVED_TAG } from './constants';
import { BhsOffset, EMPTY_BUFFER, allocBhs, beginBhs, expectOpcode } from './bhs';

export interface Reject {
  opcode: typeof Opcode.REJECT;
  /** Reason, see RejectReason. */
  reason: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  /** DataSN/R2TSN: the next expected one, for Data/R2T SNACK rejects; else 0. */
  dataSN: number;
  /** The rejected PDU's header (BHS, at least 48 bytes when well formed). */
  data: Buffer;
}
export type RejectFields = Omit<Reject, 'opcode'>;

export function parseReject(bhs: Buffer, data: Buffer = EMPTY_BUFFER): Reject {
  expectOpcode(bhs, Opcode.REJECT);
  return {
    opcode: Opcode.REJECT,
    reason: bhs[2],
    statSN: bhs.readUInt32BE(BhsOffset.STAT_SN),
    expCmdSN: bhs.readUInt32BE(BhsOffset.EXP_CMD_SN),
    maxCmdSN: bhs.readUInt32BE(BhsOffset.MAX_CMD_SN),
    dataSN: bhs.readUInt32BE(BhsOffset.DATA_SN),
    data,
  };
}

/** Encode a Reject BHS; ITT is always 0xffffffff (§11.17). */
export function encodeReject(pdu: RejectFields, out: Buffer = allocBhs()): Buffer {
  beginBhs(out, Opcode.REJECT, false, Flag.F, pdu.data.length);
  out[2] = pdu.reason;
  out.writeUInt32BE(RESERVED_TAG, BhsOffset.ITT);
  out.writeUInt32BE(pdu.statSN >>> 0, BhsOffset.STAT_SN);
  out.writeUInt32BE(pdu.expCmdSN >>> 0, BhsOffset.EXP_CMD_SN);
  out.writeUInt32BE(pdu.maxCmdSN >>> 0, BhsOffset.MAX_CMD_SN);
  out.writeUInt32BE(pdu.dataSN >>> 0, BhsOffset.DATA_SN);
  return out;
}

/** The rejected PDU's BHS (a view), or undefined when the data segment is too short. */
export function rejectedBhs(reject: Pick<Reject, 'data'>): Buffer | undefined {
  return reject.data.length >= BHS_LENGTH ? reject.data.subarray(0, BHS_LENGTH) : undefined;
}
