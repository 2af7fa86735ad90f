import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BHS_LENGTH,
  AsyncEvent,
  LoginStatus,
  LogoutReason,
  LogoutResponseCode,
  Opcode,
  RESERVED_TAG,
  RejectReason,
  ScsiStatus,
  SnackType,
  Stage,
  TaskAttribute,
  TmfFunction,
  TmfResponse,
  loginStatusName,
  opcodeName,
} from '../../src-main/iscsi/constants';
import {
  EMPTY_BUFFER,
  LUN_UNSUPPORTED,
  decodeLun,
  encodeLun,
  readAhsByteLength,
  readCmdSN,
  readDataSegmentLength,
  readExpStatSN,
  readFinal,
  readITT,
  readImmediate,
  readLun,
  readLunRaw,
  readOpcode,
  readTTT,
} from '../../src-main/iscsi/bhs';
import { PduFormatError } from '../../src-main/iscsi/errors';
import {
  encodeDataIn,
  encodeLoginRequest,
  encodePdu,
  encodeScsiCommand,
  encodeScsiCommandAhs,
  encodeSenseData,
  formatIsid,
  parseAsyncMessage,
  parseDataIn,
  parseDataOut,
  parseLoginRequest,
  parseLoginResponse,
  parseLogoutRequest,
  parseLogoutResponse,
  parseNopIn,
  parseNopOut,
  parsePdu,
  parseR2T,
  parseReject,
  parseScsiCommand,
  parseScsiResponse,
  parseSnackRequest,
  parseTaskMgmtRequest,
  parseTaskMgmtResponse,
  parseTextRequest,
  parseTextResponse,
  pduData,
  rejectedBhs,
  splitSenseData,
  type Pdu,
} from '../../src-main/iscsi/pdu';
import { snAdd, snGreaterThan, snInWindow, snLessThan } from '../../src-main/iscsi/serial';

/** Bytes from a hex dump; `#` starts a comment to the end of the line. */
function hex(s: string): Buffer {
  return Buffer.from(s.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex');
}

/** A 48-byte BHS from 12 rows of 4 bytes, as drawn in the RFC figures. */
function bhs(s: string): Buffer {
  const b = hex(s);
  assert.equal(b.length, BHS_LENGTH, 'test vector must be 48 bytes');
  return b;
}

describe('BHS accessors and LUN encoding', () => {
  it('reads opcode, I bit, F bit, lengths, ITT, TTT, CmdSN and ExpStatSN in place', () => {
    const b = bhs(`
      45 80 00 00   # I=1, opcode 0x05, F
      02 01 02 03   # TotalAHSLength 2 words, DataSegmentLength 0x010203
      00 07 00 00  00 00 00 00   # LUN 7
      de ad be ef   # ITT
      ca fe f0 0d   # TTT
      00 00 00 2a   # CmdSN
      00 00 00 2b   # ExpStatSN
      00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00`);
    assert.equal(readOpcode(b), Opcode.SCSI_DATA_OUT);
    assert.equal(readImmediate(b), true);
    assert.equal(readFinal(b), true);
    assert.equal(readAhsByteLength(b), 8);
    assert.equal(readDataSegmentLength(b), 0x010203);
    assert.equal(readLun(b), 7);
    assert.equal(readITT(b), 0xdeadbeef);
    assert.equal(readTTT(b), 0xcafef00d);
    assert.equal(readCmdSN(b), 42);
    assert.equal(readExpStatSN(b), 43);
  });

  it('encodes LUN 0..255 with peripheral addressing and 256..16383 with flat addressing', () => {
    assert.deepEqual(encodeLun(0), hex('00 00 00 00 00 00 00 00'));
    assert.deepEqual(encodeLun(5), hex('00 05 00 00 00 00 00 00'));
    assert.deepEqual(encodeLun(255), hex('00 ff 00 00 00 00 00 00'));
    assert.deepEqual(encodeLun(256), hex('41 00 00 00 00 00 00 00'));
    assert.deepEqual(encodeLun(16383), hex('7f ff 00 00 00 00 00 00'));
    assert.throws(() => encodeLun(16384), RangeError);
    assert.throws(() => encodeLun(-1), RangeError);
  });

  it('decodes peripheral and flat single-level LUNs, and flags other addressing as unsupported', () => {
    assert.equal(decodeLun(hex('00 05 00 00 00 00 00 00')), 5);
    assert.equal(decodeLun(hex('40 05 00 00 00 00 00 00')), 5, 'flat addressing of a small LUN');
    assert.equal(decodeLun(hex('7f ff 00 00 00 00 00 00')), 16383);
    assert.equal(decodeLun(hex('01 05 00 00 00 00 00 00')), LUN_UNSUPPORTED, 'peripheral bus 1');
    assert.equal(decodeLun(hex('00 05 00 01 00 00 00 00')), LUN_UNSUPPORTED, 'second level present');
    assert.equal(decodeLun(hex('c1 01 00 00 00 00 00 00')), LUN_UNSUPPORTED, 'extended addressing (well-known LU)');
    const b = Buffer.alloc(48);
    hex('c1 01 00 00 00 00 00 00').copy(b, 8);
    assert.equal(readLunRaw(b), 0xc101000000000000n);
  });

  it('names opcodes and login statuses for logs', () => {
    assert.equal(opcodeName(0x01), 'SCSI_COMMAND');
    assert.equal(opcodeName(0x1c), '0x1c');
    assert.equal(loginStatusName(2, 1), 'AUTHENTICATION_FAILURE');
  });

  it('compares sequence numbers with RFC 1982 serial arithmetic across the 2^32 wrap', () => {
    assert.equal(snLessThan(0xfffffffe, 1), true);
    assert.equal(snGreaterThan(1, 0xfffffffe), true);
    assert.equal(snLessThan(5, 5), false);
    assert.equal(snLessThan(0, 0x80000000), false, 'exactly 2^31 apart is undefined');
    assert.equal(snGreaterThan(0x80000000, 0), false);
    assert.equal(snAdd(0xffffffff, 1), 0);
    assert.equal(snInWindow(0, 0xfffffff0, 0x10), true);
    assert.equal(snInWindow(0x11, 0xfffffff0, 0x10), false);
    assert.equal(snInWindow(7, 7, 6), false, 'MaxCmdSN = ExpCmdSN - 1 is a closed window');
  });
});

describe('SCSI Command (0x01) and SCSI Response (0x21)', () => {
  it('parses the RFC 3720 B.4 READ(10) command PDU: F+R, untagged, ITT 0x14000000, 1024 bytes, CmdSN 0x14, ExpStatSN 0x18', () => {
    const b = bhs(`
      01 c0 00 00  00 00 00 00  00 00 00 00  00 00 00 00
      14 00 00 00  00 00 04 00  00 00 00 14  00 00 00 18
      28 00 00 00  00 00 00 00  02 00 00 00  00 00 00 00`);
    const cmd = parseScsiCommand(b, EMPTY_BUFFER);
    assert.equal(cmd.opcode, Opcode.SCSI_COMMAND);
    assert.equal(cmd.immediate, false);
    assert.equal(cmd.final, true);
    assert.equal(cmd.read, true);
    assert.equal(cmd.write, false);
    assert.equal(cmd.taskAttribute, TaskAttribute.UNTAGGED);
    assert.equal(cmd.lun, 0);
    assert.equal(cmd.itt, 0x14000000);
    assert.equal(cmd.expectedDataTransferLength, 1024);
    assert.equal(cmd.cmdSN, 0x14);
    assert.equal(cmd.expStatSN, 0x18);
    assert.equal(cmd.cdb.length, 16);
    assert.equal(cmd.cdb[0], 0x28, 'READ(10)');
    assert.equal(cmd.cdb.readUInt16BE(7), 2, 'two blocks');
    assert.equal(cmd.cdb.buffer, b.buffer, 'the CDB is a view of the BHS, not a copy');
  });

  it('parses a WRITE(10) with immediate data: W, SIMPLE attribute, LUN 1, data segment kept as the same Buffer', () => {
    const b = bhs(`
      01 a1 00 00   # SCSI Command, F+W, ATTR=1 (simple)
      00 00 02 00   # DataSegmentLength 512
      00 01 00 00  00 00 00 00   # LUN 1
      00 00 00 07   # ITT 7
      00 00 10 00   # Expected Data Transfer Length 4096
      00 00 00 09   # CmdSN 9
      00 00 00 03   # ExpStatSN 3
      2a 00 00 00  00 10 00 00  08 00 00 00  00 00 00 00   # WRITE(10) LBA 16, 8 blocks`);
    const data = Buffer.alloc(512, 0xab);
    const cmd = parseScsiCommand(b, data);
    assert.equal(cmd.write, true);
    assert.equal(cmd.read, false);
    assert.equal(cmd.taskAttribute, TaskAttribute.SIMPLE);
    assert.equal(cmd.lun, 1);
    assert.equal(cmd.expectedDataTransferLength, 4096);
    assert.equal(cmd.data, data);
  });

  it('reads a 32-byte CDB from an Extended CDB AHS and a bidirectional read length AHS', () => {
    const ahs = hex(`
      00 11 01 00   # AHSLength 17 (= 32 - 15), type 1 Extended CDB, reserved
      10 11 12 13  14 15 16 17  18 19 1a 1b  1c 1d 1e 1f   # CDB bytes 16..31
      00 05 02 00   # AHSLength 5, type 2 Bidirectional Read Expected Data Transfer Length
      00 00 20 00   # 8192`);
    const b = bhs(`
      01 e1 00 00  07 00 00 00  00 00 00 00  00 00 00 00   # F+R+W, ATTR 1, TotalAHSLength 7 words (20 + 8 bytes)
      00 00 00 01  00 00 10 00  00 00 00 01  00 00 00 01
      7f 00 00 00  00 00 00 18  00 01 02 03  04 05 06 07`);
    const cmd = parseScsiCommand(b, EMPTY_BUFFER, ahs);
    assert.equal(cmd.cdb.length, 32);
    assert.equal(cmd.cdb[0], 0x7f, 'variable-length CDB');
    assert.equal(cmd.cdb[31], 0x1f);
    assert.equal(cmd.bidirectionalReadExpectedDataTransferLength, 8192);
    // And encoding produces the same AHS and header.
    assert.deepEqual(encodeScsiCommandAhs(cmd), ahs);
    assert.deepEqual(encodeScsiCommand(cmd), b);
  });

  it('rejects a truncated AHS chain with PduFormatError INVALID_AHS', () => {
    const b = bhs(`
      01 80 00 00  01 00 00 00  00 00 00 00  00 00 00 00
      00 00 00 01  00 00 00 00  00 00 00 01  00 00 00 01
      00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00`);
    assert.throws(
      () => parseScsiCommand(b, EMPTY_BUFFER, hex('00 20 01 00')),
      (e: unknown) => e instanceof PduFormatError && e.code === 'INVALID_AHS',
    );
  });

  it('parses a SCSI Response with CHECK CONDITION, underflow residual and sense data', () => {
    const b = bhs(`
      21 82 00 02   # SCSI Response, U, Response 0 (completed), Status CHECK CONDITION
      00 00 00 14   # DataSegmentLength 20
      00 00 00 00  00 00 00 00   # reserved
      00 00 00 07   # ITT 7
      00 00 00 00   # SNACK Tag
      00 00 00 05   # StatSN
      00 00 00 0a   # ExpCmdSN
      00 00 00 29   # MaxCmdSN
      00 00 00 00   # ExpDataSN
      00 00 00 00   # Bidirectional Read Residual Count
      00 00 02 00   # Residual Count 512`);
    const sense = hex('70 00 05 00 00 00 00 0a 00 00 00 00 24 00 00 00 00 00');
    const data = encodeSenseData(sense);
    assert.equal(data.length, 20);
    const rsp = parseScsiResponse(b, data);
    assert.equal(rsp.opcode, Opcode.SCSI_RESPONSE);
    assert.equal(rsp.residualUnderflow, true);
    assert.equal(rsp.residualOverflow, false);
    assert.equal(rsp.response, 0);
    assert.equal(rsp.status, ScsiStatus.CHECK_CONDITION);
    assert.equal(rsp.itt, 7);
    assert.equal(rsp.statSN, 5);
    assert.equal(rsp.expCmdSN, 10);
    assert.equal(rsp.maxCmdSN, 41);
    assert.equal(rsp.residualCount, 512);
    const split = splitSenseData(rsp.data);
    assert.deepEqual(split.sense, sense);
    assert.equal(split.responseData.length, 0);
  });

  it('refuses a SenseLength longer than the data segment', () => {
    assert.throws(
      () => splitSenseData(hex('00 20 70 00')),
      (e: unknown) => e instanceof PduFormatError && e.code === 'INVALID_DATA_SEGMENT',
    );
  });
});

describe('SCSI Data-Out (0x05) and Data-In (0x25)', () => {
  it('parses a solicited Data-Out: F, LUN 2, ITT, TTT, DataSN 3, BufferOffset 0x3000', () => {
    const b = bhs(`
      05 80 00 00  00 00 10 00   # F, DataSegmentLength 4096
      00 02 00 00  00 00 00 00   # LUN 2
      00 00 00 11   # ITT
      00 00 00 99   # TTT
      00 00 00 00   # reserved
      00 00 00 04   # ExpStatSN
      00 00 00 00   # reserved
      00 00 00 03   # DataSN
      00 00 30 00   # Buffer Offset
      00 00 00 00`);
    const data = Buffer.alloc(4096);
    const pdu = parseDataOut(b, data);
    assert.deepEqual(pdu, {
      opcode: Opcode.SCSI_DATA_OUT,
      final: true,
      lun: 2,
      itt: 0x11,
      ttt: 0x99,
      expStatSN: 4,
      dataSN: 3,
      bufferOffset: 0x3000,
      data,
    });
    assert.equal(pdu.data, data, 'data is not copied');
  });

  it('parses a Data-In carrying status (F+S, U) with StatSN and residual count', () => {
    const b = bhs(`
      25 83 00 00   # F, U, S; status GOOD
      00 00 02 00   # DataSegmentLength 512
      00 00 00 00  00 00 00 00
      00 00 00 21   # ITT
      ff ff ff ff   # TTT reserved
      00 00 00 30   # StatSN
      00 00 00 40   # ExpCmdSN
      00 00 00 60   # MaxCmdSN
      00 00 00 01   # DataSN
      00 00 02 00   # Buffer Offset 512
      00 00 04 00   # Residual Count 1024`);
    const pdu = parseDataIn(b, Buffer.alloc(512));
    assert.equal(pdu.final, true);
    assert.equal(pdu.statusPresent, true);
    assert.equal(pdu.residualUnderflow, true);
    assert.equal(pdu.acknowledge, false);
    assert.equal(pdu.status, ScsiStatus.GOOD);
    assert.equal(pdu.ttt, RESERVED_TAG);
    assert.equal(pdu.statSN, 0x30);
    assert.equal(pdu.expCmdSN, 0x40);
    assert.equal(pdu.maxCmdSN, 0x60);
    assert.equal(pdu.dataSN, 1);
    assert.equal(pdu.bufferOffset, 512);
    assert.equal(pdu.residualCount, 1024);
  });

  it('treats a Data-In with S set but F clear as a format error', () => {
    const b = Buffer.alloc(48);
    b[0] = Opcode.SCSI_DATA_IN;
    b[1] = 0x01;
    assert.throws(() => parseDataIn(b), (e: unknown) => e instanceof PduFormatError && e.code === 'INVALID_FIELD');
  });

  it('encodes a Data-In without status leaving StatSN, status and residual reserved (zero)', () => {
    const out = encodeDataIn({
      final: false,
      acknowledge: false,
      residualOverflow: false,
      residualUnderflow: true,
      statusPresent: false,
      status: 0x02,
      lun: 0,
      itt: 1,
      ttt: RESERVED_TAG,
      statSN: 77,
      expCmdSN: 2,
      maxCmdSN: 3,
      dataSN: 0,
      bufferOffset: 0,
      residualCount: 99,
      data: Buffer.alloc(8),
    });
    assert.equal(out[1], 0x00, 'no F, no U without S');
    assert.equal(out[3], 0);
    assert.equal(out.readUInt32BE(24), 0);
    assert.equal(out.readUInt32BE(44), 0);
    assert.equal(readDataSegmentLength(out), 8);
  });
});

describe('R2T (0x31)', () => {
  it('parses TTT, R2TSN, Buffer Offset and Desired Data Transfer Length', () => {
    const b = bhs(`
      31 80 00 00  00 00 00 00
      00 00 00 00  00 00 00 00   # LUN 0
      00 00 00 0b   # ITT
      00 00 01 00   # TTT
      00 00 00 0c   # StatSN
      00 00 00 0d   # ExpCmdSN
      00 00 00 2d   # MaxCmdSN
      00 00 00 01   # R2TSN
      00 04 00 00   # Buffer Offset 256 KiB
      00 04 00 00   # Desired Data Transfer Length 256 KiB`);
    assert.deepEqual(parseR2T(b), {
      opcode: Opcode.R2T,
      lun: 0,
      itt: 0x0b,
      ttt: 0x100,
      statSN: 0x0c,
      expCmdSN: 0x0d,
      maxCmdSN: 0x2d,
      r2tSN: 1,
      bufferOffset: 0x40000,
      desiredDataTransferLength: 0x40000,
    });
  });
});

describe('Login Request (0x03) and Login Response (0x23)', () => {
  it('parses a Login Request: I bit, T=1, CSG=1 → NSG=3, versions, ISID, TSIH, CID, CmdSN', () => {
    const b = bhs(`
      43 87 00 00   # I + Login Request, T, CSG=1 (operational), NSG=3 (full feature); Version-max 0, Version-min 0
      00 00 00 1c   # DataSegmentLength 28
      40 00 01 37 00 00   # ISID (type 01b random, A=0, B=0x0001, C=0x37, D=0)
      00 00         # TSIH 0: new session
      00 00 00 01   # ITT
      00 00 00 00   # CID 0, reserved
      00 00 00 01   # CmdSN
      00 00 00 00   # ExpStatSN
      00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00`);
    const data = Buffer.from('InitiatorAlias=spindle-test\0');
    assert.equal(data.length, 0x1c);
    const req = parseLoginRequest(b, data);
    assert.equal(req.opcode, Opcode.LOGIN_REQUEST);
    assert.equal(req.transit, true);
    assert.equal(req.continue, false);
    assert.equal(req.csg, Stage.LOGIN_OPERATIONAL_NEGOTIATION);
    assert.equal(req.nsg, Stage.FULL_FEATURE_PHASE);
    assert.equal(req.versionMax, 0);
    assert.equal(req.versionMin, 0);
    assert.equal(formatIsid(req.isid), '400001370000');
    assert.equal(req.tsih, 0);
    assert.equal(req.itt, 1);
    assert.equal(req.cid, 0);
    assert.equal(req.cmdSN, 1);
    assert.equal(req.data, data);
    assert.deepEqual(encodeLoginRequest(req), b, 'encodes back to the same bytes, I bit included');
  });

  it('parses a Login Response with Status-Class 2 / Status-Detail 1 (authentication failure)', () => {
    const b = bhs(`
      23 00 00 00   # Login Response, T=0, CSG=0 (security); Version-max 0, Version-active 0
      00 00 00 00
      40 00 01 37 00 00  00 00   # ISID, TSIH 0
      00 00 00 01   # ITT
      00 00 00 00
      00 00 00 00   # StatSN
      00 00 00 01   # ExpCmdSN
      00 00 00 01   # MaxCmdSN
      02 01 00 00   # Status-Class 2, Status-Detail 1
      00 00 00 00  00 00 00 00`);
    const rsp = parseLoginResponse(b);
    assert.equal(rsp.transit, false);
    assert.equal(rsp.csg, Stage.SECURITY_NEGOTIATION);
    assert.equal(rsp.statusClass, LoginStatus.AUTHENTICATION_FAILURE.statusClass);
    assert.equal(rsp.statusDetail, LoginStatus.AUTHENTICATION_FAILURE.statusDetail);
    assert.equal(rsp.expCmdSN, 1);
  });

  it('refuses to encode a Login PDU with both T and C set', () => {
    const req = parseLoginRequest(Buffer.from([0x43, 0x87, ...new Array(46).fill(0)]));
    assert.throws(() => encodeLoginRequest({ ...req, continue: true }), RangeError);
  });
});

describe('Text (0x04/0x24), NOP (0x00/0x20), Task Management (0x02/0x22), Logout (0x06/0x26)', () => {
  it('parses a SendTargets Text Request (I, F, TTT reserved) and a continued Text Response (C, TTT set)', () => {
    const req = parseTextRequest(
      bhs(`
        44 80 00 00  00 00 00 10  00 00 00 00  00 00 00 00
        00 00 00 02  ff ff ff ff  00 00 00 02  00 00 00 01
        00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00`),
      Buffer.from('SendTargets=All\0'),
    );
    assert.equal(req.immediate, true);
    assert.equal(req.final, true);
    assert.equal(req.continue, false);
    assert.equal(req.ttt, RESERVED_TAG);
    assert.equal(req.cmdSN, 2);
    assert.equal(req.expStatSN, 1);
    const rsp = parseTextResponse(
      bhs(`
        24 40 00 00  00 00 00 00  00 00 00 00  00 00 00 00
        00 00 00 02  00 00 00 05  00 00 00 01  00 00 00 03
        00 00 00 22  00 00 00 00  00 00 00 00  00 00 00 00`),
    );
    assert.equal(rsp.final, false);
    assert.equal(rsp.continue, true);
    assert.equal(rsp.ttt, 5);
    assert.equal(rsp.statSN, 1);
    assert.equal(rsp.expCmdSN, 3);
    assert.equal(rsp.maxCmdSN, 0x22);
  });

  it('parses a NOP-Out ping with data and a target-initiated NOP-In (ITT reserved, TTT set)', () => {
    const out = parseNopOut(
      bhs(`
        40 80 00 00  00 00 00 04  00 00 00 00  00 00 00 00
        00 00 00 30  ff ff ff ff  00 00 00 08  00 00 00 07
        00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00`),
      Buffer.from('ping'),
    );
    assert.equal(out.immediate, true);
    assert.equal(out.itt, 0x30);
    assert.equal(out.ttt, RESERVED_TAG);
    assert.equal(out.cmdSN, 8);
    assert.equal(out.expStatSN, 7);
    assert.equal(out.data.toString(), 'ping');
    const nopIn = parseNopIn(
      bhs(`
        20 80 00 00  00 00 00 00  00 00 00 00  00 00 00 00
        ff ff ff ff  00 00 00 09  00 00 00 07  00 00 00 08
        00 00 00 28  00 00 00 00  00 00 00 00  00 00 00 00`),
    );
    assert.equal(nopIn.itt, RESERVED_TAG);
    assert.equal(nopIn.ttt, 9);
    assert.equal(nopIn.statSN, 7);
    assert.equal(nopIn.maxCmdSN, 0x28);
  });

  it('parses ABORT TASK (function 1, Referenced Task Tag, RefCmdSN) and its Function complete response', () => {
    const req = parseTaskMgmtRequest(
      bhs(`
        42 81 00 00  00 00 00 00  00 03 00 00  00 00 00 00   # I, F + ABORT TASK, LUN 3
        00 00 00 50  00 00 00 21  00 00 00 0f  00 00 00 0e   # ITT, Referenced Task Tag, CmdSN, ExpStatSN
        00 00 00 0c  00 00 00 00  00 00 00 00  00 00 00 00   # RefCmdSN`),
    );
    assert.equal(req.immediate, true);
    assert.equal(req.function, TmfFunction.ABORT_TASK);
    assert.equal(req.lun, 3);
    assert.equal(req.itt, 0x50);
    assert.equal(req.referencedTaskTag, 0x21);
    assert.equal(req.cmdSN, 0x0f);
    assert.equal(req.expStatSN, 0x0e);
    assert.equal(req.refCmdSN, 0x0c);
    const rsp = parseTaskMgmtResponse(
      bhs(`
        22 80 00 00  00 00 00 00  00 00 00 00  00 00 00 00
        00 00 00 50  00 00 00 00  00 00 00 0e  00 00 00 10
        00 00 00 30  00 00 00 00  00 00 00 00  00 00 00 00`),
    );
    assert.equal(rsp.response, TmfResponse.FUNCTION_COMPLETE);
    assert.equal(rsp.statSN, 0x0e);
  });

  it('parses a Logout Request (close connection, CID 1) and a response with Time2Wait/Time2Retain', () => {
    const req = parseLogoutRequest(
      bhs(`
        46 81 00 00  00 00 00 00  00 00 00 00  00 00 00 00
        00 00 00 60  00 01 00 00  00 00 00 11  00 00 00 12
        00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00`),
    );
    assert.equal(req.reasonCode, LogoutReason.CLOSE_CONNECTION);
    assert.equal(req.cid, 1);
    assert.equal(req.cmdSN, 0x11);
    const rsp = parseLogoutResponse(
      bhs(`
        26 80 02 00  00 00 00 00  00 00 00 00  00 00 00 00
        00 00 00 60  00 00 00 00  00 00 00 12  00 00 00 12
        00 00 00 30  00 00 00 00  00 02 00 14  00 00 00 00`),
    );
    assert.equal(rsp.response, LogoutResponseCode.CONNECTION_RECOVERY_NOT_SUPPORTED);
    assert.equal(rsp.time2Wait, 2);
    assert.equal(rsp.time2Retain, 20);
  });
});

describe('Reject (0x3f), Async Message (0x32), SNACK (0x10)', () => {
  it('parses a Reject for a data digest error that carries the rejected BHS as its data', () => {
    const rejected = bhs(`
      05 80 00 00  00 00 02 00  00 00 00 00  00 00 00 00
      00 00 00 11  00 00 00 99  00 00 00 00  00 00 00 04
      00 00 00 00  00 00 00 03  00 00 30 00  00 00 00 00`);
    const rej = parseReject(
      bhs(`
        3f 80 02 00  00 00 00 30  00 00 00 00  00 00 00 00   # Reason 0x02, DataSegmentLength 48
        ff ff ff ff  00 00 00 00  00 00 00 05  00 00 00 06
        00 00 00 26  00 00 00 00  00 00 00 00  00 00 00 00`),
      rejected,
    );
    assert.equal(rej.reason, RejectReason.DATA_DIGEST_ERROR);
    assert.equal(rej.statSN, 5);
    assert.equal(readOpcode(rejectedBhs(rej)!), Opcode.SCSI_DATA_OUT);
    assert.equal(rejectedBhs({ data: Buffer.alloc(10) }), undefined);
  });

  it('parses an Async Message asking for logout within Parameter3 seconds', () => {
    const msg = parseAsyncMessage(
      bhs(`
        32 80 00 00  00 00 00 00  00 00 00 00  00 00 00 00
        ff ff ff ff  00 00 00 00  00 00 00 09  00 00 00 0a
        00 00 00 2a  01 00 00 00  00 00 00 05  00 00 00 00   # AsyncEvent 1, Parameter3 5`),
    );
    assert.equal(msg.asyncEvent, AsyncEvent.LOGOUT_REQUESTED);
    assert.equal(msg.parameter3, 5);
    assert.equal(msg.statSN, 9);
  });

  it('parses a Status SNACK with BegRun and RunLength', () => {
    const snack = parseSnackRequest(
      bhs(`
        10 81 00 00  00 00 00 00  00 00 00 00  00 00 00 00   # F + type 1 (Status)
        ff ff ff ff  ff ff ff ff  00 00 00 00  00 00 00 07
        00 00 00 00  00 00 00 00  00 00 00 05  00 00 00 02`),
    );
    assert.equal(snack.type, SnackType.STATUS);
    assert.equal(snack.itt, RESERVED_TAG);
    assert.equal(snack.expStatSN, 7);
    assert.equal(snack.begRun, 5);
    assert.equal(snack.runLength, 2);
  });
});

describe('encode → parse round trips and the dispatcher', () => {
  const isid = 0x023d00010000;
  const samples: Pdu[] = [
    { opcode: Opcode.NOP_OUT, immediate: true, lun: 0, itt: 1, ttt: RESERVED_TAG, cmdSN: 2, expStatSN: 3, data: Buffer.from('abc') },
    {
      opcode: Opcode.SCSI_COMMAND,
      immediate: false,
      final: true,
      read: false,
      write: true,
      taskAttribute: TaskAttribute.ORDERED,
      lun: 300,
      itt: 0xfffffffe,
      expectedDataTransferLength: 65536,
      cmdSN: 0xffffffff,
      expStatSN: 0,
      cdb: hex('8a 00 00 00 00 00 00 00 00 10 00 00 00 80 00 00'),
      bidirectionalReadExpectedDataTransferLength: 0,
      data: Buffer.alloc(8192, 1),
    },
    {
      opcode: Opcode.TASK_MGMT_REQUEST,
      immediate: true,
      function: TmfFunction.LOGICAL_UNIT_RESET,
      lun: 1,
      itt: 9,
      referencedTaskTag: RESERVED_TAG,
      cmdSN: 4,
      expStatSN: 5,
      refCmdSN: 0,
      expDataSN: 0,
    },
    {
      opcode: Opcode.LOGIN_REQUEST,
      transit: false,
      continue: true,
      csg: Stage.SECURITY_NEGOTIATION,
      nsg: 0,
      versionMax: 0,
      versionMin: 0,
      isid,
      tsih: 0x1234,
      itt: 0,
      cid: 7,
      cmdSN: 1,
      expStatSN: 0,
      data: Buffer.from('AuthMethod=CHAP,None\0'),
    },
    { opcode: Opcode.TEXT_REQUEST, immediate: false, final: true, continue: false, lun: 0, itt: 3, ttt: 77, cmdSN: 5, expStatSN: 6, data: EMPTY_BUFFER },
    { opcode: Opcode.SCSI_DATA_OUT, final: false, lun: 16383, itt: 3, ttt: 4, expStatSN: 5, dataSN: 6, bufferOffset: 7, data: Buffer.alloc(3) },
    { opcode: Opcode.LOGOUT_REQUEST, immediate: true, reasonCode: LogoutReason.CLOSE_SESSION, itt: 8, cid: 0, cmdSN: 9, expStatSN: 10 },
    { opcode: Opcode.SNACK_REQUEST, type: SnackType.R_DATA, lun: 0, itt: 1, tttOrSnackTag: 2, expStatSN: 3, begRun: 0, runLength: 0 },
    { opcode: Opcode.NOP_IN, lun: 0, itt: 1, ttt: RESERVED_TAG, statSN: 2, expCmdSN: 3, maxCmdSN: 4, data: Buffer.from('abc') },
    {
      opcode: Opcode.SCSI_RESPONSE,
      bidirectionalReadResidualOverflow: true,
      bidirectionalReadResidualUnderflow: false,
      residualOverflow: true,
      residualUnderflow: false,
      response: 0,
      status: ScsiStatus.GOOD,
      itt: 1,
      snackTag: 0,
      statSN: 2,
      expCmdSN: 3,
      maxCmdSN: 4,
      expDataSN: 5,
      bidirectionalReadResidualCount: 6,
      residualCount: 7,
      data: EMPTY_BUFFER,
    },
    { opcode: Opcode.TASK_MGMT_RESPONSE, response: TmfResponse.FUNCTION_REJECTED, itt: 1, statSN: 2, expCmdSN: 3, maxCmdSN: 4 },
    {
      opcode: Opcode.LOGIN_RESPONSE,
      transit: true,
      continue: false,
      csg: Stage.LOGIN_OPERATIONAL_NEGOTIATION,
      nsg: Stage.FULL_FEATURE_PHASE,
      versionMax: 0,
      versionActive: 0,
      isid,
      tsih: 1,
      itt: 0,
      statSN: 0x10,
      expCmdSN: 2,
      maxCmdSN: 33,
      statusClass: 0,
      statusDetail: 0,
      data: Buffer.from('HeaderDigest=None\0'),
    },
    { opcode: Opcode.TEXT_RESPONSE, final: true, continue: false, lun: 0, itt: 3, ttt: RESERVED_TAG, statSN: 5, expCmdSN: 6, maxCmdSN: 7, data: Buffer.from('a=b\0') },
    {
      opcode: Opcode.SCSI_DATA_IN,
      final: true,
      acknowledge: true,
      residualOverflow: false,
      residualUnderflow: true,
      statusPresent: true,
      status: ScsiStatus.GOOD,
      lun: 4,
      itt: 1,
      ttt: 2,
      statSN: 3,
      expCmdSN: 4,
      maxCmdSN: 5,
      dataSN: 6,
      bufferOffset: 7,
      residualCount: 8,
      data: Buffer.alloc(1000, 7),
    },
    { opcode: Opcode.LOGOUT_RESPONSE, response: 0, itt: 1, statSN: 2, expCmdSN: 3, maxCmdSN: 4, time2Wait: 0, time2Retain: 0 },
    { opcode: Opcode.R2T, lun: 1, itt: 2, ttt: 3, statSN: 4, expCmdSN: 5, maxCmdSN: 6, r2tSN: 7, bufferOffset: 8, desiredDataTransferLength: 9 },
    {
      opcode: Opcode.ASYNC_MESSAGE,
      lun: 0,
      statSN: 1,
      expCmdSN: 2,
      maxCmdSN: 3,
      asyncEvent: AsyncEvent.CONNECTION_WILL_DROP,
      asyncVCode: 0,
      parameter1: 1,
      parameter2: 2,
      parameter3: 20,
      data: EMPTY_BUFFER,
    },
    { opcode: Opcode.REJECT, reason: RejectReason.PROTOCOL_ERROR, statSN: 1, expCmdSN: 2, maxCmdSN: 3, dataSN: 0, data: Buffer.alloc(48, 9) },
  ];

  for (const pdu of samples) {
    it(`${opcodeName(pdu.opcode)} survives encodePdu → parsePdu unchanged`, () => {
      const header = encodePdu(pdu);
      assert.equal(header.length, BHS_LENGTH);
      assert.equal(readOpcode(header), pdu.opcode);
      assert.equal(readDataSegmentLength(header), pduData(pdu).length);
      assert.deepEqual(parsePdu(header, pduData(pdu)), pdu);
    });
  }

  it('covers every opcode RFC 7143 defines', () => {
    const covered = new Set(samples.map((p) => p.opcode));
    for (const op of Object.values(Opcode)) assert.ok(covered.has(op), opcodeName(op));
  });

  it('encoding into a reused dirty buffer zeroes every reserved byte', () => {
    const scratch = Buffer.alloc(48, 0xff);
    const fresh = encodePdu(samples[0]);
    assert.equal(encodePdu(samples[0], scratch), scratch);
    assert.deepEqual(scratch, fresh);
  });

  it('parsePdu rejects an undefined opcode with reason Command not supported; parseX rejects another opcode', () => {
    const b = Buffer.alloc(48);
    b[0] = 0x1c;
    assert.throws(
      () => parsePdu(b),
      (e: unknown) => e instanceof PduFormatError && e.code === 'WRONG_OPCODE' && e.rejectReason === RejectReason.COMMAND_NOT_SUPPORTED,
    );
    b[0] = Opcode.NOP_OUT;
    assert.throws(() => parseR2T(b), (e: unknown) => e instanceof PduFormatError && e.code === 'WRONG_OPCODE');
  });
});
