/**
 * Task Management Function Request (opcode 0x02, RFC 7143 §11.5) and
 * Response (0x22, §11.6). Neither carries a data segment.
 */
import { BhsOffset, allocBhs, beginBhs, decodeLun, encodeLun, expectOpcode } from './bhs';
import { Flag, IMMEDIATE_BIT, Opcode, RESERVED_TAG, TMF_FUNCTION_MASK } from './constants';

export interface TaskMgmtRequest {
  opcode: typeof Opcode.TASK_MGMT_REQUEST;
  immediate: boolean;
  /** Function, see TmfFunction. */
  function: number;
  /** Decoded LUN, or LUN_UNSUPPORTED (-1). */
  lun: number;
  itt: number;
  /** ITT of the task to act on (ABORT TASK, TASK REASSIGN, QUERY TASK), else 0xffffffff. */
  referencedTaskTag: number;
  cmdSN: number;
  expStatSN: number;
  /** RefCmdSN: CmdSN of the referenced task (ABORT TASK). */
  refCmdSN: number;
  /** ExpDataSN (TASK REASSIGN), else 0. */
  expDataSN: number;
}
export type TaskMgmtRequestFields = Omit<TaskMgmtRequest, 'opcode'>;

export interface TaskMgmtResponse {
  opcode: typeof Opcode.TASK_MGMT_RESPONSE;
  /** Response, see TmfResponse. */
  response: number;
  itt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
}
export type TaskMgmtResponseFields = Omit<TaskMgmtResponse, 'opcode'>;

export function parseTaskMgmtRequest(bhs: Buffer): TaskMgmtRequest {
  expectOpcode(bhs, Opcode.TASK_MGMT_REQUEST);
  return {
    opcode: Opcode.TASK_MGMT_REQUEST,
    immediate: (bhs[0] & IMMEDIATE_BIT) !== 0,
    function: bhs[1] & TMF_FUNCTION_MASK,
    lun: decodeLun(bhs, BhsOffset.LUN),
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    referencedTaskTag: bhs.readUInt32BE(BhsOffset.REFERENCED_TASK_TAG),
    cmdSN: bhs.readUInt32BE(BhsOffset.CMD_SN),
    expStatSN: bhs.readUInt32BE(BhsOffset.EXP_STAT_SN),
    refCmdSN: bhs.readUInt32BE(BhsOffset.REF_CMD_SN),
    expDataSN: bhs.readUInt32BE(BhsOffset.EXP_DATA_SN),
  };
}

export function encodeTaskMgmtRequest(pdu: TaskMgmtRequestFields, out: Buffer = allocBhs()): Buffer {
  // Byte 1 bit 7 is always 1; the function code is the low 7 bits.
  beginBhs(out, Opcode.TASK_MGMT_REQUEST, pdu.immediate, Flag.F | (pdu.function & TMF_FUNCTION_MASK), 0);
  encodeLun(pdu.lun, out, BhsOffset.LUN);
  out.writeUInt32BE(pdu.itt >>> 0, BhsOffset.ITT);
  out.writeUInt32BE(pdu.referencedTaskTag >>> 0, BhsOffset.REFERENCED_TASK_TAG);
  out.writeUInt32BE(pdu.cmdSN >>> 0, BhsOffset.CMD_SN);
  out.writeUInt32BE(pdu.expStatSN >>> 0, BhsOffset.EXP_STAT_SN);
  out.writeUInt32BE(pdu.refCmdSN >>> 0, BhsOffset.REF_CMD_SN);
  out.writeUInt32BE(pdu.expDataSN >>> 0, BhsOffset.EXP_DATA_SN);
  return out;
}

export function parseTaskMgmtResponse(bhs: Buffer): TaskMgmtResponse {
  expectOpcode(bhs, Opcode.TASK_MGMT_RESPONSE);
  return {
    opcode: Opcode.TASK_MGMT_RESPONSE,
    response: bhs[2],
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    statSN: bhs.readUInt32BE(BhsOffset.STAT_SN),
    expCmdSN: bhs.readUInt32BE(BhsOffset.EXP_CMD_SN),
    maxCmdSN: bhs.readUInt32BE(BhsOffset.MAX_CMD_SN),
  };
}

export function encodeTaskMgmtResponse(pdu: TaskMgmtResponseFields, out: Buffer = allocBhs()): Buffer {
  beginBhs(out, Opcode.TASK_MGMT_RESPONSE, false, Flag.F, 0);
  out[2] = pdu.response;
  out.writeUInt32BE(pdu.itt >>> 0, BhsOffset.ITT);
  out.writeUInt32BE(pdu.statSN >>> 0, BhsOffset.STAT_SN);
  out.writeUInt32BE(pdu.expCmdSN >>> 0, BhsOffset.EXP_CMD_SN);
  out.writeUInt32BE(pdu.maxCmdSN >>> 0, BhsOffset.MAX_CMD_SN);
  return out;
}

/** Referenced Task Tag value for functions that do not name a task. */
export const NO_REFERENCED_TASK = RESERVED_TAG;
