/**
 * SCSI CDB helpers shared by the target and the initiator: operation codes,
 * LUN encoding (SAM-5 §4.7), reading the LBA / transfer length of the block
 * commands, and builders for the CDBs an initiator sends.
 *
 * LBAs are plain numbers. Nothing Spindle serves or mounts comes near 2^53
 * blocks, so a 64-bit LBA at or above 2^53 is reported as `Infinity` by the
 * readers — out of range for any capacity, without a BigInt on the hot path.
 */

/** Operation codes (SPC-4 / SBC-3 / SBC-4). */
export const ScsiOp = {
  TEST_UNIT_READY: 0x00,
  REQUEST_SENSE: 0x03,
  FORMAT_UNIT: 0x04,
  READ_6: 0x08,
  WRITE_6: 0x0a,
  INQUIRY: 0x12,
  MODE_SELECT_6: 0x15,
  RESERVE_6: 0x16,
  RELEASE_6: 0x17,
  MODE_SENSE_6: 0x1a,
  START_STOP_UNIT: 0x1b,
  RECEIVE_DIAGNOSTIC_RESULTS: 0x1c,
  SEND_DIAGNOSTIC: 0x1d,
  PREVENT_ALLOW_MEDIUM_REMOVAL: 0x1e,
  READ_CAPACITY_10: 0x25,
  READ_10: 0x28,
  WRITE_10: 0x2a,
  WRITE_AND_VERIFY_10: 0x2e,
  VERIFY_10: 0x2f,
  PRE_FETCH_10: 0x34,
  SYNCHRONIZE_CACHE_10: 0x35,
  READ_DEFECT_DATA_10: 0x37,
  WRITE_BUFFER: 0x3b,
  READ_BUFFER: 0x3c,
  WRITE_SAME_10: 0x41,
  UNMAP: 0x42,
  LOG_SELECT: 0x4c,
  LOG_SENSE: 0x4d,
  SANITIZE: 0x48,
  MODE_SELECT_10: 0x55,
  RESERVE_10: 0x56,
  RELEASE_10: 0x57,
  MODE_SENSE_10: 0x5a,
  PERSISTENT_RESERVE_IN: 0x5e,
  PERSISTENT_RESERVE_OUT: 0x5f,
  EXTENDED_COPY: 0x83,
  RECEIVE_COPY_RESULTS: 0x84,
  READ_16: 0x88,
  COMPARE_AND_WRITE: 0x89,
  WRITE_16: 0x8a,
  ORWRITE_16: 0x8b,
  WRITE_AND_VERIFY_16: 0x8e,
  VERIFY_16: 0x8f,
  PRE_FETCH_16: 0x90,
  SYNCHRONIZE_CACHE_16: 0x91,
  WRITE_SAME_16: 0x93,
  WRITE_ATOMIC_16: 0x9c,
  SERVICE_ACTION_IN_16: 0x9e,
  REPORT_LUNS: 0xa0,
  MAINTENANCE_IN: 0xa3,
  MAINTENANCE_OUT: 0xa4,
  READ_12: 0xa8,
  WRITE_12: 0xaa,
  WRITE_AND_VERIFY_12: 0xae,
  VERIFY_12: 0xaf,
  READ_DEFECT_DATA_12: 0xb7,
} as const;
export type ScsiOp = (typeof ScsiOp)[keyof typeof ScsiOp];

/** SERVICE ACTION IN(16) service actions. */
export const ServiceActionIn16 = { READ_CAPACITY_16: 0x10, GET_LBA_STATUS: 0x12 } as const;
/** MAINTENANCE IN service actions. */
export const MaintenanceIn = {
  REPORT_TARGET_PORT_GROUPS: 0x0a,
  REPORT_SUPPORTED_OPERATION_CODES: 0x0c,
  REPORT_SUPPORTED_TASK_MANAGEMENT_FUNCTIONS: 0x0d,
} as const;
/** PERSISTENT RESERVE IN service actions. */
export const PrIn = { READ_KEYS: 0, READ_RESERVATION: 1, REPORT_CAPABILITIES: 2, READ_FULL_STATUS: 3 } as const;
/** PERSISTENT RESERVE OUT service actions. */
export const PrOut = {
  REGISTER: 0,
  RESERVE: 1,
  RELEASE: 2,
  CLEAR: 3,
  PREEMPT: 4,
  PREEMPT_AND_ABORT: 5,
  REGISTER_AND_IGNORE_EXISTING_KEY: 6,
  REGISTER_AND_MOVE: 7,
} as const;
/** Persistent reservation TYPE values. */
export const PrType = {
  WRITE_EXCLUSIVE: 1,
  EXCLUSIVE_ACCESS: 3,
  WRITE_EXCLUSIVE_REGISTRANTS_ONLY: 5,
  EXCLUSIVE_ACCESS_REGISTRANTS_ONLY: 6,
  WRITE_EXCLUSIVE_ALL_REGISTRANTS: 7,
  EXCLUSIVE_ACCESS_ALL_REGISTRANTS: 8,
} as const;

/** Length of a CDB from its group code (SPC-4 §4.2.5.1); 0 for the vendor/reserved groups. */
export function cdbLengthForOpcode(opcode: number): number {
  switch (opcode >> 5) {
    case 0:
      return 6;
    case 1:
    case 2:
      return 10;
    case 4:
      return 16;
    case 5:
      return 12;
    default:
      return 0;
  }
}

// ---------------------------------------------------------------------------
// LUN field (SAM-5 §4.7)
// ---------------------------------------------------------------------------

/** Highest LUN the flat-space format (01b) can address. */
export const MAX_FLAT_LUN = 0x3fff;

/** 8-byte LUN field: peripheral addressing below 256, flat space up to 16383. */
export function encodeLun(lun: number, out: Buffer = Buffer.alloc(8), at = 0): Buffer {
  if (!Number.isInteger(lun) || lun < 0 || lun > MAX_FLAT_LUN) throw new RangeError(`LUN ${lun} is outside 0..${MAX_FLAT_LUN}`);
  out.fill(0, at, at + 8);
  if (lun < 256) {
    out[at + 1] = lun;
  } else {
    out[at] = 0x40 | (lun >> 8);
    out[at + 1] = lun & 0xff;
  }
  return out;
}

/**
 * LUN number from an 8-byte LUN field (single level, peripheral or flat
 * space addressing). Returns -1 for any other form, which no LU answers to.
 */
export function decodeLun(buf: Buffer, at = 0): number {
  for (let i = at + 2; i < at + 8; i++) if (buf[i] !== 0) return -1;
  const method = buf[at] >> 6;
  if (method === 0) return buf[at] === 0 ? buf[at + 1] : -1;
  if (method === 1) return ((buf[at] & 0x3f) << 8) | buf[at + 1];
  return -1;
}

// ---------------------------------------------------------------------------
// Readers
// ---------------------------------------------------------------------------

const TWO_32 = 0x1_0000_0000;

/** Big-endian 64-bit unsigned as a number; `Infinity` from 2^53 up. */
export function readU64(buf: Buffer, at: number): number {
  const hi = buf.readUInt32BE(at);
  if (hi >= 0x200000) return Infinity;
  return hi * TWO_32 + buf.readUInt32BE(at + 4);
}

/** LBA and TRANSFER LENGTH (in blocks) of a READ/WRITE/VERIFY-style CDB. */
export interface LbaRange {
  lba: number;
  blocks: number;
}

/**
 * LBA / transfer length of the block commands, by CDB layout. READ(6) and
 * WRITE(6) turn a transfer length of 0 into 256 (SBC-3 §5.15).
 */
export function readLbaRange(cdb: Buffer): LbaRange {
  switch (cdb[0]) {
    case ScsiOp.READ_6:
    case ScsiOp.WRITE_6: {
      const lba = ((cdb[1] & 0x1f) << 16) | (cdb[2] << 8) | cdb[3];
      return { lba, blocks: cdb[4] === 0 ? 256 : cdb[4] };
    }
    case ScsiOp.READ_12:
    case ScsiOp.WRITE_12:
    case ScsiOp.WRITE_AND_VERIFY_12:
    case ScsiOp.VERIFY_12:
      return { lba: cdb.readUInt32BE(2), blocks: cdb.readUInt32BE(6) };
    case ScsiOp.READ_16:
    case ScsiOp.WRITE_16:
    case ScsiOp.WRITE_AND_VERIFY_16:
    case ScsiOp.VERIFY_16:
    case ScsiOp.ORWRITE_16:
    case ScsiOp.PRE_FETCH_16:
    case ScsiOp.SYNCHRONIZE_CACHE_16:
    case ScsiOp.WRITE_SAME_16:
      return { lba: readU64(cdb, 2), blocks: cdb.readUInt32BE(10) };
    case ScsiOp.WRITE_ATOMIC_16:
      return { lba: readU64(cdb, 2), blocks: cdb.readUInt16BE(12) };
    case ScsiOp.COMPARE_AND_WRITE:
      return { lba: readU64(cdb, 2), blocks: cdb[13] };
    default:
      // 10-byte layout: READ/WRITE/VERIFY/WRITE AND VERIFY/PRE-FETCH/SYNCHRONIZE CACHE/WRITE SAME (10).
      return { lba: cdb.readUInt32BE(2), blocks: cdb.readUInt16BE(7) };
  }
}

// ---------------------------------------------------------------------------
// Builders (initiator side)
// ---------------------------------------------------------------------------

function cdb(length: number, opcode: number): Buffer {
  const b = Buffer.alloc(length);
  b[0] = opcode;
  return b;
}

function writeU64(buf: Buffer, at: number, value: number): void {
  buf.writeUInt32BE(Math.floor(value / TWO_32) >>> 0, at);
  buf.writeUInt32BE(value >>> 0, at + 4);
}

export interface RwFlags {
  fua?: boolean;
  dpo?: boolean;
  /** RDPROTECT / WRPROTECT / VRPROTECT (0..7). */
  protect?: number;
  group?: number;
}

function rwByte1(flags: RwFlags): number {
  return ((flags.protect ?? 0) << 5) | (flags.dpo ? 0x10 : 0) | (flags.fua ? 0x08 : 0);
}

export function cdbTestUnitReady(): Buffer {
  return cdb(6, ScsiOp.TEST_UNIT_READY);
}

export function cdbRequestSense(allocationLength = 252, descriptor = false): Buffer {
  const b = cdb(6, ScsiOp.REQUEST_SENSE);
  if (descriptor) b[1] = 0x01;
  b[4] = Math.min(allocationLength, 0xff);
  return b;
}

export function cdbInquiry(allocationLength = 255, vpdPage?: number): Buffer {
  const b = cdb(6, ScsiOp.INQUIRY);
  if (vpdPage !== undefined) {
    b[1] = 0x01;
    b[2] = vpdPage;
  }
  b.writeUInt16BE(Math.min(allocationLength, 0xffff), 3);
  return b;
}

export function cdbReadCapacity10(): Buffer {
  return cdb(10, ScsiOp.READ_CAPACITY_10);
}

export function cdbReadCapacity16(allocationLength = 32): Buffer {
  const b = cdb(16, ScsiOp.SERVICE_ACTION_IN_16);
  b[1] = ServiceActionIn16.READ_CAPACITY_16;
  b.writeUInt32BE(allocationLength, 10);
  return b;
}

export function cdbReportLuns(allocationLength = 4096, selectReport = 0): Buffer {
  const b = cdb(12, ScsiOp.REPORT_LUNS);
  b[2] = selectReport;
  b.writeUInt32BE(allocationLength, 6);
  return b;
}

export function cdbRead6(lba: number, blocks: number): Buffer {
  const b = cdb(6, ScsiOp.READ_6);
  b[1] = (lba >> 16) & 0x1f;
  b.writeUInt16BE(lba & 0xffff, 2);
  b[4] = blocks & 0xff;
  return b;
}

export function cdbWrite6(lba: number, blocks: number): Buffer {
  const b = cdbRead6(lba, blocks);
  b[0] = ScsiOp.WRITE_6;
  return b;
}

function rw10(opcode: number, lba: number, blocks: number, flags: RwFlags): Buffer {
  const b = cdb(10, opcode);
  b[1] = rwByte1(flags);
  b.writeUInt32BE(lba >>> 0, 2);
  b[6] = (flags.group ?? 0) & 0x1f;
  b.writeUInt16BE(blocks, 7);
  return b;
}

function rw12(opcode: number, lba: number, blocks: number, flags: RwFlags): Buffer {
  const b = cdb(12, opcode);
  b[1] = rwByte1(flags);
  b.writeUInt32BE(lba >>> 0, 2);
  b.writeUInt32BE(blocks >>> 0, 6);
  b[10] = (flags.group ?? 0) & 0x1f;
  return b;
}

function rw16(opcode: number, lba: number, blocks: number, flags: RwFlags): Buffer {
  const b = cdb(16, opcode);
  b[1] = rwByte1(flags);
  writeU64(b, 2, lba);
  b.writeUInt32BE(blocks >>> 0, 10);
  b[14] = (flags.group ?? 0) & 0x1f;
  return b;
}

export const cdbRead10 = (lba: number, blocks: number, flags: RwFlags = {}): Buffer => rw10(ScsiOp.READ_10, lba, blocks, flags);
export const cdbRead12 = (lba: number, blocks: number, flags: RwFlags = {}): Buffer => rw12(ScsiOp.READ_12, lba, blocks, flags);
export const cdbRead16 = (lba: number, blocks: number, flags: RwFlags = {}): Buffer => rw16(ScsiOp.READ_16, lba, blocks, flags);
export const cdbWrite10 = (lba: number, blocks: number, flags: RwFlags = {}): Buffer => rw10(ScsiOp.WRITE_10, lba, blocks, flags);
export const cdbWrite12 = (lba: number, blocks: number, flags: RwFlags = {}): Buffer => rw12(ScsiOp.WRITE_12, lba, blocks, flags);
export const cdbWrite16 = (lba: number, blocks: number, flags: RwFlags = {}): Buffer => rw16(ScsiOp.WRITE_16, lba, blocks, flags);

/** VERIFY(10/12/16); `bytchk` 0 (medium only), 1 (compare) or 3 (one block against all). */
export function cdbVerify(size: 10 | 12 | 16, lba: number, blocks: number, bytchk: number, flags: RwFlags = {}): Buffer {
  const op = size === 10 ? ScsiOp.VERIFY_10 : size === 12 ? ScsiOp.VERIFY_12 : ScsiOp.VERIFY_16;
  const b = size === 10 ? rw10(op, lba, blocks, flags) : size === 12 ? rw12(op, lba, blocks, flags) : rw16(op, lba, blocks, flags);
  b[1] = (b[1] & ~0x0e) | ((bytchk & 0x03) << 1);
  return b;
}

export function cdbWriteAndVerify(size: 10 | 12 | 16, lba: number, blocks: number, bytchk = 1, flags: RwFlags = {}): Buffer {
  const op = size === 10 ? ScsiOp.WRITE_AND_VERIFY_10 : size === 12 ? ScsiOp.WRITE_AND_VERIFY_12 : ScsiOp.WRITE_AND_VERIFY_16;
  const b = size === 10 ? rw10(op, lba, blocks, flags) : size === 12 ? rw12(op, lba, blocks, flags) : rw16(op, lba, blocks, flags);
  b[1] = (b[1] & ~0x0e) | ((bytchk & 0x03) << 1);
  return b;
}

export interface WriteSameFlags {
  unmap?: boolean;
  anchor?: boolean;
  /** WRITE SAME(16) only: no Data-Out, the block is zeros. */
  ndob?: boolean;
  protect?: number;
}

export function cdbWriteSame10(lba: number, blocks: number, flags: WriteSameFlags = {}): Buffer {
  const b = cdb(10, ScsiOp.WRITE_SAME_10);
  b[1] = ((flags.protect ?? 0) << 5) | (flags.anchor ? 0x10 : 0) | (flags.unmap ? 0x08 : 0);
  b.writeUInt32BE(lba >>> 0, 2);
  b.writeUInt16BE(blocks, 7);
  return b;
}

export function cdbWriteSame16(lba: number, blocks: number, flags: WriteSameFlags = {}): Buffer {
  const b = cdb(16, ScsiOp.WRITE_SAME_16);
  b[1] = ((flags.protect ?? 0) << 5) | (flags.anchor ? 0x10 : 0) | (flags.unmap ? 0x08 : 0) | (flags.ndob ? 0x01 : 0);
  writeU64(b, 2, lba);
  b.writeUInt32BE(blocks >>> 0, 10);
  return b;
}

/** UNMAP CDB for a parameter list of `parameterListLength` bytes. */
export function cdbUnmap(parameterListLength: number, anchor = false): Buffer {
  const b = cdb(10, ScsiOp.UNMAP);
  if (anchor) b[1] = 0x01;
  b.writeUInt16BE(parameterListLength, 7);
  return b;
}

/** UNMAP parameter list for the given extents. */
export function unmapParameterList(extents: ReadonlyArray<{ lba: number; blocks: number }>): Buffer {
  const b = Buffer.alloc(8 + 16 * extents.length);
  b.writeUInt16BE(b.length - 2, 0);
  b.writeUInt16BE(16 * extents.length, 2);
  extents.forEach((e, i) => {
    writeU64(b, 8 + 16 * i, e.lba);
    b.writeUInt32BE(e.blocks >>> 0, 16 + 16 * i);
  });
  return b;
}

export function cdbSynchronizeCache10(lba = 0, blocks = 0, immed = false): Buffer {
  const b = cdb(10, ScsiOp.SYNCHRONIZE_CACHE_10);
  if (immed) b[1] = 0x02;
  b.writeUInt32BE(lba >>> 0, 2);
  b.writeUInt16BE(blocks, 7);
  return b;
}

export function cdbSynchronizeCache16(lba = 0, blocks = 0, immed = false): Buffer {
  const b = cdb(16, ScsiOp.SYNCHRONIZE_CACHE_16);
  if (immed) b[1] = 0x02;
  writeU64(b, 2, lba);
  b.writeUInt32BE(blocks >>> 0, 10);
  return b;
}

export function cdbCompareAndWrite(lba: number, blocks: number, flags: RwFlags = {}): Buffer {
  const b = cdb(16, ScsiOp.COMPARE_AND_WRITE);
  b[1] = rwByte1(flags);
  writeU64(b, 2, lba);
  b[13] = blocks;
  return b;
}

export function cdbGetLbaStatus(lba: number, allocationLength = 4096): Buffer {
  const b = cdb(16, ScsiOp.SERVICE_ACTION_IN_16);
  b[1] = ServiceActionIn16.GET_LBA_STATUS;
  writeU64(b, 2, lba);
  b.writeUInt32BE(allocationLength, 10);
  return b;
}

export interface ModeSenseOptions {
  /** Page code (0x3f: all pages). */
  page: number;
  subpage?: number;
  /** 0 current, 1 changeable, 2 default, 3 saved. */
  pageControl?: number;
  /** Disable block descriptors. */
  dbd?: boolean;
  allocationLength?: number;
}

export function cdbModeSense6(o: ModeSenseOptions): Buffer {
  const b = cdb(6, ScsiOp.MODE_SENSE_6);
  if (o.dbd) b[1] = 0x08;
  b[2] = ((o.pageControl ?? 0) << 6) | (o.page & 0x3f);
  b[3] = o.subpage ?? 0;
  b[4] = Math.min(o.allocationLength ?? 0xff, 0xff);
  return b;
}

export function cdbModeSense10(o: ModeSenseOptions & { llbaa?: boolean }): Buffer {
  const b = cdb(10, ScsiOp.MODE_SENSE_10);
  b[1] = (o.dbd ? 0x08 : 0) | (o.llbaa ? 0x10 : 0);
  b[2] = ((o.pageControl ?? 0) << 6) | (o.page & 0x3f);
  b[3] = o.subpage ?? 0;
  b.writeUInt16BE(Math.min(o.allocationLength ?? 0xffff, 0xffff), 7);
  return b;
}

export function cdbModeSelect6(parameterListLength: number, savePages = false): Buffer {
  const b = cdb(6, ScsiOp.MODE_SELECT_6);
  b[1] = 0x10 | (savePages ? 0x01 : 0);
  b[4] = parameterListLength;
  return b;
}

export function cdbModeSelect10(parameterListLength: number, savePages = false): Buffer {
  const b = cdb(10, ScsiOp.MODE_SELECT_10);
  b[1] = 0x10 | (savePages ? 0x01 : 0);
  b.writeUInt16BE(parameterListLength, 7);
  return b;
}

export function cdbPersistentReserveIn(serviceAction: number, allocationLength = 8192): Buffer {
  const b = cdb(10, ScsiOp.PERSISTENT_RESERVE_IN);
  b[1] = serviceAction & 0x1f;
  b.writeUInt16BE(allocationLength, 7);
  return b;
}

export function cdbPersistentReserveOut(serviceAction: number, type = 0, parameterListLength = 24, scope = 0): Buffer {
  const b = cdb(10, ScsiOp.PERSISTENT_RESERVE_OUT);
  b[1] = serviceAction & 0x1f;
  b[2] = ((scope & 0x0f) << 4) | (type & 0x0f);
  b.writeUInt32BE(parameterListLength, 5);
  return b;
}

/** Basic PERSISTENT RESERVE OUT parameter list (24 bytes). */
export function prOutParameters(reservationKey: bigint, serviceActionKey = 0n, flags: { aptpl?: boolean; allTgPt?: boolean; specIPt?: boolean } = {}): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64BE(reservationKey, 0);
  b.writeBigUInt64BE(serviceActionKey, 8);
  b[20] = (flags.specIPt ? 0x08 : 0) | (flags.allTgPt ? 0x04 : 0) | (flags.aptpl ? 0x01 : 0);
  return b;
}

export function cdbStartStopUnit(o: { start?: boolean; loej?: boolean; immed?: boolean; noFlush?: boolean; powerCondition?: number } = {}): Buffer {
  const b = cdb(6, ScsiOp.START_STOP_UNIT);
  if (o.immed) b[1] = 0x01;
  b[4] = ((o.powerCondition ?? 0) << 4) | (o.noFlush ? 0x04 : 0) | (o.loej ? 0x02 : 0) | (o.start ? 0x01 : 0);
  return b;
}

export function cdbPreventAllow(prevent: boolean): Buffer {
  const b = cdb(6, ScsiOp.PREVENT_ALLOW_MEDIUM_REMOVAL);
  b[4] = prevent ? 1 : 0;
  return b;
}

export function cdbReportSupportedOpcodes(o: { options?: number; opcode?: number; serviceAction?: number; rctd?: boolean; allocationLength?: number } = {}): Buffer {
  const b = cdb(12, ScsiOp.MAINTENANCE_IN);
  b[1] = MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES;
  b[2] = (o.rctd ? 0x80 : 0) | ((o.options ?? 0) & 0x07);
  b[3] = o.opcode ?? 0;
  b.writeUInt16BE(o.serviceAction ?? 0, 4);
  b.writeUInt32BE(o.allocationLength ?? 8192, 6);
  return b;
}
