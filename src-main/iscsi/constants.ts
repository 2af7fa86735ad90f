/**
 * iSCSI protocol constants (RFC 7143 unless noted). One place for every
 * opcode, flag bit, code and limit used by the PDU codec.
 *
 * Each group is a frozen object plus a type of its values, so that code reads
 * like the RFC (`Opcode.SCSI_COMMAND`, `LoginStatusClass.INITIATOR_ERROR`)
 * and still compiles to plain numbers.
 */

// ---------------------------------------------------------------------------
// Sizes and limits
// ---------------------------------------------------------------------------

/** Basic Header Segment length (§11.2.1). */
export const BHS_LENGTH = 48;
/** CRC32C HeaderDigest / DataDigest length (§11.2.3). */
export const DIGEST_LENGTH = 4;
/** PDU segments are padded to this multiple (§11.1). */
export const PAD_MULTIPLE = 4;
/** TotalAHSLength is one byte counting 4-byte words, so at most 255 * 4 (§11.2.1.5). */
export const MAX_TOTAL_AHS_LENGTH = 255 * 4;
/** DataSegmentLength is a 24-bit field (§11.2.1.6). */
export const MAX_DATA_SEGMENT_LENGTH = 0xffffff;
/** Reserved tag value for ITT / TTT / Referenced Task Tag (§11.2.1.8). */
export const RESERVED_TAG = 0xffffffff;
/** ITT of unsolicited target PDUs (NOP-In ping, Async Message, Reject). */
export const RESERVED_ITT = RESERVED_TAG;
/** Version-max / Version-min / Version-active of RFC 7143 (§11.12.4). */
export const ISCSI_VERSION = 0x00;
/** IANA-assigned iSCSI TCP port. */
export const ISCSI_PORT = 3260;

/** MaxRecvDataSegmentLength default and range (§13.12). */
export const DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH = 8192;
export const MIN_MAX_RECV_DATA_SEGMENT_LENGTH = 512;
export const MAX_MAX_RECV_DATA_SEGMENT_LENGTH = MAX_DATA_SEGMENT_LENGTH;

/** Text keys (§6.1): key-name is a standard-label of at most 63 characters. */
export const MAX_KEY_NAME_LENGTH = 63;
/** Text keys (§6.1): an individual value is at most 255 bytes... */
export const MAX_VALUE_LENGTH = 255;
/** ...except large binary values (CHAP_C/CHAP_R and friends); we accept up to 8192. */
export const MAX_LARGE_VALUE_LENGTH = 8192;

// ---------------------------------------------------------------------------
// Opcodes (§11.2.1.2)
// ---------------------------------------------------------------------------

export const Opcode = {
  // Initiator opcodes
  NOP_OUT: 0x00,
  SCSI_COMMAND: 0x01,
  TASK_MGMT_REQUEST: 0x02,
  LOGIN_REQUEST: 0x03,
  TEXT_REQUEST: 0x04,
  SCSI_DATA_OUT: 0x05,
  LOGOUT_REQUEST: 0x06,
  SNACK_REQUEST: 0x10,
  // Target opcodes
  NOP_IN: 0x20,
  SCSI_RESPONSE: 0x21,
  TASK_MGMT_RESPONSE: 0x22,
  LOGIN_RESPONSE: 0x23,
  TEXT_RESPONSE: 0x24,
  SCSI_DATA_IN: 0x25,
  LOGOUT_RESPONSE: 0x26,
  R2T: 0x31,
  ASYNC_MESSAGE: 0x32,
  REJECT: 0x3f,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

const OPCODE_NAMES: Record<number, string> = {};
for (const [name, value] of Object.entries(Opcode)) OPCODE_NAMES[value] = name;

/** Human-readable opcode name for logs, e.g. `SCSI_COMMAND` or `0x1c`. */
export function opcodeName(opcode: number): string {
  return OPCODE_NAMES[opcode] ?? `0x${opcode.toString(16).padStart(2, '0')}`;
}

/** True for the opcodes defined by RFC 7143 (vendor-specific ones are not). */
export function isKnownOpcode(opcode: number): opcode is Opcode {
  return OPCODE_NAMES[opcode] !== undefined;
}

/** Target opcodes have bit 5 set (0x20..0x3f); initiator opcodes do not (§11.2.1.2). */
export function isTargetOpcode(opcode: number): boolean {
  return (opcode & 0x20) !== 0;
}

// ---------------------------------------------------------------------------
// BHS byte 0 and byte 1 bits
// ---------------------------------------------------------------------------

/** Byte 0: opcode is the low six bits. */
export const OPCODE_MASK = 0x3f;
/** Byte 0: I (Immediate delivery) bit, initiator PDUs only (§11.2.1.1). */
export const IMMEDIATE_BIT = 0x40;

/**
 * Byte 1 flag bits. Several opcodes reuse a bit position under another name
 * (F/T share 0x80, R/C/A share 0x40); the letters follow the RFC figures.
 */
export const Flag = {
  /** F (Final): last PDU of a sequence (most opcodes). */
  F: 0x80,
  /** T (Transit): Login Request/Response wants to move to NSG (§11.12.1). */
  T: 0x80,
  /** R (Read): SCSI Command expects Data-In (§11.3.1). */
  R: 0x40,
  /** W (Write): SCSI Command expects Data-Out (§11.3.1). */
  W: 0x20,
  /** C (Continue): text in this Login/Text PDU continues in the next (§11.10.2). */
  C: 0x40,
  /** A (Acknowledge): Data-In asks for a DataACK SNACK (§11.7.2). */
  A: 0x40,
  /** o (bidirectional read residual overflow), SCSI Response (§11.4.1). */
  BIDI_O: 0x10,
  /** u (bidirectional read residual underflow), SCSI Response (§11.4.1). */
  BIDI_U: 0x08,
  /** O (residual overflow), SCSI Response / Data-In (§11.4.1). */
  O: 0x04,
  /** U (residual underflow), SCSI Response / Data-In (§11.4.1). */
  U: 0x02,
  /** S (status): Data-In carries the command status (§11.7.3). */
  S: 0x01,
} as const;

/** Login byte 1: CSG in bits 3-2, NSG in bits 1-0 (§11.12.3). */
export const CSG_MASK = 0x0c;
export const CSG_SHIFT = 2;
export const NSG_MASK = 0x03;
/** SCSI Command byte 1: ATTR in bits 2-0 (§11.3.1). */
export const ATTR_MASK = 0x07;
/** TMF Request byte 1: Function in bits 6-0 (§11.5.1). */
export const TMF_FUNCTION_MASK = 0x7f;
/** Logout Request byte 1: Reason Code in bits 6-0 (§11.14.1). */
export const LOGOUT_REASON_MASK = 0x7f;
/** SNACK Request byte 1: Type in bits 3-0 (§11.16.1). */
export const SNACK_TYPE_MASK = 0x0f;

/** Login stages, the CSG/NSG values (§11.12.3). */
export const Stage = {
  SECURITY_NEGOTIATION: 0,
  LOGIN_OPERATIONAL_NEGOTIATION: 1,
  FULL_FEATURE_PHASE: 3,
} as const;
export type Stage = (typeof Stage)[keyof typeof Stage];

// ---------------------------------------------------------------------------
// SCSI Command / Response
// ---------------------------------------------------------------------------

/** SCSI Command ATTR field (§11.3.1). */
export const TaskAttribute = {
  UNTAGGED: 0,
  SIMPLE: 1,
  ORDERED: 2,
  HEAD_OF_QUEUE: 3,
  ACA: 4,
} as const;
export type TaskAttribute = (typeof TaskAttribute)[keyof typeof TaskAttribute];

/** SCSI Response "Response" field (§11.4.3). */
export const ScsiResponseCode = {
  COMMAND_COMPLETED_AT_TARGET: 0x00,
  TARGET_FAILURE: 0x01,
} as const;
export type ScsiResponseCode = (typeof ScsiResponseCode)[keyof typeof ScsiResponseCode];

/** SCSI status byte values (SAM-5). */
export const ScsiStatus = {
  GOOD: 0x00,
  CHECK_CONDITION: 0x02,
  CONDITION_MET: 0x04,
  BUSY: 0x08,
  INTERMEDIATE: 0x10,
  INTERMEDIATE_CONDITION_MET: 0x14,
  RESERVATION_CONFLICT: 0x18,
  COMMAND_TERMINATED: 0x22,
  TASK_SET_FULL: 0x28,
  ACA_ACTIVE: 0x30,
  TASK_ABORTED: 0x40,
} as const;
export type ScsiStatus = (typeof ScsiStatus)[keyof typeof ScsiStatus];

/** AHS types (§11.2.2.1). */
export const AhsType = {
  EXTENDED_CDB: 1,
  BIDIRECTIONAL_READ_EXPECTED_DATA_LENGTH: 2,
} as const;
export type AhsType = (typeof AhsType)[keyof typeof AhsType];

// ---------------------------------------------------------------------------
// Task management (§11.5, §11.6; 9-12 from RFC 7144)
// ---------------------------------------------------------------------------

export const TmfFunction = {
  ABORT_TASK: 1,
  ABORT_TASK_SET: 2,
  CLEAR_ACA: 3,
  CLEAR_TASK_SET: 4,
  LOGICAL_UNIT_RESET: 5,
  TARGET_WARM_RESET: 6,
  TARGET_COLD_RESET: 7,
  TASK_REASSIGN: 8,
  QUERY_TASK: 9,
  QUERY_TASK_SET: 10,
  I_T_NEXUS_RESET: 11,
  QUERY_ASYNCHRONOUS_EVENT: 12,
} as const;
export type TmfFunction = (typeof TmfFunction)[keyof typeof TmfFunction];

export const TmfResponse = {
  FUNCTION_COMPLETE: 0,
  TASK_DOES_NOT_EXIST: 1,
  LUN_DOES_NOT_EXIST: 2,
  TASK_STILL_ALLEGIANT: 3,
  TASK_ALLEGIANCE_REASSIGNMENT_NOT_SUPPORTED: 4,
  TASK_MANAGEMENT_FUNCTION_NOT_SUPPORTED: 5,
  FUNCTION_AUTHORIZATION_FAILED: 6,
  /** RFC 7144: answer of the QUERY functions when the condition holds. */
  FUNCTION_SUCCEEDED: 7,
  FUNCTION_REJECTED: 255,
} as const;
export type TmfResponse = (typeof TmfResponse)[keyof typeof TmfResponse];

// ---------------------------------------------------------------------------
// Login (§11.13.5)
// ---------------------------------------------------------------------------

export const LoginStatusClass = {
  SUCCESS: 0,
  REDIRECTION: 1,
  INITIATOR_ERROR: 2,
  TARGET_ERROR: 3,
} as const;
export type LoginStatusClass = (typeof LoginStatusClass)[keyof typeof LoginStatusClass];

/**
 * Login Response (Status-Class, Status-Detail) pairs by name (§11.13.5). The
 * detail byte alone is ambiguous across classes, so each entry carries both.
 */
export const LoginStatus = {
  SUCCESS: { statusClass: 0, statusDetail: 0x00 },
  TARGET_MOVED_TEMPORARILY: { statusClass: 1, statusDetail: 0x01 },
  TARGET_MOVED_PERMANENTLY: { statusClass: 1, statusDetail: 0x02 },
  INITIATOR_ERROR: { statusClass: 2, statusDetail: 0x00 },
  AUTHENTICATION_FAILURE: { statusClass: 2, statusDetail: 0x01 },
  AUTHORIZATION_FAILURE: { statusClass: 2, statusDetail: 0x02 },
  NOT_FOUND: { statusClass: 2, statusDetail: 0x03 },
  TARGET_REMOVED: { statusClass: 2, statusDetail: 0x04 },
  UNSUPPORTED_VERSION: { statusClass: 2, statusDetail: 0x05 },
  TOO_MANY_CONNECTIONS: { statusClass: 2, statusDetail: 0x06 },
  MISSING_PARAMETER: { statusClass: 2, statusDetail: 0x07 },
  CANT_INCLUDE_IN_SESSION: { statusClass: 2, statusDetail: 0x08 },
  SESSION_TYPE_NOT_SUPPORTED: { statusClass: 2, statusDetail: 0x09 },
  SESSION_DOES_NOT_EXIST: { statusClass: 2, statusDetail: 0x0a },
  INVALID_DURING_LOGIN: { statusClass: 2, statusDetail: 0x0b },
  TARGET_ERROR: { statusClass: 3, statusDetail: 0x00 },
  SERVICE_UNAVAILABLE: { statusClass: 3, statusDetail: 0x01 },
  OUT_OF_RESOURCES: { statusClass: 3, statusDetail: 0x02 },
} as const satisfies Record<string, { statusClass: LoginStatusClass; statusDetail: number }>;
export type LoginStatusName = keyof typeof LoginStatus;

/** Name of a (class, detail) pair for logs, e.g. `AUTHENTICATION_FAILURE`. */
export function loginStatusName(statusClass: number, statusDetail: number): string {
  for (const [name, s] of Object.entries(LoginStatus)) {
    if (s.statusClass === statusClass && s.statusDetail === statusDetail) return name;
  }
  return `class 0x${statusClass.toString(16)} detail 0x${statusDetail.toString(16)}`;
}

// ---------------------------------------------------------------------------
// Logout (§11.14, §11.15)
// ---------------------------------------------------------------------------

export const LogoutReason = {
  CLOSE_SESSION: 0,
  CLOSE_CONNECTION: 1,
  REMOVE_CONNECTION_FOR_RECOVERY: 2,
} as const;
export type LogoutReason = (typeof LogoutReason)[keyof typeof LogoutReason];

export const LogoutResponseCode = {
  CLOSED_SUCCESSFULLY: 0,
  CID_NOT_FOUND: 1,
  CONNECTION_RECOVERY_NOT_SUPPORTED: 2,
  CLEANUP_FAILED: 3,
} as const;
export type LogoutResponseCode = (typeof LogoutResponseCode)[keyof typeof LogoutResponseCode];

// ---------------------------------------------------------------------------
// Reject (§11.17.1)
// ---------------------------------------------------------------------------

export const RejectReason = {
  RESERVED: 0x01,
  DATA_DIGEST_ERROR: 0x02,
  SNACK_REJECT: 0x03,
  PROTOCOL_ERROR: 0x04,
  COMMAND_NOT_SUPPORTED: 0x05,
  IMMEDIATE_COMMAND_REJECT: 0x06,
  TASK_IN_PROGRESS: 0x07,
  INVALID_DATA_ACK: 0x08,
  INVALID_PDU_FIELD: 0x09,
  LONG_OPERATION_REJECT: 0x0a,
  /** 0x0b was "Negotiation Reset" in RFC 3720; RFC 7143 deprecates it. */
  DEPRECATED_NEGOTIATION_RESET: 0x0b,
  WAITING_FOR_LOGOUT: 0x0c,
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

// ---------------------------------------------------------------------------
// Asynchronous Message (§11.9.1)
// ---------------------------------------------------------------------------

export const AsyncEvent = {
  SCSI_ASYNC_EVENT: 0,
  LOGOUT_REQUESTED: 1,
  CONNECTION_WILL_DROP: 2,
  SESSION_WILL_DROP: 3,
  NEGOTIATION_REQUESTED: 4,
  VENDOR_SPECIFIC: 255,
} as const;
export type AsyncEvent = (typeof AsyncEvent)[keyof typeof AsyncEvent];

// ---------------------------------------------------------------------------
// SNACK (§11.16.1)
// ---------------------------------------------------------------------------

export const SnackType = {
  DATA_R2T: 0,
  STATUS: 1,
  DATA_ACK: 2,
  R_DATA: 3,
} as const;
export type SnackType = (typeof SnackType)[keyof typeof SnackType];
