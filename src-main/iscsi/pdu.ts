/**
 * The PDU codec in one place: the union of every parsed PDU, a dispatcher
 * from a framed PDU to its typed object, and re-exports of the families.
 *
 * Hot paths may skip the dispatcher: switch on readOpcode(bhs) and call the
 * family parser directly (parseDataOut, parseScsiCommand, ...).
 */
import { EMPTY_BUFFER, readOpcode } from './bhs';
import { Opcode, RejectReason, opcodeName } from './constants';
import { PduFormatError } from './errors';
import { encodeAsyncMessage, parseAsyncMessage, type AsyncMessage } from './async-message';
import { encodeDataIn, encodeDataOut, parseDataIn, parseDataOut, type DataIn, type DataOut } from './data';
import {
  encodeLoginRequest,
  encodeLoginResponse,
  parseLoginRequest,
  parseLoginResponse,
  type LoginRequest,
  type LoginResponse,
} from './login';
import {
  encodeLogoutRequest,
  encodeLogoutResponse,
  parseLogoutRequest,
  parseLogoutResponse,
  type LogoutRequest,
  type LogoutResponse,
} from './logout';
import { encodeNopIn, encodeNopOut, parseNopIn, parseNopOut, type NopIn, type NopOut } from './nop';
import { encodeR2T, parseR2T, type R2T } from './r2t';
import { encodeReject, parseReject, type Reject } from './reject';
import {
  encodeScsiCommand,
  encodeScsiResponse,
  parseScsiCommand,
  parseScsiResponse,
  type ScsiCommand,
  type ScsiResponse,
} from './scsi-command';
import { encodeSnackRequest, parseSnackRequest, type SnackRequest } from './snack';
import {
  encodeTaskMgmtRequest,
  encodeTaskMgmtResponse,
  parseTaskMgmtRequest,
  parseTaskMgmtResponse,
  type TaskMgmtRequest,
  type TaskMgmtResponse,
} from './task-mgmt';
import {
  encodeTextRequest,
  encodeTextResponse,
  parseTextRequest,
  parseTextResponse,
  type TextRequest,
  type TextResponse,
} from './text';

/** PDUs an initiator sends (a target receives). */
export type InitiatorPdu =
  | NopOut
  | ScsiCommand
  | TaskMgmtRequest
  | LoginRequest
  | TextRequest
  | DataOut
  | LogoutRequest
  | SnackRequest;

/** PDUs a target sends (an initiator receives). */
export type TargetPdu =
  | NopIn
  | ScsiResponse
  | TaskMgmtResponse
  | LoginResponse
  | TextResponse
  | DataIn
  | LogoutResponse
  | R2T
  | AsyncMessage
  | Reject;

export type Pdu = InitiatorPdu | TargetPdu;

/** What the framer delivers: header views and the unpadded data segment. */
export interface RawPdu {
  /** The 48-byte BHS. */
  bhs: Buffer;
  /** The AHS (TotalAHSLength * 4 bytes), usually empty. */
  ahs: Buffer;
  /** The data segment without padding or digest. */
  data: Buffer;
}

/**
 * Parse any PDU by its opcode. Throws PduFormatError('WRONG_OPCODE') for an
 * opcode RFC 7143 does not define (answer: Reject, reason Command not
 * supported / Protocol Error), and whatever the family parser throws.
 */
export function parsePdu(bhs: Buffer, data: Buffer = EMPTY_BUFFER, ahs: Buffer = EMPTY_BUFFER): Pdu {
  const opcode = readOpcode(bhs);
  switch (opcode) {
    case Opcode.NOP_OUT:
      return parseNopOut(bhs, data);
    case Opcode.SCSI_COMMAND:
      return parseScsiCommand(bhs, data, ahs);
    case Opcode.TASK_MGMT_REQUEST:
      return parseTaskMgmtRequest(bhs);
    case Opcode.LOGIN_REQUEST:
      return parseLoginRequest(bhs, data);
    case Opcode.TEXT_REQUEST:
      return parseTextRequest(bhs, data);
    case Opcode.SCSI_DATA_OUT:
      return parseDataOut(bhs, data);
    case Opcode.LOGOUT_REQUEST:
      return parseLogoutRequest(bhs);
    case Opcode.SNACK_REQUEST:
      return parseSnackRequest(bhs);
    case Opcode.NOP_IN:
      return parseNopIn(bhs, data);
    case Opcode.SCSI_RESPONSE:
      return parseScsiResponse(bhs, data);
    case Opcode.TASK_MGMT_RESPONSE:
      return parseTaskMgmtResponse(bhs);
    case Opcode.LOGIN_RESPONSE:
      return parseLoginResponse(bhs, data);
    case Opcode.TEXT_RESPONSE:
      return parseTextResponse(bhs, data);
    case Opcode.SCSI_DATA_IN:
      return parseDataIn(bhs, data);
    case Opcode.LOGOUT_RESPONSE:
      return parseLogoutResponse(bhs);
    case Opcode.R2T:
      return parseR2T(bhs);
    case Opcode.ASYNC_MESSAGE:
      return parseAsyncMessage(bhs, data);
    case Opcode.REJECT:
      return parseReject(bhs, data);
    default:
      throw new PduFormatError(
        'WRONG_OPCODE',
        `unknown iSCSI opcode ${opcodeName(opcode)}`,
        RejectReason.COMMAND_NOT_SUPPORTED,
      );
  }
}

/**
 * Encode any PDU's BHS by its `opcode`. A SCSI Command with a CDB over 16
 * bytes or bidirectional data also needs encodeScsiCommandAhs() as its AHS.
 */
export function encodePdu(pdu: Pdu, out?: Buffer): Buffer {
  switch (pdu.opcode) {
    case Opcode.NOP_OUT:
      return encodeNopOut(pdu, out);
    case Opcode.SCSI_COMMAND:
      return encodeScsiCommand(pdu, out);
    case Opcode.TASK_MGMT_REQUEST:
      return encodeTaskMgmtRequest(pdu, out);
    case Opcode.LOGIN_REQUEST:
      return encodeLoginRequest(pdu, out);
    case Opcode.TEXT_REQUEST:
      return encodeTextRequest(pdu, out);
    case Opcode.SCSI_DATA_OUT:
      return encodeDataOut(pdu, out);
    case Opcode.LOGOUT_REQUEST:
      return encodeLogoutRequest(pdu, out);
    case Opcode.SNACK_REQUEST:
      return encodeSnackRequest(pdu, out);
    case Opcode.NOP_IN:
      return encodeNopIn(pdu, out);
    case Opcode.SCSI_RESPONSE:
      return encodeScsiResponse(pdu, out);
    case Opcode.TASK_MGMT_RESPONSE:
      return encodeTaskMgmtResponse(pdu, out);
    case Opcode.LOGIN_RESPONSE:
      return encodeLoginResponse(pdu, out);
    case Opcode.TEXT_RESPONSE:
      return encodeTextResponse(pdu, out);
    case Opcode.SCSI_DATA_IN:
      return encodeDataIn(pdu, out);
    case Opcode.LOGOUT_RESPONSE:
      return encodeLogoutResponse(pdu, out);
    case Opcode.R2T:
      return encodeR2T(pdu, out);
    case Opcode.ASYNC_MESSAGE:
      return encodeAsyncMessage(pdu, out);
    case Opcode.REJECT:
      return encodeReject(pdu, out);
  }
}

/** The data segment a PDU object carries (EMPTY_BUFFER for families without one). */
export function pduData(pdu: Pdu): Buffer {
  return 'data' in pdu ? pdu.data : EMPTY_BUFFER;
}

export * from './async-message';
export * from './data';
export * from './login';
export * from './logout';
export * from './nop';
export * from './r2t';
export * from './reject';
export * from './scsi-command';
export * from './snack';
export * from './task-mgmt';
export * from './text';
