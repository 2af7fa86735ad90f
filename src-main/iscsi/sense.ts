/**
 * SCSI sense data (SPC-4 §4.5): building it on the target, reading it on the
 * initiator. Pure functions over Buffers; no I/O.
 *
 * Additional sense codes are kept as one 16-bit number, ASC in the high byte
 * and ASCQ in the low byte (`AdditionalSense.LBA_OUT_OF_RANGE === 0x2100`),
 * which is how libiscsi and most logs print them.
 */

/** SENSE KEY values (SPC-4 table 27). */
export const SenseKey = {
  NO_SENSE: 0x0,
  RECOVERED_ERROR: 0x1,
  NOT_READY: 0x2,
  MEDIUM_ERROR: 0x3,
  HARDWARE_ERROR: 0x4,
  ILLEGAL_REQUEST: 0x5,
  UNIT_ATTENTION: 0x6,
  DATA_PROTECT: 0x7,
  BLANK_CHECK: 0x8,
  VENDOR_SPECIFIC: 0x9,
  COPY_ABORTED: 0xa,
  ABORTED_COMMAND: 0xb,
  VOLUME_OVERFLOW: 0xd,
  MISCOMPARE: 0xe,
} as const;
export type SenseKey = (typeof SenseKey)[keyof typeof SenseKey];

/** ASC/ASCQ pairs used by Spindle, as `asc << 8 | ascq` (SPC-4 table D.1). */
export const AdditionalSense = {
  NO_ADDITIONAL_SENSE: 0x0000,
  LUN_NOT_READY_CAUSE_NOT_REPORTABLE: 0x0400,
  LUN_NOT_READY_INITIALIZING_COMMAND_REQUIRED: 0x0402,
  UNREACHABLE_COPY_TARGET: 0x0804,
  COPY_TARGET_DEVICE_NOT_REACHABLE: 0x0d02,
  INVALID_FIELD_IN_INFORMATION_UNIT: 0x0e03,
  WRITE_ERROR: 0x0c00,
  UNRECOVERED_READ_ERROR: 0x1100,
  PARAMETER_LIST_LENGTH_ERROR: 0x1a00,
  MISCOMPARE_DURING_VERIFY: 0x1d00,
  INVALID_COMMAND_OPERATION_CODE: 0x2000,
  LBA_OUT_OF_RANGE: 0x2100,
  INVALID_FIELD_IN_CDB: 0x2400,
  LOGICAL_UNIT_NOT_SUPPORTED: 0x2500,
  INVALID_FIELD_IN_PARAMETER_LIST: 0x2600,
  PARAMETER_NOT_SUPPORTED: 0x2601,
  PARAMETER_VALUE_INVALID: 0x2602,
  INVALID_RELEASE_OF_PERSISTENT_RESERVATION: 0x2604,
  TOO_MANY_TARGET_DESCRIPTORS: 0x2606,
  UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE: 0x2607,
  TOO_MANY_SEGMENT_DESCRIPTORS: 0x2608,
  UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE: 0x2609,
  WRITE_PROTECTED: 0x2700,
  NOT_READY_TO_READY_CHANGE: 0x2800,
  POWER_ON_RESET_OR_BUS_DEVICE_RESET: 0x2900,
  POWER_ON_OCCURRED: 0x2901,
  BUS_DEVICE_RESET_FUNCTION_OCCURRED: 0x2903,
  I_T_NEXUS_LOSS_OCCURRED: 0x2907,
  PARAMETERS_CHANGED: 0x2a00,
  MODE_PARAMETERS_CHANGED: 0x2a01,
  RESERVATIONS_PREEMPTED: 0x2a03,
  RESERVATIONS_RELEASED: 0x2a04,
  REGISTRATIONS_PREEMPTED: 0x2a05,
  CAPACITY_DATA_HAS_CHANGED: 0x2a09,
  COMMANDS_CLEARED_BY_ANOTHER_INITIATOR: 0x2f00,
  SAVING_PARAMETERS_NOT_SUPPORTED: 0x3900,
  MEDIUM_NOT_PRESENT: 0x3a00,
  MEDIUM_NOT_PRESENT_TRAY_CLOSED: 0x3a01,
  MEDIUM_NOT_PRESENT_TRAY_OPEN: 0x3a02,
  REPORTED_LUNS_DATA_HAS_CHANGED: 0x3f0e,
  INTERNAL_TARGET_FAILURE: 0x4400,
  MEDIUM_REMOVAL_PREVENTED: 0x5302,
  OPERATION_IN_PROGRESS: 0x0016,
} as const;
export type AdditionalSense = (typeof AdditionalSense)[keyof typeof AdditionalSense];

/** Where in the CDB or parameter list the offending field is (sense-key specific bytes). */
export interface FieldPointer {
  /** true: the field is in the CDB (C/D=1); false: in the parameter list. */
  inCdb: boolean;
  /** Byte offset of the field. */
  byte: number;
  /** Bit within that byte (7..0), when it points at a bit field. */
  bit?: number;
}

export interface SenseSpec {
  key: number;
  /** `asc << 8 | ascq`. */
  code: number;
  /** INFORMATION field (an LBA or an offset); sets VALID. */
  information?: number | bigint;
  /** COMMAND-SPECIFIC INFORMATION field. */
  commandSpecific?: number | bigint;
  /** Sense-key specific field pointer (ILLEGAL REQUEST, COPY ABORTED). */
  field?: FieldPointer;
  /** Deferred error (0x71 / 0x73) rather than current (0x70 / 0x72). */
  deferred?: boolean;
}

/** Length of the fixed-format sense Spindle builds (SPC-4 §4.5.3). */
export const FIXED_SENSE_LENGTH = 18;

function toBig(v: number | bigint): bigint {
  return typeof v === 'bigint' ? v : BigInt(Math.trunc(v));
}

function writeFieldPointer(buf: Buffer, at: number, field: FieldPointer): void {
  buf[at] = 0x80 | (field.inCdb ? 0x40 : 0) | (field.bit !== undefined ? 0x08 | (field.bit & 0x07) : 0);
  buf.writeUInt16BE(field.byte & 0xffff, at + 1);
}

/**
 * Fixed-format sense data (response code 0x70/0x71), 18 bytes. An
 * INFORMATION value wider than 32 bits cannot be carried here and is
 * dropped (VALID stays 0) — use the descriptor format for those.
 */
export function buildFixedSense(spec: SenseSpec): Buffer {
  const buf = Buffer.alloc(FIXED_SENSE_LENGTH);
  buf[0] = spec.deferred ? 0x71 : 0x70;
  buf[2] = spec.key & 0x0f;
  if (spec.information !== undefined) {
    const info = toBig(spec.information);
    if (info >= 0n && info <= 0xffffffffn) {
      buf[0] |= 0x80;
      buf.writeUInt32BE(Number(info), 3);
    }
  }
  buf[7] = FIXED_SENSE_LENGTH - 8;
  if (spec.commandSpecific !== undefined) buf.writeUInt32BE(Number(toBig(spec.commandSpecific) & 0xffffffffn), 8);
  buf[12] = (spec.code >> 8) & 0xff;
  buf[13] = spec.code & 0xff;
  if (spec.field) writeFieldPointer(buf, 15, spec.field);
  return buf;
}

/** Descriptor-format sense data (response code 0x72/0x73, SPC-4 §4.5.2). */
export function buildDescriptorSense(spec: SenseSpec): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(8);
  header[0] = spec.deferred ? 0x73 : 0x72;
  header[1] = spec.key & 0x0f;
  header[2] = (spec.code >> 8) & 0xff;
  header[3] = spec.code & 0xff;
  parts.push(header);
  if (spec.information !== undefined) {
    const d = Buffer.alloc(12);
    d[0] = 0x00;
    d[1] = 0x0a;
    d[2] = 0x80;
    d.writeBigUInt64BE(toBig(spec.information) & 0xffffffffffffffffn, 4);
    parts.push(d);
  }
  if (spec.commandSpecific !== undefined) {
    const d = Buffer.alloc(12);
    d[0] = 0x01;
    d[1] = 0x0a;
    d.writeBigUInt64BE(toBig(spec.commandSpecific) & 0xffffffffffffffffn, 4);
    parts.push(d);
  }
  if (spec.field) {
    const d = Buffer.alloc(8);
    d[0] = 0x02;
    d[1] = 0x06;
    writeFieldPointer(d, 4, spec.field);
    parts.push(d);
  }
  const buf = Buffer.concat(parts);
  buf[7] = buf.length - 8;
  return buf;
}

export interface ParsedSense {
  /** 0x70..0x73. */
  responseCode: number;
  descriptor: boolean;
  deferred: boolean;
  key: number;
  asc: number;
  ascq: number;
  /** `asc << 8 | ascq`. */
  code: number;
  /** INFORMATION when VALID (fixed) or present (descriptor). */
  information?: bigint;
  commandSpecific?: bigint;
  field?: FieldPointer;
  /** Fixed format: ILI / EOM / FILEMARK bits. */
  ili: boolean;
}

function readFieldPointer(buf: Buffer, at: number): FieldPointer | undefined {
  if (at + 3 > buf.length || (buf[at] & 0x80) === 0) return undefined;
  const fp: FieldPointer = { inCdb: (buf[at] & 0x40) !== 0, byte: buf.readUInt16BE(at + 1) };
  if (buf[at] & 0x08) fp.bit = buf[at] & 0x07;
  return fp;
}

/**
 * Reads fixed or descriptor sense data. Returns null for anything that is
 * not sense data (too short, unknown response code). Tolerates truncation:
 * fields past the end are left out.
 */
export function parseSense(buf: Buffer | null | undefined): ParsedSense | null {
  if (!buf || buf.length < 2) return null;
  const responseCode = buf[0] & 0x7f;
  if (responseCode === 0x70 || responseCode === 0x71) {
    if (buf.length < 3) return null;
    const asc = buf.length > 12 ? buf[12] : 0;
    const ascq = buf.length > 13 ? buf[13] : 0;
    const sense: ParsedSense = {
      responseCode,
      descriptor: false,
      deferred: responseCode === 0x71,
      key: buf[2] & 0x0f,
      asc,
      ascq,
      code: (asc << 8) | ascq,
      ili: (buf[2] & 0x20) !== 0,
    };
    if (buf[0] & 0x80 && buf.length >= 7) sense.information = BigInt(buf.readUInt32BE(3));
    if (buf.length >= 12) {
      const cs = buf.readUInt32BE(8);
      if (cs !== 0) sense.commandSpecific = BigInt(cs);
    }
    if (buf.length >= 18) sense.field = readFieldPointer(buf, 15);
    return sense;
  }
  if (responseCode === 0x72 || responseCode === 0x73) {
    if (buf.length < 4) return null;
    const sense: ParsedSense = {
      responseCode,
      descriptor: true,
      deferred: responseCode === 0x73,
      key: buf[1] & 0x0f,
      asc: buf[2],
      ascq: buf[3],
      code: (buf[2] << 8) | buf[3],
      ili: false,
    };
    const end = Math.min(buf.length, 8 + (buf.length > 7 ? buf[7] : 0));
    let at = 8;
    while (at + 2 <= end) {
      const type = buf[at];
      const len = buf[at + 1];
      const body = at + 2;
      if (type === 0x00 && body + 10 <= end) sense.information = buf.readBigUInt64BE(body + 2);
      else if (type === 0x01 && body + 10 <= end) sense.commandSpecific = buf.readBigUInt64BE(body + 2);
      else if (type === 0x02 && body + 5 <= end) sense.field = readFieldPointer(buf, body + 2);
      else if (type === 0x05 && body + 2 <= end) sense.ili = (buf[body + 1] & 0x20) !== 0;
      at = body + len;
    }
    return sense;
  }
  return null;
}

const SENSE_KEY_NAMES: Record<number, string> = {};
for (const [name, value] of Object.entries(SenseKey)) SENSE_KEY_NAMES[value] = name;
const ADDITIONAL_SENSE_NAMES: Record<number, string> = {};
for (const [name, value] of Object.entries(AdditionalSense)) ADDITIONAL_SENSE_NAMES[value] = name;

/** `ILLEGAL_REQUEST/LBA_OUT_OF_RANGE (05/21/00)` for logs and test names. */
export function describeSense(key: number, code: number): string {
  const hex = (n: number): string => n.toString(16).padStart(2, '0');
  const k = SENSE_KEY_NAMES[key] ?? `KEY_${hex(key)}`;
  const c = ADDITIONAL_SENSE_NAMES[code] ?? `ASC_${hex(code >> 8)}_${hex(code & 0xff)}`;
  return `${k}/${c} (${hex(key)}/${hex(code >> 8)}/${hex(code & 0xff)})`;
}
