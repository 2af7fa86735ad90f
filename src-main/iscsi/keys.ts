/**
 * The table of every login/text key Spindle knows (RFC 7143 §13, plus
 * RFC 7144 iSCSIProtocolLevel, RFC 7145 iSER keys and the CHAP keys of
 * §12.1.3), and the value grammar of §6.1 (numbers, booleans, lists,
 * binary values).
 *
 * Pure data and pure functions: negotiation.ts (both roles) and chap.ts read
 * this table; nothing here has side effects.
 *
 * Vocabulary used by the table (RFC 7143 §13 introduction):
 *   use   IO   — login only (initialize only)
 *         LO   — login of the leading connection only
 *         ALL  — login and Full Feature Phase (Text requests)
 *         FFPO — Full Feature Phase only (SendTargets)
 *   phase security    — only in the SecurityNegotiation stage (AuthMethod, CHAP_*)
 *         operational — only in the LoginOperationalNegotiation stage
 *         any         — "Any-Stage": either login stage
 *   declarative — the receiver does not answer; each side states its own value.
 */

/** One key=value pair, in wire order (text-keys.ts encodes/decodes the bytes). */
export type TextPair = readonly [key: string, value: string];

export const KEY_NAME_MAX_LENGTH = 63;
/** §6.1: an individual value is at most 255 bytes (binary CHAP values excepted). */
export const VALUE_MAX_BYTES = 255;
/** §12.1.3: CHAP_C / CHAP_R binary length MUST NOT exceed 1024 bytes. */
export const LARGE_BINARY_MAX_BYTES = 1024;
/** 2**24 - 1: the top of the 24-bit length keys (§13.12-§13.14). */
export const MAX_24BIT = 0xffffff;

/** The reserved answer constants of §6.2. Never legal as an offered value. */
export const REJECT = 'Reject';
export const IRRELEVANT = 'Irrelevant';
export const NOT_UNDERSTOOD = 'NotUnderstood';
export const RESERVED_ANSWERS: ReadonlySet<string> = new Set([REJECT, IRRELEVANT, NOT_UNDERSTOOD]);

export type KeyUse = 'IO' | 'LO' | 'ALL' | 'FFPO';
export type KeyPhase = 'security' | 'operational' | 'any';
export type KeySender = 'initiator' | 'target' | 'both';
export type KeyScope = 'session' | 'connection';

interface KeyDefBase {
  readonly name: string;
  /** Where the RFC defines it. */
  readonly rfc: string;
  readonly use: KeyUse;
  readonly phase: KeyPhase;
  readonly senders: KeySender;
  readonly scope: KeyScope;
  readonly declarative: boolean;
  /** "Irrelevant when: SessionType=Discovery". */
  readonly irrelevantInDiscovery: boolean;
}

/** <list-of-values>: the acceptor picks the first offered value it supports (§6.2.1). */
export interface ListKeyDef extends KeyDefBase {
  readonly type: 'list';
  /** Values the RFC defines (others may be offered; they are simply not chosen). */
  readonly values: readonly string[];
  readonly default: string;
}

/** <boolean-value>: Yes/No combined with AND or OR (§6.2.2). */
export interface BooleanKeyDef extends KeyDefBase {
  readonly type: 'boolean';
  readonly result: 'AND' | 'OR';
  readonly default: boolean;
}

/** <numerical-value> in [min, max]; negotiated with Minimum/Maximum, or declared. */
export interface NumericKeyDef extends KeyDefBase {
  readonly type: 'numeric';
  readonly result: 'Minimum' | 'Maximum' | 'Declarative';
  readonly min: number;
  readonly max: number;
  readonly default: number;
  /** binary-value keys (TargetPortalGroupTag) also accept 0b base64. */
  readonly binary?: boolean;
}

/** Declared one-of-a-set value (SessionType). */
export interface EnumKeyDef extends KeyDefBase {
  readonly type: 'enum';
  readonly values: readonly string[];
  readonly default: string;
}

/** Declared strings: iSCSI names, aliases, addresses; SendTargets' request. */
export interface StringKeyDef extends KeyDefBase {
  readonly type: 'iscsi-name' | 'local-name' | 'text';
}

/** Keys RFC 7143 §13.25 obsoletes (markers): answered with Reject. */
export interface ObsoleteKeyDef extends KeyDefBase {
  readonly type: 'obsolete';
}

/**
 * iSER keys (RFC 7145): known, but irrelevant on a TCP connection. A TCP
 * implementation answers RDMAExtensions=No (AND) and the rest Irrelevant.
 */
export interface IserKeyDef extends KeyDefBase {
  readonly type: 'iser';
}

/** Authentication-method keys (CHAP_A, CHAP_I, CHAP_C, CHAP_N, CHAP_R): chap.ts handles them. */
export interface AuthKeyDef extends KeyDefBase {
  readonly type: 'auth';
  readonly method: 'CHAP';
}

export type KeyDef =
  | ListKeyDef
  | BooleanKeyDef
  | NumericKeyDef
  | EnumKeyDef
  | StringKeyDef
  | ObsoleteKeyDef
  | IserKeyDef
  | AuthKeyDef;

const op = { phase: 'operational', declarative: false } as const;

const TABLE: readonly KeyDef[] = [
  // §13.1
  { name: 'HeaderDigest', rfc: 'RFC 7143 §13.1', type: 'list', values: ['CRC32C', 'None'], default: 'None', use: 'IO', ...op, senders: 'both', scope: 'connection', irrelevantInDiscovery: false },
  { name: 'DataDigest', rfc: 'RFC 7143 §13.1', type: 'list', values: ['CRC32C', 'None'], default: 'None', use: 'IO', ...op, senders: 'both', scope: 'connection', irrelevantInDiscovery: false },
  // §13.2
  { name: 'MaxConnections', rfc: 'RFC 7143 §13.2', type: 'numeric', result: 'Minimum', min: 1, max: 65535, default: 1, use: 'LO', ...op, senders: 'both', scope: 'session', irrelevantInDiscovery: true },
  // §13.3
  { name: 'SendTargets', rfc: 'RFC 7143 §13.3', type: 'text', use: 'FFPO', ...op, senders: 'initiator', scope: 'session', irrelevantInDiscovery: false },
  // §13.4: "IO by initiator, FFPO by target — only as response to a SendTargets".
  { name: 'TargetName', rfc: 'RFC 7143 §13.4', type: 'iscsi-name', use: 'IO', phase: 'any', declarative: true, senders: 'both', scope: 'session', irrelevantInDiscovery: false },
  // §13.5
  { name: 'InitiatorName', rfc: 'RFC 7143 §13.5', type: 'iscsi-name', use: 'IO', phase: 'any', declarative: true, senders: 'initiator', scope: 'session', irrelevantInDiscovery: false },
  // §13.6
  { name: 'TargetAlias', rfc: 'RFC 7143 §13.6', type: 'local-name', use: 'ALL', phase: 'any', declarative: true, senders: 'target', scope: 'session', irrelevantInDiscovery: false },
  // §13.7
  { name: 'InitiatorAlias', rfc: 'RFC 7143 §13.7', type: 'local-name', use: 'ALL', phase: 'any', declarative: true, senders: 'initiator', scope: 'session', irrelevantInDiscovery: false },
  // §13.8
  { name: 'TargetAddress', rfc: 'RFC 7143 §13.8', type: 'text', use: 'ALL', phase: 'any', declarative: true, senders: 'target', scope: 'session', irrelevantInDiscovery: false },
  // §13.9: 16-bit binary-value.
  { name: 'TargetPortalGroupTag', rfc: 'RFC 7143 §13.9', type: 'numeric', result: 'Declarative', min: 0, max: 65535, default: 1, binary: true, use: 'IO', phase: 'any', declarative: true, senders: 'target', scope: 'session', irrelevantInDiscovery: false },
  // §13.10: OR — R2T is required unless both sides say No.
  { name: 'InitialR2T', rfc: 'RFC 7143 §13.10', type: 'boolean', result: 'OR', default: true, use: 'LO', ...op, senders: 'both', scope: 'session', irrelevantInDiscovery: true },
  // §13.11: AND — immediate data only if both sides say Yes.
  { name: 'ImmediateData', rfc: 'RFC 7143 §13.11', type: 'boolean', result: 'AND', default: true, use: 'LO', ...op, senders: 'both', scope: 'session', irrelevantInDiscovery: true },
  // §13.12: declared per direction.
  { name: 'MaxRecvDataSegmentLength', rfc: 'RFC 7143 §13.12', type: 'numeric', result: 'Declarative', min: 512, max: MAX_24BIT, default: 8192, use: 'ALL', phase: 'operational', declarative: true, senders: 'both', scope: 'connection', irrelevantInDiscovery: false },
  // §13.13
  { name: 'MaxBurstLength', rfc: 'RFC 7143 §13.13', type: 'numeric', result: 'Minimum', min: 512, max: MAX_24BIT, default: 262144, use: 'LO', ...op, senders: 'both', scope: 'session', irrelevantInDiscovery: true },
  // §13.14: also irrelevant when InitialR2T=Yes and ImmediateData=No; MUST NOT exceed MaxBurstLength.
  { name: 'FirstBurstLength', rfc: 'RFC 7143 §13.14', type: 'numeric', result: 'Minimum', min: 512, max: MAX_24BIT, default: 65536, use: 'LO', ...op, senders: 'both', scope: 'session', irrelevantInDiscovery: true },
  // §13.15
  { name: 'DefaultTime2Wait', rfc: 'RFC 7143 §13.15', type: 'numeric', result: 'Maximum', min: 0, max: 3600, default: 2, use: 'LO', ...op, senders: 'both', scope: 'session', irrelevantInDiscovery: false },
  // §13.16
  { name: 'DefaultTime2Retain', rfc: 'RFC 7143 §13.16', type: 'numeric', result: 'Minimum', min: 0, max: 3600, default: 20, use: 'LO', ...op, senders: 'both', scope: 'session', irrelevantInDiscovery: false },
  // §13.17
  { name: 'MaxOutstandingR2T', rfc: 'RFC 7143 §13.17', type: 'numeric', result: 'Minimum', min: 1, max: 65535, default: 1, use: 'LO', ...op, senders: 'both', scope: 'session', irrelevantInDiscovery: true },
  // §13.18
  { name: 'DataPDUInOrder', rfc: 'RFC 7143 §13.18', type: 'boolean', result: 'OR', default: true, use: 'LO', ...op, senders: 'both', scope: 'session', irrelevantInDiscovery: true },
  // §13.19
  { name: 'DataSequenceInOrder', rfc: 'RFC 7143 §13.19', type: 'boolean', result: 'OR', default: true, use: 'LO', ...op, senders: 'both', scope: 'session', irrelevantInDiscovery: true },
  // §13.20
  { name: 'ErrorRecoveryLevel', rfc: 'RFC 7143 §13.20', type: 'numeric', result: 'Minimum', min: 0, max: 2, default: 0, use: 'LO', ...op, senders: 'both', scope: 'session', irrelevantInDiscovery: false },
  // §13.21
  { name: 'SessionType', rfc: 'RFC 7143 §13.21', type: 'enum', values: ['Discovery', 'Normal'], default: 'Normal', use: 'LO', phase: 'any', declarative: true, senders: 'initiator', scope: 'session', irrelevantInDiscovery: false },
  // §13.22 (and §12.1): security stage only.
  { name: 'AuthMethod', rfc: 'RFC 7143 §13.22', type: 'list', values: ['KRB5', 'SRP', 'CHAP', 'None'], default: 'None', use: 'IO', phase: 'security', declarative: false, senders: 'both', scope: 'connection', irrelevantInDiscovery: false },
  // §13.23
  { name: 'TaskReporting', rfc: 'RFC 7143 §13.23', type: 'list', values: ['RFC3720', 'ResponseFence', 'FastAbort'], default: 'RFC3720', use: 'LO', ...op, senders: 'both', scope: 'session', irrelevantInDiscovery: true },
  // RFC 7144 §13.1 (RFC 7143 §13.24 fixes its own level at 1).
  { name: 'iSCSIProtocolLevel', rfc: 'RFC 7144 §13.1', type: 'numeric', result: 'Minimum', min: 0, max: 31, default: 0, use: 'LO', ...op, senders: 'both', scope: 'session', irrelevantInDiscovery: true },
  // §13.25: obsoleted marker keys.
  { name: 'OFMarker', rfc: 'RFC 7143 §13.25', type: 'obsolete', use: 'IO', ...op, senders: 'both', scope: 'connection', irrelevantInDiscovery: false },
  { name: 'IFMarker', rfc: 'RFC 7143 §13.25', type: 'obsolete', use: 'IO', ...op, senders: 'both', scope: 'connection', irrelevantInDiscovery: false },
  { name: 'OFMarkInt', rfc: 'RFC 7143 §13.25', type: 'obsolete', use: 'IO', ...op, senders: 'both', scope: 'connection', irrelevantInDiscovery: false },
  { name: 'IFMarkInt', rfc: 'RFC 7143 §13.25', type: 'obsolete', use: 'IO', ...op, senders: 'both', scope: 'connection', irrelevantInDiscovery: false },
  // §13.26 (RFC 4850): a registered X# key, declarative.
  { name: 'X#NodeArchitecture', rfc: 'RFC 7143 §13.26', type: 'text', use: 'LO', phase: 'operational', declarative: true, senders: 'both', scope: 'session', irrelevantInDiscovery: false },
  // RFC 7145 §6.3 (iSER): known, irrelevant over TCP.
  { name: 'RDMAExtensions', rfc: 'RFC 7145 §6.3.1', type: 'iser', use: 'LO', ...op, senders: 'both', scope: 'session', irrelevantInDiscovery: true },
  { name: 'TargetRecvDataSegmentLength', rfc: 'RFC 7145 §6.3.2', type: 'iser', use: 'IO', phase: 'operational', declarative: true, senders: 'target', scope: 'connection', irrelevantInDiscovery: false },
  { name: 'InitiatorRecvDataSegmentLength', rfc: 'RFC 7145 §6.3.3', type: 'iser', use: 'IO', phase: 'operational', declarative: true, senders: 'initiator', scope: 'connection', irrelevantInDiscovery: false },
  { name: 'MaxOutstandingUnexpectedPDUs', rfc: 'RFC 7145 §6.3.4', type: 'iser', use: 'LO', phase: 'operational', declarative: true, senders: 'both', scope: 'session', irrelevantInDiscovery: false },
  // §12.1.3 CHAP (RFC 1994): security stage, both directions (mutual CHAP).
  { name: 'CHAP_A', rfc: 'RFC 7143 §12.1.3', type: 'auth', method: 'CHAP', use: 'IO', phase: 'security', declarative: false, senders: 'both', scope: 'connection', irrelevantInDiscovery: false },
  { name: 'CHAP_I', rfc: 'RFC 7143 §12.1.3', type: 'auth', method: 'CHAP', use: 'IO', phase: 'security', declarative: false, senders: 'both', scope: 'connection', irrelevantInDiscovery: false },
  { name: 'CHAP_C', rfc: 'RFC 7143 §12.1.3', type: 'auth', method: 'CHAP', use: 'IO', phase: 'security', declarative: false, senders: 'both', scope: 'connection', irrelevantInDiscovery: false },
  { name: 'CHAP_N', rfc: 'RFC 7143 §12.1.3', type: 'auth', method: 'CHAP', use: 'IO', phase: 'security', declarative: false, senders: 'both', scope: 'connection', irrelevantInDiscovery: false },
  { name: 'CHAP_R', rfc: 'RFC 7143 §12.1.3', type: 'auth', method: 'CHAP', use: 'IO', phase: 'security', declarative: false, senders: 'both', scope: 'connection', irrelevantInDiscovery: false },
];

/** Every key Spindle knows, by exact (case-sensitive, §6.1) name. */
export const KEYS: ReadonlyMap<string, KeyDef> = new Map(TABLE.map((k) => [k.name, Object.freeze(k)]));

/** The definition of a key, or undefined for keys Spindle does not know (answer NotUnderstood). */
export function lookupKey(name: string): KeyDef | undefined {
  return KEYS.get(name);
}

/** X- (private) and X# (IANA-registered) extension keys (§6.1, §13.26). */
export function isExtensionKey(name: string): boolean {
  return name.startsWith('X-') || name.startsWith('X#');
}

const STANDARD_LABEL = /^[A-Z][A-Za-z0-9.\-+@_]*$/;
const REGISTERED_EXTENSION = /^X#[A-Za-z0-9.\-+@_]+$/;

/**
 * Whether `name` is a well-formed key-name (§6.1): a standard-label (capital
 * letter, then letters, digits, `.-+@_`, at most 63 characters), an X#
 * registered extension key, or one of the keys in the table.
 */
export function isWellFormedKeyName(name: string): boolean {
  // iSCSIProtocolLevel (RFC 7144) breaks the capital-letter rule; known keys are well formed by definition.
  if (KEYS.has(name)) return true;
  if (name.length === 0 || name.length > KEY_NAME_MAX_LENGTH) return false;
  return STANDARD_LABEL.test(name) || REGISTERED_EXTENSION.test(name);
}

/** Keys that may be used in a Text Request of the Full Feature Phase (use ALL or FFPO). */
export function allowedInFullFeature(def: KeyDef): boolean {
  return def.use === 'ALL' || def.use === 'FFPO';
}

/** Whether `def` may be sent by `role`. */
export function mayBeSentBy(def: KeyDef, role: 'initiator' | 'target'): boolean {
  return def.senders === 'both' || def.senders === role;
}

// ---------------------------------------------------------------------------
// Value grammar (§6.1)
// ---------------------------------------------------------------------------

const DECIMAL = /^(0|[1-9][0-9]*)$/;
const HEX = /^0[xX][0-9a-fA-F]+$/;
const BASE64 = /^0[bB](?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const TWO_64 = 1n << 64n;

/** UTF-8 byte length of a value. */
export function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * A numerical-value (§6.1): a decimal-constant (`0`, or digits not starting
 * with 0) or a hex-constant (`0x`/`0X` + hex digits), below 2**64.
 * With `binary: true` a base64-constant (`0b`...) is accepted as well
 * (regular-binary-value, at most 64 bits). Returns null when malformed.
 */
export function parseNumber(value: string, options: { binary?: boolean } = {}): bigint | null {
  let n: bigint;
  if (DECIMAL.test(value)) {
    if (value.length > 20) return null;
    n = BigInt(value);
  } else if (HEX.test(value)) {
    const digits = value.slice(2).replace(/^0+(?=.)/, '');
    if (digits.length > 16) return null;
    n = BigInt(`0x${digits}`);
  } else if (options.binary && value.length > 2 && BASE64.test(value)) {
    const bytes = Buffer.from(value.slice(2), 'base64');
    if (bytes.length === 0 || bytes.length > 8) return null;
    n = 0n;
    for (const b of bytes) n = (n << 8n) | BigInt(b);
  } else {
    return null;
  }
  return n < TWO_64 ? n : null;
}

/** A numeric value of a key's definition, or null if malformed or out of range. */
export function parseKeyNumber(def: NumericKeyDef, value: string): number | null {
  const n = parseNumber(value, { binary: def.binary === true });
  if (n === null) return null;
  if (n < BigInt(def.min) || n > BigInt(def.max)) return null;
  return Number(n);
}

/** boolean-value: exactly `Yes` or `No` (case-sensitive, §6.1). */
export function parseBoolean(value: string): boolean | null {
  if (value === 'Yes') return true;
  if (value === 'No') return false;
  return null;
}

export function formatBoolean(value: boolean): 'Yes' | 'No' {
  return value ? 'Yes' : 'No';
}

/**
 * A list-of-values: comma-separated values, none empty, none a reserved
 * answer, each at most 255 bytes. Returns null when malformed.
 */
export function parseList(value: string): string[] | null {
  const items = value.split(',');
  for (const item of items) {
    if (item.length === 0 || byteLength(item) > VALUE_MAX_BYTES || RESERVED_ANSWERS.has(item)) return null;
  }
  return items;
}

/**
 * A binary-value (§6.1): hex-constant (odd digit counts get an implicit
 * leading 0 nibble) or base64-constant. Decimal constants are numbers, not
 * byte strings, and are refused here. Returns null when malformed, empty or
 * longer than `maxBytes`.
 */
export function parseBinary(value: string, maxBytes: number = LARGE_BINARY_MAX_BYTES): Buffer | null {
  let bytes: Buffer;
  if (HEX.test(value)) {
    let digits = value.slice(2);
    if (digits.length % 2 === 1) digits = `0${digits}`;
    bytes = Buffer.from(digits, 'hex');
  } else if (value.length > 2 && BASE64.test(value)) {
    bytes = Buffer.from(value.slice(2), 'base64');
  } else {
    return null;
  }
  if (bytes.length === 0 || bytes.length > maxBytes) return null;
  return bytes;
}

/** A binary value as a lowercase `0x` hex-constant (the form every peer accepts). */
export function formatBinary(bytes: Uint8Array): string {
  return `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`;
}
