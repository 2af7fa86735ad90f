/**
 * Login Request (opcode 0x03, RFC 7143 §11.12) and Login Response (0x23, §11.13).
 *
 * Byte 1 of both is T|C|0|0|CSG|NSG. The ISID (6 bytes at offset 8) is held
 * as a 48-bit number — exact in a JS number, cheap to compare and to use as a
 * map key; formatIsid() renders it for logs and the UI.
 */
import { BhsOffset, EMPTY_BUFFER, allocBhs, beginBhs, expectOpcode } from './bhs';
import { CSG_MASK, CSG_SHIFT, Flag, NSG_MASK, Opcode } from './constants';

export const ISID_LENGTH = 6;
export const MAX_ISID = 2 ** 48 - 1;

export interface LoginRequest {
  opcode: typeof Opcode.LOGIN_REQUEST;
  /** T: the initiator is ready to move to `nsg`. */
  transit: boolean;
  /** C: the text in this PDU continues in the next one. */
  continue: boolean;
  /** CSG: current stage, see Stage. */
  csg: number;
  /** NSG: next stage (meaningful only when transit), see Stage. */
  nsg: number;
  versionMax: number;
  versionMin: number;
  /** ISID as a 48-bit number (T, A, B, C, D fields big-endian). */
  isid: number;
  /** TSIH: 0 for a new session, the session's TSIH to add a connection. */
  tsih: number;
  itt: number;
  /** CID: connection ID within the session. */
  cid: number;
  cmdSN: number;
  /** ExpStatSN, or reserved on the first Login Request of a connection. */
  expStatSN: number;
  /** key=value text (see text-keys.ts). */
  data: Buffer;
}
export type LoginRequestFields = Omit<LoginRequest, 'opcode'>;

export interface LoginResponse {
  opcode: typeof Opcode.LOGIN_RESPONSE;
  transit: boolean;
  continue: boolean;
  csg: number;
  nsg: number;
  versionMax: number;
  versionActive: number;
  isid: number;
  /** TSIH: set by the target in the final response of a leading login. */
  tsih: number;
  itt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  /** Status-Class, see LoginStatusClass / LoginStatus. */
  statusClass: number;
  /** Status-Detail, see LoginStatus. */
  statusDetail: number;
  data: Buffer;
}
export type LoginResponseFields = Omit<LoginResponse, 'opcode'>;

function loginFlags(transit: boolean, cont: boolean, csg: number, nsg: number): number {
  // §11.12.2: T=1 with C=1 is a protocol error; never produce it.
  if (transit && cont) throw new RangeError('Login PDU: T and C bits must not both be set');
  let flags = ((csg << CSG_SHIFT) & CSG_MASK) | (transit ? nsg & NSG_MASK : 0);
  if (transit) flags |= Flag.T;
  if (cont) flags |= Flag.C;
  return flags;
}

function writeIsid(out: Buffer, isid: number): void {
  if (!Number.isInteger(isid) || isid < 0 || isid > MAX_ISID) throw new RangeError(`ISID ${isid} does not fit 48 bits`);
  out.writeUIntBE(isid, BhsOffset.ISID, ISID_LENGTH);
}

export function parseLoginRequest(bhs: Buffer, data: Buffer = EMPTY_BUFFER): LoginRequest {
  expectOpcode(bhs, Opcode.LOGIN_REQUEST);
  const b1 = bhs[1];
  return {
    opcode: Opcode.LOGIN_REQUEST,
    transit: (b1 & Flag.T) !== 0,
    continue: (b1 & Flag.C) !== 0,
    csg: (b1 & CSG_MASK) >>> CSG_SHIFT,
    nsg: b1 & NSG_MASK,
    versionMax: bhs[2],
    versionMin: bhs[3],
    isid: bhs.readUIntBE(BhsOffset.ISID, ISID_LENGTH),
    tsih: bhs.readUInt16BE(BhsOffset.TSIH),
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    cid: bhs.readUInt16BE(BhsOffset.CID),
    cmdSN: bhs.readUInt32BE(BhsOffset.CMD_SN),
    expStatSN: bhs.readUInt32BE(BhsOffset.EXP_STAT_SN),
    data,
  };
}

/** Encode a Login Request BHS. The I bit is always set (§11.12: Login is an immediate command). */
export function encodeLoginRequest(pdu: LoginRequestFields, out: Buffer = allocBhs()): Buffer {
  beginBhs(out, Opcode.LOGIN_REQUEST, true, loginFlags(pdu.transit, pdu.continue, pdu.csg, pdu.nsg), pdu.data.length);
  out[2] = pdu.versionMax;
  out[3] = pdu.versionMin;
  writeIsid(out, pdu.isid);
  out.writeUInt16BE(pdu.tsih, BhsOffset.TSIH);
  out.writeUInt32BE(pdu.itt >>> 0, BhsOffset.ITT);
  out.writeUInt16BE(pdu.cid, BhsOffset.CID);
  out.writeUInt32BE(pdu.cmdSN >>> 0, BhsOffset.CMD_SN);
  out.writeUInt32BE(pdu.expStatSN >>> 0, BhsOffset.EXP_STAT_SN);
  return out;
}

export function parseLoginResponse(bhs: Buffer, data: Buffer = EMPTY_BUFFER): LoginResponse {
  expectOpcode(bhs, Opcode.LOGIN_RESPONSE);
  const b1 = bhs[1];
  return {
    opcode: Opcode.LOGIN_RESPONSE,
    transit: (b1 & Flag.T) !== 0,
    continue: (b1 & Flag.C) !== 0,
    csg: (b1 & CSG_MASK) >>> CSG_SHIFT,
    nsg: b1 & NSG_MASK,
    versionMax: bhs[2],
    versionActive: bhs[3],
    isid: bhs.readUIntBE(BhsOffset.ISID, ISID_LENGTH),
    tsih: bhs.readUInt16BE(BhsOffset.TSIH),
    itt: bhs.readUInt32BE(BhsOffset.ITT),
    statSN: bhs.readUInt32BE(BhsOffset.STAT_SN),
    expCmdSN: bhs.readUInt32BE(BhsOffset.EXP_CMD_SN),
    maxCmdSN: bhs.readUInt32BE(BhsOffset.MAX_CMD_SN),
    statusClass: bhs[BhsOffset.STATUS_CLASS],
    statusDetail: bhs[BhsOffset.STATUS_DETAIL],
    data,
  };
}

export function encodeLoginResponse(pdu: LoginResponseFields, out: Buffer = allocBhs()): Buffer {
  beginBhs(out, Opcode.LOGIN_RESPONSE, false, loginFlags(pdu.transit, pdu.continue, pdu.csg, pdu.nsg), pdu.data.length);
  out[2] = pdu.versionMax;
  out[3] = pdu.versionActive;
  writeIsid(out, pdu.isid);
  out.writeUInt16BE(pdu.tsih, BhsOffset.TSIH);
  out.writeUInt32BE(pdu.itt >>> 0, BhsOffset.ITT);
  out.writeUInt32BE(pdu.statSN >>> 0, BhsOffset.STAT_SN);
  out.writeUInt32BE(pdu.expCmdSN >>> 0, BhsOffset.EXP_CMD_SN);
  out.writeUInt32BE(pdu.maxCmdSN >>> 0, BhsOffset.MAX_CMD_SN);
  out[BhsOffset.STATUS_CLASS] = pdu.statusClass;
  out[BhsOffset.STATUS_DETAIL] = pdu.statusDetail;
  return out;
}

/** ISID as 12 lowercase hex digits, e.g. `400001370000` (the form open-iscsi and LIO print). */
export function formatIsid(isid: number): string {
  return isid.toString(16).padStart(12, '0');
}
