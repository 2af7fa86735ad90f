/**
 * Login and text negotiation (RFC 7143 §6, keys of §13), for both roles.
 *
 * Target side — one call per complete Login Request (after C-bit assembly):
 *
 *   let neg = createTargetNegotiation({ config, auth, leading });
 *   const r = negotiateLogin(neg, { stage: req.csg, transit: req.transit, nsg: req.nsg, pairs });
 *   if (!r.ok) → Login Response with LoginStatus[r.status], close the connection
 *   else       → Login Response with r.response, T = req.transit && r.canTransit
 *   when the target answers T=1 NSG=3: finishLogin(r.state) → SessionParams
 *   Full Feature Phase Text Request: negotiateText(state, pairs, { newSequence })
 *
 * Initiator side: createInitiatorNegotiation → buildInitiatorOffer (per
 * request) → checkTargetResponse (per response) → finishInitiatorLogin.
 *
 * Everything here is pure: strings in, decisions and new state out. States
 * are immutable values; each call returns a new one. The only impurity is
 * randomness for CHAP challenges, injectable through `random`.
 *
 * Rules implemented (RFC 7143 §6.1, §6.2, §6.3, §13):
 *   - list keys: the acceptor picks the first offered value it supports, else Reject;
 *   - numeric keys: Minimum / Maximum of the offer and our own value; malformed
 *     or out-of-range offers are answered Reject;
 *   - boolean keys: AND (ImmediateData) / OR (InitialR2T, DataPDUInOrder,
 *     DataSequenceInOrder) of the offer and our own value;
 *   - declaratives (MaxRecvDataSegmentLength, names, aliases) are recorded,
 *     not answered; the target declares its own MaxRecvDataSegmentLength;
 *   - Irrelevant: keys marked "Irrelevant when SessionType=Discovery", and
 *     FirstBurstLength when InitialR2T=Yes and ImmediateData=No (§13.14);
 *   - FirstBurstLength never exceeds MaxBurstLength (§13.14);
 *   - NotUnderstood: unknown keys, X- and unknown X# keys;
 *   - protocol errors (Login reject "Initiator error" 0x0200): a malformed key
 *     name, a key sent twice in one negotiation (§6.2), a key in the wrong
 *     stage, a key only the other side may send, a leading-only key on a
 *     secondary connection, a reserved answer (Reject, Irrelevant,
 *     NotUnderstood) used as an offer;
 *   - InitiatorName (and TargetName in a normal session) missing from the
 *     first request: "Missing parameter" 0x0207.
 */
import { type LoginStatusName, RejectReason, Stage } from './constants';
import {
  type ChapCredentials,
  type ChapFailureCode,
  type InitiatorChap,
  type RandomSource,
  type TargetChap,
  createInitiatorChap,
  createTargetChap,
  initiatorChapStart,
  initiatorChapStep,
  sealCredentials,
  targetChapStep,
} from './chap';
import {
  type BooleanKeyDef,
  type KeyDef,
  type KeyPhase,
  type NumericKeyDef,
  type TextPair,
  IRRELEVANT,
  KEYS,
  MAX_24BIT,
  NOT_UNDERSTOOD,
  REJECT,
  RESERVED_ANSWERS,
  VALUE_MAX_BYTES,
  allowedInFullFeature,
  byteLength,
  formatBoolean,
  isWellFormedKeyName,
  lookupKey,
  mayBeSentBy,
  parseBoolean,
  parseKeyNumber,
  parseList,
} from './keys';
import { checkWireIscsiName } from './names';

export type { TextPair } from './keys';

/** A pair as [key, value] or { key, value } (whichever the text codec yields). */
export type TextPairInput = TextPair | { readonly key: string; readonly value: string };

export type DigestName = 'CRC32C' | 'None';
export type SessionType = 'Normal' | 'Discovery';
export type TaskReportingValue = 'RFC3720' | 'ResponseFence' | 'FastAbort';
export type AuthMethodName = 'CHAP' | 'None';

// ---------------------------------------------------------------------------
// Negotiated parameters
// ---------------------------------------------------------------------------

/** The operational parameters of a session/connection, named as in RFC 7143 §13. */
export interface SessionParams {
  readonly SessionType: SessionType;
  readonly HeaderDigest: DigestName;
  readonly DataDigest: DigestName;
  readonly MaxConnections: number;
  readonly InitialR2T: boolean;
  readonly ImmediateData: boolean;
  /**
   * Declared per direction (§13.12): `initiator` is what the initiator can
   * receive (the target must not send longer data segments), `target` what
   * the target can receive.
   */
  readonly MaxRecvDataSegmentLength: { readonly initiator: number; readonly target: number };
  readonly MaxBurstLength: number;
  readonly FirstBurstLength: number;
  readonly DefaultTime2Wait: number;
  readonly DefaultTime2Retain: number;
  readonly MaxOutstandingR2T: number;
  readonly DataPDUInOrder: boolean;
  readonly DataSequenceInOrder: boolean;
  readonly ErrorRecoveryLevel: number;
  readonly TaskReporting: TaskReportingValue;
  readonly iSCSIProtocolLevel: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Params = Mutable<SessionParams>;

/** RFC 7143 defaults: what holds for every key nobody negotiated. */
export const RFC_DEFAULTS: SessionParams = Object.freeze({
  SessionType: 'Normal',
  HeaderDigest: 'None',
  DataDigest: 'None',
  MaxConnections: 1,
  InitialR2T: true,
  ImmediateData: true,
  MaxRecvDataSegmentLength: Object.freeze({ initiator: 8192, target: 8192 }),
  MaxBurstLength: 262144,
  FirstBurstLength: 65536,
  DefaultTime2Wait: 2,
  DefaultTime2Retain: 20,
  MaxOutstandingR2T: 1,
  DataPDUInOrder: true,
  DataSequenceInOrder: true,
  ErrorRecoveryLevel: 0,
  TaskReporting: 'RFC3720',
  iSCSIProtocolLevel: 0,
} satisfies SessionParams);

/** Whether the initiator may send unsolicited data at all (§13.10/§13.11 table). */
export function unsolicitedDataAllowed(p: SessionParams): boolean {
  return !p.InitialR2T || p.ImmediateData;
}

type BoolParam = 'InitialR2T' | 'ImmediateData' | 'DataPDUInOrder' | 'DataSequenceInOrder';
type NumParam =
  | 'MaxConnections'
  | 'MaxBurstLength'
  | 'FirstBurstLength'
  | 'DefaultTime2Wait'
  | 'DefaultTime2Retain'
  | 'MaxOutstandingR2T'
  | 'ErrorRecoveryLevel'
  | 'iSCSIProtocolLevel';
type ListParam = 'HeaderDigest' | 'DataDigest' | 'TaskReporting';

const BOOL_PARAMS: readonly BoolParam[] = ['InitialR2T', 'ImmediateData', 'DataPDUInOrder', 'DataSequenceInOrder'];
const NUM_PARAMS: readonly NumParam[] = [
  'MaxConnections',
  'MaxBurstLength',
  'FirstBurstLength',
  'DefaultTime2Wait',
  'DefaultTime2Retain',
  'MaxOutstandingR2T',
  'ErrorRecoveryLevel',
  'iSCSIProtocolLevel',
];

function isBoolParam(k: string): k is BoolParam {
  return (BOOL_PARAMS as readonly string[]).includes(k);
}
function isNumParam(k: string): k is NumParam {
  return (NUM_PARAMS as readonly string[]).includes(k);
}

function cloneParams(p: SessionParams): Params {
  return { ...p, MaxRecvDataSegmentLength: { ...p.MaxRecvDataSegmentLength } };
}

function freezeParams(p: Params): SessionParams {
  Object.freeze(p.MaxRecvDataSegmentLength);
  return Object.freeze(p);
}

function setListParam(p: Params, key: ListParam, value: string): void {
  if (key === 'TaskReporting') p.TaskReporting = value as TaskReportingValue;
  else p[key] = value as DigestName;
}

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

export type NegotiationErrorCode =
  /** A key-name that is not a standard-label (§6.1). */
  | 'MALFORMED_KEY'
  /** A key sent twice in one negotiation (§6.2). */
  | 'REPEATED_KEY'
  /** A key not allowed in this stage/phase (e.g. an operational key during security negotiation). */
  | 'WRONG_STAGE'
  /** A key only the other side may send. */
  | 'WRONG_SENDER'
  /** A leading-only (LO) key on a secondary connection of a session. */
  | 'LEADING_ONLY'
  /** Reject / Irrelevant / NotUnderstood used as an offered value (§6.2). */
  | 'RESERVED_VALUE'
  /** SessionType / TargetName after the first Login Request. */
  | 'LATE_DECLARATION'
  | 'MISSING_INITIATOR_NAME'
  | 'MISSING_TARGET_NAME'
  | 'BAD_INITIATOR_NAME'
  | 'BAD_TARGET_NAME'
  | 'BAD_SESSION_TYPE'
  | 'DISCOVERY_DISABLED'
  /** Authentication required but the initiator skipped it or offered nothing acceptable. */
  | 'AUTH_REQUIRED'
  | 'AUTH_METHOD_UNAVAILABLE'
  /** CHAP failed; `chap` says how. */
  | 'AUTH_FAILED'
  /** CSG/NSG out of order (back to security, unknown stage, login already finished). */
  | 'STAGE_ORDER'
  /** The target requires a value (e.g. HeaderDigest=CRC32C) the initiator never offered. */
  | 'REQUIRED_VALUE_NOT_NEGOTIATED'
  /** Initiator side: the target answered a key with a value outside what was offered. */
  | 'INADMISSIBLE_ANSWER'
  /** Initiator side: the target sent a malformed declaration or a reserved answer to nothing. */
  | 'UNEXPECTED_ANSWER';

export interface NegotiationFailure {
  readonly ok: false;
  readonly code: NegotiationErrorCode;
  /**
   * Target role: the Login Response status to answer with (constants.LoginStatus[status]).
   * Initiator role: informational; the initiator drops the connection.
   */
  readonly status: LoginStatusName;
  /** In the Full Feature Phase there is no login status: answer with a Reject PDU carrying this reason. */
  readonly rejectReason: number;
  readonly key?: string;
  /** One line for the log. Never contains a secret. */
  readonly reason: string;
  readonly chap?: ChapFailureCode;
}

function failure(
  code: NegotiationErrorCode,
  status: LoginStatusName,
  reason: string,
  extra: { key?: string; chap?: ChapFailureCode } = {},
): NegotiationFailure {
  return { ok: false, code, status, rejectReason: RejectReason.PROTOCOL_ERROR, reason, ...extra };
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

type LoginStageName = 'security' | 'operational';
type StageName = LoginStageName | 'full-feature';

function toPairs(input: Iterable<TextPairInput>): TextPair[] {
  const out: TextPair[] = [];
  for (const p of input) {
    if (Array.isArray(p)) out.push([String(p[0]), String(p[1])]);
    else {
      const o = p as { key: string; value: string };
      out.push([String(o.key), String(o.value)]);
    }
  }
  return out;
}

function loginStageOf(csg: number): LoginStageName | null {
  if (csg === Stage.SECURITY_NEGOTIATION) return 'security';
  if (csg === Stage.LOGIN_OPERATIONAL_NEGOTIATION) return 'operational';
  return null;
}

const STAGE_RANK: Record<StageName, number> = { security: 0, operational: 1, 'full-feature': 3 };

function phaseAllows(phase: KeyPhase, stage: LoginStageName): boolean {
  return phase === 'any' || phase === stage;
}

function stageLabel(stage: LoginStageName): string {
  return stage === 'security' ? 'security negotiation' : 'operational negotiation';
}

/** Key-name syntax and repeats (§6.1, §6.2). Returns the updated seen-set or a failure. */
function checkKeys(pairs: readonly TextPair[], seenBefore: readonly string[], who: string): Set<string> | NegotiationFailure {
  const seen = new Set(seenBefore);
  for (const [key] of pairs) {
    if (!isWellFormedKeyName(key)) {
      return failure('MALFORMED_KEY', 'INITIATOR_ERROR', `malformed key name ${JSON.stringify(key.slice(0, 80))} from the ${who}`, { key });
    }
    if (seen.has(key)) {
      return failure('REPEATED_KEY', 'INITIATOR_ERROR', `${key} was sent twice by the ${who} in one negotiation (RFC 7143 §6.2)`, { key });
    }
    seen.add(key);
  }
  return seen;
}

function isFailure(x: unknown): x is NegotiationFailure {
  return typeof x === 'object' && x !== null && (x as { ok?: unknown }).ok === false;
}

/** Acceptor side of a boolean key (§6.2.2). */
function acceptBoolean(def: BooleanKeyDef, offered: boolean, ours: boolean): boolean {
  return def.result === 'AND' ? offered && ours : offered || ours;
}

/** Acceptor side of a Minimum/Maximum key. */
function acceptNumber(def: NumericKeyDef, offered: number, ours: number): number {
  return def.result === 'Maximum' ? Math.max(offered, ours) : Math.min(offered, ours);
}

/** Whether an acceptor's boolean answer is admissible for what we offered. */
function booleanAnswerAdmissible(def: BooleanKeyDef, offered: boolean, answer: boolean): boolean {
  if (def.result === 'AND') return offered || !answer;
  return !offered || answer;
}

function numberAnswerAdmissible(def: NumericKeyDef, offered: number, answer: number): boolean {
  if (def.result === 'Minimum') return answer <= offered;
  if (def.result === 'Maximum') return answer >= offered;
  return true;
}

function plainText(value: string): boolean {
  return byteLength(value) <= VALUE_MAX_BYTES && !/\p{Cc}/u.test(value);
}

// ---------------------------------------------------------------------------
// Login identity (first Login Request)
// ---------------------------------------------------------------------------

export interface LoginIdentity {
  /** Normalized (lowercase) initiator name. */
  readonly InitiatorName: string;
  /** Normalized target name; absent in a discovery session that named none. */
  readonly TargetName?: string;
  readonly SessionType: SessionType;
  readonly InitiatorAlias?: string;
  /** Names accepted on the wire that break the strict iqn./eui./naa. grammar, for a log line. */
  readonly warnings: readonly string[];
}

/**
 * Read InitiatorName, TargetName and SessionType from the first Login Request
 * — what the target needs to find the target node, the ACL and the CHAP
 * credentials before it negotiates anything. negotiateLogin() calls it too.
 */
export function readLoginIdentity(
  input: Iterable<TextPairInput>,
  options: { allowDiscovery?: boolean } = {},
): { ok: true; identity: LoginIdentity } | NegotiationFailure {
  const pairs = toPairs(input);
  const get = (k: string): string | undefined => pairs.find(([key]) => key === k)?.[1];
  const warnings: string[] = [];

  const rawInitiator = get('InitiatorName');
  if (rawInitiator === undefined) {
    return failure('MISSING_INITIATOR_NAME', 'MISSING_PARAMETER', 'the first Login Request has no InitiatorName', { key: 'InitiatorName' });
  }
  const initiator = checkWireIscsiName(rawInitiator);
  if (!initiator.ok) return failure('BAD_INITIATOR_NAME', 'INITIATOR_ERROR', `InitiatorName: ${initiator.reason}`, { key: 'InitiatorName' });
  if (!initiator.wellFormed) warnings.push(`InitiatorName ${initiator.name}: ${initiator.reason}`);

  const rawType = get('SessionType') ?? 'Normal';
  if (rawType !== 'Normal' && rawType !== 'Discovery') {
    return failure('BAD_SESSION_TYPE', 'SESSION_TYPE_NOT_SUPPORTED', `SessionType=${rawType.slice(0, 40)} is neither Discovery nor Normal`, { key: 'SessionType' });
  }
  if (rawType === 'Discovery' && options.allowDiscovery === false) {
    return failure('DISCOVERY_DISABLED', 'SESSION_TYPE_NOT_SUPPORTED', 'discovery sessions are turned off on this portal', { key: 'SessionType' });
  }

  const rawTarget = get('TargetName');
  let targetName: string | undefined;
  if (rawTarget === undefined) {
    if (rawType === 'Normal') {
      return failure('MISSING_TARGET_NAME', 'MISSING_PARAMETER', 'the first Login Request of a normal session has no TargetName', { key: 'TargetName' });
    }
  } else {
    const target = checkWireIscsiName(rawTarget);
    if (!target.ok) return failure('BAD_TARGET_NAME', 'NOT_FOUND', `TargetName: ${target.reason}`, { key: 'TargetName' });
    if (!target.wellFormed) warnings.push(`TargetName ${target.name}: ${target.reason}`);
    targetName = target.name;
  }

  const alias = get('InitiatorAlias');
  const identity: LoginIdentity = {
    InitiatorName: initiator.name,
    SessionType: rawType,
    ...(targetName !== undefined ? { TargetName: targetName } : {}),
    ...(alias !== undefined && plainText(alias) ? { InitiatorAlias: alias } : {}),
    warnings,
  };
  return { ok: true, identity };
}

/** The operational keys both sides state a preference for (RFC 7143 §13). */
export interface OperationalPreferences {
  readonly HeaderDigest: readonly DigestName[];
  readonly DataDigest: readonly DigestName[];
  readonly InitialR2T: boolean;
  readonly ImmediateData: boolean;
  readonly DataPDUInOrder: boolean;
  readonly DataSequenceInOrder: boolean;
  readonly MaxConnections: number;
  readonly MaxBurstLength: number;
  readonly FirstBurstLength: number;
  readonly DefaultTime2Wait: number;
  readonly DefaultTime2Retain: number;
  readonly MaxOutstandingR2T: number;
  readonly ErrorRecoveryLevel: number;
  /** Declarative: what this side can receive (§13.12). */
  readonly MaxRecvDataSegmentLength: number;
}

// ---------------------------------------------------------------------------
// Target side
// ---------------------------------------------------------------------------

/**
 * What the target accepts and prefers. List keys: the set it supports (the
 * initiator's order decides among them). Boolean and numeric keys: the
 * target's own value, combined with the initiator's by the key's result
 * function. MaxRecvDataSegmentLength: what the target declares it can receive.
 */
export interface TargetNegotiationConfig extends OperationalPreferences {
  readonly TaskReporting: readonly TaskReportingValue[];
  readonly iSCSIProtocolLevel: number;
  /** Sent in the first Login Response of a normal session (§13.9). */
  readonly TargetPortalGroupTag: number;
  /** Sent in the first Login Response of a normal session when set (§13.6). */
  readonly TargetAlias?: string;
  /** Whether SessionType=Discovery is accepted on this portal. */
  readonly allowDiscovery: boolean;
}

/** Largest 24-bit length that is a multiple of 4 KiB (16 MiB - 4 KiB). */
export const MAX_ALIGNED_BURST_LENGTH = 16773120;

/**
 * Spindle's target defaults (SPEC §6): large segments and bursts, immediate
 * and unsolicited data, digests if the initiator wants them. What a session
 * gets still depends on what the initiator offers.
 */
export const DEFAULT_TARGET_CONFIG: TargetNegotiationConfig = Object.freeze({
  HeaderDigest: Object.freeze(['CRC32C', 'None'] as DigestName[]),
  DataDigest: Object.freeze(['CRC32C', 'None'] as DigestName[]),
  TaskReporting: Object.freeze(['RFC3720'] as TaskReportingValue[]),
  InitialR2T: false,
  ImmediateData: true,
  DataPDUInOrder: true,
  DataSequenceInOrder: true,
  MaxConnections: 1,
  MaxBurstLength: MAX_ALIGNED_BURST_LENGTH,
  FirstBurstLength: 262144,
  DefaultTime2Wait: 2,
  DefaultTime2Retain: 20,
  MaxOutstandingR2T: 1,
  ErrorRecoveryLevel: 0,
  iSCSIProtocolLevel: 1,
  MaxRecvDataSegmentLength: 262144,
  TargetPortalGroupTag: 1,
  allowDiscovery: true,
});

/** How the target authenticates initiators on this connection (from the ACL). */
export type TargetAuthPolicy =
  | { readonly method: 'None' }
  | {
      readonly method: 'CHAP';
      /** The initiator's CHAP user and secret. */
      readonly initiator: ChapCredentials;
      /** The target's own user and secret, answered when the initiator asks for mutual CHAP. */
      readonly mutual?: ChapCredentials;
      /** Also accept AuthMethod=None (CHAP only if the initiator offers it first). Default false. */
      readonly allowNone?: boolean;
    };

export interface TargetNegotiation {
  readonly role: 'target';
  readonly config: TargetNegotiationConfig;
  readonly auth: TargetAuthPolicy;
  /** False for a connection added to an existing session (TSIH != 0). */
  readonly leading: boolean;
  /** Committed login stage ('full-feature' after finishLogin). */
  readonly stage: StageName;
  /** Login Requests negotiated on this connection. */
  readonly requests: number;
  readonly identity?: LoginIdentity;
  readonly params: SessionParams;
  /** Keys received in the current negotiation (the login, or one text sequence). */
  readonly seen: readonly string[];
  /** Keys the target has declared on this connection. */
  readonly sent: readonly string[];
  readonly authMethod?: AuthMethodName;
  /** True when the auth policy is satisfied (None allowed, or CHAP verified). */
  readonly authenticated: boolean;
  readonly chap?: TargetChap;
  /** Other declarations received (X#NodeArchitecture...). */
  readonly peerDeclared: Readonly<Record<string, string>>;
  readonly random?: RandomSource;
  readonly isOwnChallenge?: (challenge: Uint8Array) => boolean;
}

export interface CreateTargetNegotiationOptions {
  readonly config?: Partial<TargetNegotiationConfig>;
  readonly auth?: TargetAuthPolicy;
  /** False when the initiator adds a connection to an existing session. Default true. */
  readonly leading?: boolean;
  /** For a secondary connection: the session's negotiated parameters (its LO values stay). */
  readonly sessionParams?: SessionParams;
  /** CHAP challenge randomness (crypto.randomBytes by default). */
  readonly random?: RandomSource;
  /** See TargetChapOptions.isOwnChallenge. */
  readonly isOwnChallenge?: (challenge: Uint8Array) => boolean;
}

function checkTargetConfig(c: TargetNegotiationConfig): void {
  const num = (name: string, v: number): void => {
    const def = KEYS.get(name) as NumericKeyDef;
    if (!Number.isInteger(v) || v < def.min || v > def.max) {
      throw new RangeError(`target ${name} ${v} is outside ${def.min}..${def.max}`);
    }
  };
  for (const k of NUM_PARAMS) num(k, c[k]);
  num('MaxRecvDataSegmentLength', c.MaxRecvDataSegmentLength);
  num('TargetPortalGroupTag', c.TargetPortalGroupTag);
  for (const k of ['HeaderDigest', 'DataDigest'] as const) {
    if (c[k].length === 0 || c[k].some((v) => v !== 'CRC32C' && v !== 'None')) throw new RangeError(`target ${k} must list CRC32C and/or None`);
  }
  if (c.TaskReporting.length === 0) throw new RangeError('target TaskReporting must list at least RFC3720');
  if (c.TargetAlias !== undefined && !plainText(c.TargetAlias)) throw new RangeError('TargetAlias must be at most 255 bytes without control characters');
}

/**
 * Start negotiating one connection. Throws ChapConfigError for a CHAP
 * configuration Spindle refuses (short or reused secrets) and RangeError for
 * out-of-range preferences — configuration errors, caught before any login.
 */
export function createTargetNegotiation(options: CreateTargetNegotiationOptions = {}): TargetNegotiation {
  const config: TargetNegotiationConfig = Object.freeze({ ...DEFAULT_TARGET_CONFIG, ...options.config });
  checkTargetConfig(config);
  let auth: TargetAuthPolicy = options.auth ?? { method: 'None' };
  if (auth.method === 'CHAP') {
    // Validate now (throws ChapConfigError) so a bad secret never reaches a login,
    // and keep sealed copies so logging the state never shows a secret.
    createTargetChap({ initiator: auth.initiator, ...(auth.mutual ? { mutual: auth.mutual } : {}) });
    auth = Object.freeze({
      ...auth,
      initiator: sealCredentials(auth.initiator),
      ...(auth.mutual ? { mutual: sealCredentials(auth.mutual) } : {}),
    });
  }
  const base = cloneParams(options.sessionParams ?? RFC_DEFAULTS);
  // Connection-scoped keys start from their defaults on every connection.
  base.HeaderDigest = RFC_DEFAULTS.HeaderDigest;
  base.DataDigest = RFC_DEFAULTS.DataDigest;
  base.MaxRecvDataSegmentLength = { ...RFC_DEFAULTS.MaxRecvDataSegmentLength };
  return {
    role: 'target',
    config,
    auth,
    leading: options.leading ?? true,
    stage: 'security',
    requests: 0,
    params: freezeParams(base),
    seen: [],
    sent: [],
    authenticated: auth.method === 'None' || auth.allowNone === true,
    peerDeclared: {},
    ...(options.random ? { random: options.random } : {}),
    ...(options.isOwnChallenge ? { isOwnChallenge: options.isOwnChallenge } : {}),
  };
}

function acceptedAuthMethods(auth: TargetAuthPolicy): readonly string[] {
  if (auth.method === 'None') return ['None'];
  return auth.allowNone ? ['CHAP', 'None'] : ['CHAP'];
}

/** One complete Login Request as the negotiator needs it. */
export interface LoginRequestText {
  /** CSG: Stage.SECURITY_NEGOTIATION (0) or Stage.LOGIN_OPERATIONAL_NEGOTIATION (1). */
  readonly stage: number;
  /** T bit. */
  readonly transit: boolean;
  /** NSG (meaningful when transit). */
  readonly nsg?: number;
  readonly pairs: Iterable<TextPairInput>;
}

export type TargetLoginResult =
  | {
      readonly ok: true;
      readonly state: TargetNegotiation;
      /** Pairs for the Login Response, in order. */
      readonly response: TextPair[];
      /**
       * Whether the target agrees to leave this stage now. Answer with
       * T = request.transit && canTransit (and the request's NSG).
       */
      readonly canTransit: boolean;
    }
  | NegotiationFailure;

type TargetDraft = Omit<Mutable<TargetNegotiation>, 'params'> & { params: Params };

/**
 * Negotiate one Login Request on the target side (RFC 7143 §6.2, §6.3).
 * On failure, answer with a Login Response carrying LoginStatus[f.status]
 * and close the connection.
 */
export function negotiateLogin(state: TargetNegotiation, request: LoginRequestText): TargetLoginResult {
  if (state.stage === 'full-feature') {
    return failure('STAGE_ORDER', 'INITIATOR_ERROR', 'a Login Request arrived after the login finished');
  }
  const stage = loginStageOf(request.stage);
  if (stage === null) return failure('STAGE_ORDER', 'INITIATOR_ERROR', `CSG=${request.stage} is not a login negotiation stage`);
  if (STAGE_RANK[stage] < STAGE_RANK[state.stage]) {
    return failure('STAGE_ORDER', 'INITIATOR_ERROR', 'the initiator went back to security negotiation after leaving it');
  }
  if (request.transit) {
    const nsg = request.nsg;
    if ((nsg !== Stage.LOGIN_OPERATIONAL_NEGOTIATION && nsg !== Stage.FULL_FEATURE_PHASE) || nsg <= request.stage) {
      return failure('STAGE_ORDER', 'INITIATOR_ERROR', `T=1 with NSG=${String(nsg)} from CSG=${request.stage} is not a valid transition`);
    }
  }

  const pairs = toPairs(request.pairs);
  const seen = checkKeys(pairs, state.seen, 'initiator');
  if (isFailure(seen)) return seen;

  const d: TargetDraft = { ...state, params: cloneParams(state.params), stage };
  const first = state.requests === 0;
  if (first) {
    const id = readLoginIdentity(pairs, { allowDiscovery: state.config.allowDiscovery });
    if (!id.ok) return id;
    d.identity = id.identity;
    d.params.SessionType = id.identity.SessionType;
  } else {
    for (const late of ['SessionType', 'TargetName'] as const) {
      if (pairs.some(([k]) => k === late)) {
        return failure('LATE_DECLARATION', 'INITIATOR_ERROR', `${late} must be sent in the first Login Request`, { key: late });
      }
    }
  }
  if (stage === 'operational' && !d.authenticated) {
    return failure('AUTH_REQUIRED', 'AUTHENTICATION_FAILURE', 'this target requires CHAP; the initiator skipped security negotiation');
  }

  const discovery = d.params.SessionType === 'Discovery';
  const slots: Array<TextPair | null> = [];
  const chapKeys = new Map<string, string>();
  let deferredFirstBurst: { slot: number; value: string } | undefined;

  for (const [key, value] of pairs) {
    const def = lookupKey(key);
    if (def === undefined) {
      // Unknown keys, X- and unregistered X# keys (§6.2).
      slots.push([key, NOT_UNDERSTOOD]);
      continue;
    }
    if (!mayBeSentBy(def, 'initiator')) {
      // An initiator that did not understand a key we declared may say so: ignore that.
      if (RESERVED_ANSWERS.has(value) && state.sent.includes(key)) {
        slots.push(null);
        continue;
      }
      return failure('WRONG_SENDER', 'INITIATOR_ERROR', `${key} may only be sent by a target`, { key });
    }
    if (def.use === 'FFPO') {
      return failure('WRONG_STAGE', 'INITIATOR_ERROR', `${key} is only allowed in the Full Feature Phase`, { key });
    }
    if (!phaseAllows(def.phase, stage)) {
      return failure('WRONG_STAGE', 'INITIATOR_ERROR', `${key} is not allowed during ${stageLabel(stage)}`, { key });
    }
    if (!state.leading && def.use === 'LO' && key !== 'SessionType') {
      return failure('LEADING_ONLY', 'INITIATOR_ERROR', `${key} may only be negotiated on the leading connection of a session`, { key });
    }
    if (def.type !== 'auth' && RESERVED_ANSWERS.has(value)) {
      return failure('RESERVED_VALUE', 'INITIATOR_ERROR', `${key}=${value}: ${value} is an answer, not an offer (RFC 7143 §6.2)`, { key });
    }
    const slot = answerAsTarget(d, def, value, discovery, chapKeys);
    if (isFailure(slot)) return slot;
    if (slot === 'defer') {
      deferredFirstBurst = { slot: slots.length, value };
      slots.push(null);
    } else {
      slots.push(slot);
    }
  }

  // FirstBurstLength last: it depends on InitialR2T, ImmediateData and MaxBurstLength (§13.14).
  if (deferredFirstBurst) {
    const def = KEYS.get('FirstBurstLength') as NumericKeyDef;
    const p = d.params;
    let answer: string;
    if (p.InitialR2T && !p.ImmediateData) {
      answer = IRRELEVANT;
    } else {
      const n = parseKeyNumber(def, deferredFirstBurst.value);
      if (n === null) answer = REJECT;
      else {
        p.FirstBurstLength = Math.min(n, d.config.FirstBurstLength, p.MaxBurstLength);
        answer = String(p.FirstBurstLength);
      }
    }
    slots[deferredFirstBurst.slot] = ['FirstBurstLength', answer];
  }

  const response = slots.filter((s): s is TextPair => s !== null);

  if (chapKeys.size > 0) {
    if (d.authMethod !== 'CHAP' || d.chap === undefined) {
      return failure('AUTH_FAILED', 'AUTHENTICATION_FAILURE', 'CHAP keys arrived before AuthMethod=CHAP was agreed', { chap: 'UNEXPECTED_KEY' });
    }
    const step = targetChapStep(d.chap, chapKeys);
    if (!step.ok) return failure('AUTH_FAILED', 'AUTHENTICATION_FAILURE', `CHAP: ${step.reason}`, { chap: step.code });
    d.chap = step.chap;
    response.push(...step.response);
    if (step.done) d.authenticated = true;
  }

  // What the target owes: TargetPortalGroupTag (and TargetAlias) in the first
  // response of a normal session (§13.9, §13.6); its own MaxRecvDataSegmentLength
  // once per connection, in operational negotiation (§13.12).
  const sent = [...state.sent];
  if (first && !discovery) {
    response.push(['TargetPortalGroupTag', String(d.config.TargetPortalGroupTag)]);
    sent.push('TargetPortalGroupTag');
    if (d.config.TargetAlias !== undefined) {
      response.push(['TargetAlias', d.config.TargetAlias]);
      sent.push('TargetAlias');
    }
  }
  if (stage === 'operational' && !sent.includes('MaxRecvDataSegmentLength')) {
    response.push(['MaxRecvDataSegmentLength', String(d.config.MaxRecvDataSegmentLength)]);
    sent.push('MaxRecvDataSegmentLength');
    d.params.MaxRecvDataSegmentLength = { ...d.params.MaxRecvDataSegmentLength, target: d.config.MaxRecvDataSegmentLength };
  }

  let canTransit = true;
  if (stage === 'security' && !d.authenticated) {
    canTransit = false;
    if (request.transit && d.authMethod === undefined) {
      return failure('AUTH_REQUIRED', 'AUTHENTICATION_FAILURE', 'the initiator tried to leave security negotiation without authenticating; this target requires CHAP');
    }
  }

  d.requests = state.requests + 1;
  d.seen = [...seen];
  d.sent = sent;
  freezeParams(d.params);
  if (request.transit && canTransit && request.nsg === Stage.LOGIN_OPERATIONAL_NEGOTIATION) d.stage = 'operational';
  return { ok: true, state: d, response, canTransit };
}

/** The target's answer to one offered key (null: no answer; 'defer': FirstBurstLength). */
function answerAsTarget(
  d: TargetDraft,
  def: KeyDef,
  value: string,
  discovery: boolean,
  chapKeys: Map<string, string>,
): TextPair | null | 'defer' | NegotiationFailure {
  const key = def.name;
  const p = d.params;
  switch (def.type) {
    case 'iscsi-name':
    case 'enum':
      return null; // InitiatorName / TargetName / SessionType: read by readLoginIdentity.
    case 'local-name':
      if (!plainText(value)) return [key, REJECT];
      if (d.identity) d.identity = { ...d.identity, InitiatorAlias: value };
      return null;
    case 'text':
      d.peerDeclared = { ...d.peerDeclared, [key]: value };
      return null;
    case 'obsolete':
      return [key, REJECT]; // §13.25
    case 'iser':
      if (key !== 'RDMAExtensions') return [key, IRRELEVANT];
      if (discovery) return [key, IRRELEVANT];
      return [key, parseBoolean(value) === null ? REJECT : 'No']; // AND with our No: no RDMA over TCP.
    case 'auth':
      chapKeys.set(key, value);
      return null;
    case 'list': {
      if (def.irrelevantInDiscovery && discovery) return [key, IRRELEVANT];
      const items = parseList(value);
      if (key === 'AuthMethod') {
        const accepted = acceptedAuthMethods(d.auth);
        const choice = items?.find((v) => accepted.includes(v));
        if (choice === undefined) {
          const why =
            d.auth.method === 'CHAP'
              ? 'this target requires CHAP and the initiator did not offer it'
              : 'no CHAP user is configured for this initiator, so only AuthMethod=None is possible';
          return failure('AUTH_METHOD_UNAVAILABLE', 'AUTHENTICATION_FAILURE', `AuthMethod=${value.slice(0, 60)}: ${why}`, { key });
        }
        d.authMethod = choice as AuthMethodName;
        if (choice === 'CHAP' && d.auth.method === 'CHAP') {
          d.authenticated = false;
          d.chap = createTargetChap({
            initiator: d.auth.initiator,
            ...(d.auth.mutual ? { mutual: d.auth.mutual } : {}),
            ...(d.random ? { random: d.random } : {}),
            ...(d.isOwnChallenge ? { isOwnChallenge: d.isOwnChallenge } : {}),
          });
        } else {
          d.authenticated = true;
        }
        return [key, choice];
      }
      const supported: readonly string[] = d.config[key as ListParam];
      const choice = items?.find((v) => supported.includes(v));
      if (choice === undefined) return [key, REJECT];
      setListParam(p, key as ListParam, choice);
      return [key, choice];
    }
    case 'boolean': {
      if (def.irrelevantInDiscovery && discovery) return [key, IRRELEVANT];
      const offered = parseBoolean(value);
      if (offered === null || !isBoolParam(key)) return [key, REJECT];
      const result = acceptBoolean(def, offered, d.config[key]);
      p[key] = result;
      return [key, formatBoolean(result)];
    }
    case 'numeric': {
      if (def.result === 'Declarative') {
        // MaxRecvDataSegmentLength: what the initiator can receive.
        const n = parseKeyNumber(def, value);
        if (n === null) return [key, REJECT];
        p.MaxRecvDataSegmentLength = { ...p.MaxRecvDataSegmentLength, initiator: n };
        return null;
      }
      if (def.irrelevantInDiscovery && discovery) return [key, IRRELEVANT];
      if (key === 'FirstBurstLength') return 'defer';
      const n = parseKeyNumber(def, value);
      if (n === null || !isNumParam(key)) return [key, REJECT];
      const result = acceptNumber(def, n, d.config[key]);
      p[key] = result;
      return [key, String(result)];
    }
  }
}

export type FinishResult =
  | { readonly ok: true; readonly params: SessionParams; readonly identity: LoginIdentity; readonly state: TargetNegotiation }
  | NegotiationFailure;

/**
 * Close the login (the target is answering T=1 NSG=3): the negotiated
 * SessionParams, with FirstBurstLength capped at MaxBurstLength and
 * MaxConnections=1 for discovery. Fails when a value the target requires
 * (e.g. HeaderDigest=CRC32C only) was never agreed.
 */
export function finishLogin(state: TargetNegotiation): FinishResult {
  if (state.identity === undefined) return failure('STAGE_ORDER', 'INITIATOR_ERROR', 'login finished before any Login Request was negotiated');
  if (!state.authenticated || (state.chap !== undefined && state.chap.step !== 'done')) {
    return failure('AUTH_REQUIRED', 'AUTHENTICATION_FAILURE', 'login cannot finish before CHAP authentication completes');
  }
  const p = cloneParams(state.params);
  if (p.SessionType === 'Discovery') p.MaxConnections = 1;
  if (p.FirstBurstLength > p.MaxBurstLength) p.FirstBurstLength = p.MaxBurstLength;
  for (const k of ['HeaderDigest', 'DataDigest'] as const) {
    if (!state.config[k].includes(p[k])) {
      return failure(
        'REQUIRED_VALUE_NOT_NEGOTIATED',
        'INITIATOR_ERROR',
        `this target requires ${k}=${state.config[k].join(' or ')}, and the initiator did not offer it`,
        { key: k },
      );
    }
  }
  const params = freezeParams(p);
  return { ok: true, params, identity: state.identity, state: { ...state, stage: 'full-feature', params, seen: [] } };
}

export type TextNegotiationResult =
  | {
      readonly ok: true;
      readonly state: TargetNegotiation;
      readonly response: TextPair[];
      /**
       * The SendTargets value ("All", a target name, or "") when the request
       * carried one: the caller appends TargetName / TargetAddress pairs.
       */
      readonly sendTargets?: string;
    }
  | NegotiationFailure;

/**
 * Negotiate a Text Request in the Full Feature Phase. Only keys with use ALL
 * or FFPO are allowed (MaxRecvDataSegmentLength, InitiatorAlias,
 * SendTargets); login-only keys are a protocol error (Reject PDU, reason
 * `rejectReason`). `newSequence`: this request starts a new text negotiation
 * (a fresh ITT, TTT=0xffffffff) — keys may be negotiated again; default true.
 */
export function negotiateText(
  state: TargetNegotiation,
  input: Iterable<TextPairInput>,
  options: { newSequence?: boolean } = {},
): TextNegotiationResult {
  if (state.stage !== 'full-feature') {
    return failure('STAGE_ORDER', 'INITIATOR_ERROR', 'a Text Request arrived before the login finished');
  }
  const pairs = toPairs(input);
  const seen = checkKeys(pairs, options.newSequence === false ? state.seen : [], 'initiator');
  if (isFailure(seen)) return seen;
  const params = cloneParams(state.params);
  let identity = state.identity;
  const response: TextPair[] = [];
  let sendTargets: string | undefined;

  for (const [key, value] of pairs) {
    const def = lookupKey(key);
    if (def === undefined) {
      response.push([key, NOT_UNDERSTOOD]);
      continue;
    }
    if (!mayBeSentBy(def, 'initiator')) {
      if (RESERVED_ANSWERS.has(value) && state.sent.includes(key)) continue;
      return failure('WRONG_SENDER', 'INITIATOR_ERROR', `${key} may only be sent by a target`, { key });
    }
    if (!allowedInFullFeature(def)) {
      return failure('WRONG_STAGE', 'INITIATOR_ERROR', `${key} can only be negotiated during login, not in a Text Request`, { key });
    }
    if (RESERVED_ANSWERS.has(value)) {
      return failure('RESERVED_VALUE', 'INITIATOR_ERROR', `${key}=${value}: ${value} is an answer, not an offer (RFC 7143 §6.2)`, { key });
    }
    if (key === 'SendTargets') {
      sendTargets = value;
    } else if (key === 'MaxRecvDataSegmentLength') {
      const n = parseKeyNumber(def as NumericKeyDef, value);
      if (n === null) response.push([key, REJECT]);
      else params.MaxRecvDataSegmentLength = { ...params.MaxRecvDataSegmentLength, initiator: n };
    } else if (key === 'InitiatorAlias') {
      if (!plainText(value)) response.push([key, REJECT]);
      else if (identity) identity = { ...identity, InitiatorAlias: value };
    }
  }
  const next: TargetNegotiation = { ...state, params: freezeParams(params), seen: [...seen], ...(identity ? { identity } : {}) };
  return { ok: true, state: next, response, ...(sendTargets !== undefined ? { sendTargets } : {}) };
}

// ---------------------------------------------------------------------------
// Initiator side
// ---------------------------------------------------------------------------

/**
 * What Spindle's initiator offers. List keys are offered in this order
 * (preference first); booleans and numbers are offered as given and the
 * target's answer is checked against the key's result function.
 */
export interface InitiatorNegotiationConfig extends OperationalPreferences {
  readonly InitiatorName: string;
  readonly InitiatorAlias?: string;
  /** Required for a normal session. */
  readonly TargetName?: string;
  readonly SessionType: SessionType;
  /** CHAP credentials: when set, AuthMethod=CHAP,None is offered (CHAP only if `requireChap`). */
  readonly chap?: { readonly credentials: ChapCredentials; readonly mutual?: ChapCredentials };
  /** Refuse to log in without CHAP (only meaningful with `chap`). */
  readonly requireChap?: boolean;
  /** Offered only when set. */
  readonly TaskReporting?: readonly TaskReportingValue[];
  /** Offered only when set. */
  readonly iSCSIProtocolLevel?: number;
}

export type InitiatorIdentityConfig = Pick<InitiatorNegotiationConfig, 'InitiatorName' | 'InitiatorAlias' | 'TargetName' | 'SessionType' | 'chap' | 'requireChap'>;

/** Spindle's initiator defaults (SPEC §6): ask for large, fast values; digests if the target insists. */
export const DEFAULT_INITIATOR_OFFER: Omit<InitiatorNegotiationConfig, keyof InitiatorIdentityConfig> = Object.freeze({
  HeaderDigest: Object.freeze(['None', 'CRC32C'] as DigestName[]),
  DataDigest: Object.freeze(['None', 'CRC32C'] as DigestName[]),
  InitialR2T: false,
  ImmediateData: true,
  DataPDUInOrder: true,
  DataSequenceInOrder: true,
  MaxConnections: 1,
  MaxBurstLength: MAX_ALIGNED_BURST_LENGTH,
  FirstBurstLength: 262144,
  DefaultTime2Wait: 2,
  DefaultTime2Retain: 20,
  MaxOutstandingR2T: 1,
  ErrorRecoveryLevel: 0,
  MaxRecvDataSegmentLength: 262144,
});

export interface InitiatorNegotiation {
  readonly role: 'initiator';
  readonly config: InitiatorNegotiationConfig;
  readonly leading: boolean;
  readonly stage: StageName;
  readonly requests: number;
  readonly params: SessionParams;
  /** Offers still waiting for the target's answer: key → offered value. */
  readonly awaiting: Readonly<Record<string, string>>;
  /** Offers answered (or settled) in this login. */
  readonly settled: readonly string[];
  /** Keys received from the target in this login. */
  readonly received: readonly string[];
  /** Stages whose offers were already sent. */
  readonly offered: readonly LoginStageName[];
  /** Pairs to send with the next request (CHAP steps, answers to target offers). */
  readonly pending: readonly TextPair[];
  readonly authMethod?: AuthMethodName;
  readonly chap?: InitiatorChap;
  /** What the target declared about itself. */
  readonly target: { readonly TargetPortalGroupTag?: number; readonly TargetAlias?: string; readonly TargetAddress?: string };
  readonly random?: RandomSource;
}

export interface CreateInitiatorNegotiationOptions {
  readonly config: InitiatorIdentityConfig & Partial<Omit<InitiatorNegotiationConfig, keyof InitiatorIdentityConfig>>;
  /** False when adding a connection to an existing session. Default true. */
  readonly leading?: boolean;
  readonly sessionParams?: SessionParams;
  readonly random?: RandomSource;
}

/** Throws ChapConfigError for refused CHAP settings, RangeError for out-of-range offers. */
export function createInitiatorNegotiation(options: CreateInitiatorNegotiationOptions): InitiatorNegotiation {
  const given = options.config;
  const config: InitiatorNegotiationConfig = Object.freeze({
    ...DEFAULT_INITIATOR_OFFER,
    ...given,
    ...(given.chap
      ? { chap: Object.freeze({ credentials: sealCredentials(given.chap.credentials), ...(given.chap.mutual ? { mutual: sealCredentials(given.chap.mutual) } : {}) }) }
      : {}),
  });
  for (const k of NUM_PARAMS) {
    const v = config[k];
    if (v === undefined) continue;
    const def = KEYS.get(k) as NumericKeyDef;
    if (!Number.isInteger(v) || v < def.min || v > def.max) throw new RangeError(`initiator ${k} ${v} is outside ${def.min}..${def.max}`);
  }
  if (!Number.isInteger(config.MaxRecvDataSegmentLength) || config.MaxRecvDataSegmentLength < 512 || config.MaxRecvDataSegmentLength > MAX_24BIT) {
    throw new RangeError(`initiator MaxRecvDataSegmentLength ${config.MaxRecvDataSegmentLength} is outside 512..${MAX_24BIT}`);
  }
  if (config.SessionType === 'Normal' && !config.TargetName) throw new RangeError('a normal session needs a TargetName');
  if (config.chap) {
    createInitiatorChap({ credentials: config.chap.credentials, ...(config.chap.mutual ? { mutual: config.chap.mutual } : {}) });
  }
  const base = cloneParams(options.sessionParams ?? RFC_DEFAULTS);
  base.SessionType = config.SessionType;
  base.HeaderDigest = RFC_DEFAULTS.HeaderDigest;
  base.DataDigest = RFC_DEFAULTS.DataDigest;
  base.MaxRecvDataSegmentLength = { ...RFC_DEFAULTS.MaxRecvDataSegmentLength };
  return {
    role: 'initiator',
    config,
    leading: options.leading ?? true,
    stage: 'security',
    requests: 0,
    params: freezeParams(base),
    awaiting: {},
    settled: [],
    received: [],
    offered: [],
    pending: [],
    target: {},
    ...(options.random ? { random: options.random } : {}),
  };
}

function authOffer(c: InitiatorNegotiationConfig): string {
  if (!c.chap) return 'None';
  return c.requireChap ? 'CHAP' : 'CHAP,None';
}

function operationalOffer(c: InitiatorNegotiationConfig, leading: boolean): TextPair[] {
  const out: TextPair[] = [
    ['HeaderDigest', c.HeaderDigest.join(',')],
    ['DataDigest', c.DataDigest.join(',')],
  ];
  if (leading) {
    const normal = c.SessionType === 'Normal';
    if (normal) {
      out.push(
        ['InitialR2T', formatBoolean(c.InitialR2T)],
        ['ImmediateData', formatBoolean(c.ImmediateData)],
        ['MaxBurstLength', String(c.MaxBurstLength)],
        ['FirstBurstLength', String(c.FirstBurstLength)],
        ['MaxConnections', String(c.MaxConnections)],
        ['MaxOutstandingR2T', String(c.MaxOutstandingR2T)],
        ['DataPDUInOrder', formatBoolean(c.DataPDUInOrder)],
        ['DataSequenceInOrder', formatBoolean(c.DataSequenceInOrder)],
      );
    }
    out.push(
      ['DefaultTime2Wait', String(c.DefaultTime2Wait)],
      ['DefaultTime2Retain', String(c.DefaultTime2Retain)],
      ['ErrorRecoveryLevel', String(c.ErrorRecoveryLevel)],
    );
    if (normal && c.TaskReporting) out.push(['TaskReporting', c.TaskReporting.join(',')]);
    if (normal && c.iSCSIProtocolLevel !== undefined) out.push(['iSCSIProtocolLevel', String(c.iSCSIProtocolLevel)]);
  }
  return out;
}

/**
 * The pairs for the initiator's next Login Request in `stage`: identity keys
 * in the first request, this stage's offers once, then whatever is pending
 * (the next CHAP step, answers to keys the target offered).
 */
export function buildInitiatorOffer(state: InitiatorNegotiation, stage: number): { state: InitiatorNegotiation; pairs: TextPair[] } {
  const s = loginStageOf(stage);
  if (s === null) throw new RangeError(`CSG=${stage} is not a login negotiation stage`);
  const c = state.config;
  const pairs: TextPair[] = [];
  const awaiting: Record<string, string> = { ...state.awaiting };
  const offered = [...state.offered];
  if (state.requests === 0) {
    pairs.push(['InitiatorName', c.InitiatorName]);
    if (c.InitiatorAlias !== undefined) pairs.push(['InitiatorAlias', c.InitiatorAlias]);
    if (c.TargetName !== undefined && c.SessionType === 'Normal') pairs.push(['TargetName', c.TargetName]);
    pairs.push(['SessionType', c.SessionType]);
  }
  if (!offered.includes(s)) {
    offered.push(s);
    const offers: TextPair[] = s === 'security' ? [['AuthMethod', authOffer(c)]] : operationalOffer(c, state.leading);
    for (const [k, v] of offers) awaiting[k] = v;
    pairs.push(...offers);
    if (s === 'operational') pairs.push(['MaxRecvDataSegmentLength', String(c.MaxRecvDataSegmentLength)]);
  }
  pairs.push(...state.pending);
  const params = cloneParams(state.params);
  if (s === 'operational') params.MaxRecvDataSegmentLength = { ...params.MaxRecvDataSegmentLength, initiator: c.MaxRecvDataSegmentLength };
  return {
    state: { ...state, stage: s, requests: state.requests + 1, awaiting, offered, pending: [], params: freezeParams(params) },
    pairs,
  };
}

/**
 * Whether the initiator is ready to leave `stage` (set T=1 on the request
 * just built): security is done once AuthMethod=None was agreed or the CHAP
 * response is in that request.
 */
export function initiatorReadyToTransit(state: InitiatorNegotiation): boolean {
  if (state.stage !== 'security') return true;
  if (state.authMethod === 'None') return true;
  // Offering only None: any other answer fails the login anyway, so ask to move on at once.
  if (state.authMethod === undefined) return state.config.chap === undefined;
  return state.chap !== undefined && (state.chap.step === 'await-mutual' || state.chap.step === 'done');
}

export type InitiatorCheckResult = { readonly ok: true; readonly state: InitiatorNegotiation } | NegotiationFailure;

type InitiatorDraft = Omit<Mutable<InitiatorNegotiation>, 'params' | 'awaiting'> & { params: Params; awaiting: Record<string, string> };

function initiatorFail(code: NegotiationErrorCode, reason: string, key?: string, chap?: ChapFailureCode): NegotiationFailure {
  return failure(code, 'INITIATOR_ERROR', reason, { ...(key ? { key } : {}), ...(chap ? { chap } : {}) });
}

/**
 * Check one Login Response (its pairs, the stage it answered, and its T
 * bit). Answers outside what was offered, repeated keys, keys only an
 * initiator may send and malformed declarations are failures: drop the
 * connection (RFC 7143 §6.2). Keys the target offered on its own are
 * answered in `state.pending` (sent by the next buildInitiatorOffer).
 */
export function checkTargetResponse(
  state: InitiatorNegotiation,
  response: { readonly stage: number; readonly transit: boolean; readonly nsg?: number; readonly pairs: Iterable<TextPairInput> },
): InitiatorCheckResult {
  const stage = loginStageOf(response.stage);
  if (stage === null) return initiatorFail('STAGE_ORDER', `the target answered with CSG=${response.stage}`);
  // A target repeating one of its declarations with the same value is harmless; a changed value is not.
  const pairs = toPairs(response.pairs).filter(([k, v]) => !(state.received.includes(k) && sameDeclaration(state, k, v)));
  const received = checkKeys(pairs, state.received, 'target');
  if (isFailure(received)) return { ...received, status: 'INITIATOR_ERROR' };

  const d: InitiatorDraft = {
    ...state,
    params: cloneParams(state.params),
    awaiting: { ...state.awaiting },
    settled: [...state.settled],
    pending: [...state.pending],
    target: { ...state.target },
  };
  const chapKeys = new Map<string, string>();
  const c = d.config;

  for (const [key, value] of pairs) {
    const def = lookupKey(key);
    if (def === undefined) {
      if (!RESERVED_ANSWERS.has(value)) d.pending = [...d.pending, [key, NOT_UNDERSTOOD]];
      continue;
    }
    if (def.type === 'auth') {
      if (stage !== 'security') return initiatorFail('WRONG_STAGE', `${key} outside security negotiation`, key);
      chapKeys.set(key, value);
      continue;
    }
    const offeredValue = d.awaiting[key];
    if (offeredValue !== undefined) {
      const r = applyAnswer(d, def, offeredValue, value);
      if (isFailure(r)) return r;
      delete d.awaiting[key];
      d.settled = [...d.settled, key];
      continue;
    }
    if (!mayBeSentBy(def, 'target')) {
      if (RESERVED_ANSWERS.has(value)) continue; // e.g. InitiatorAlias=NotUnderstood
      return initiatorFail('WRONG_SENDER', `the target sent ${key}, which only an initiator may send`, key);
    }
    if (!phaseAllows(def.phase, stage) || def.use === 'FFPO') {
      return initiatorFail('WRONG_STAGE', `the target sent ${key} during ${stageLabel(stage)}`, key);
    }
    if (d.settled.includes(key)) return initiatorFail('REPEATED_KEY', `the target answered ${key} twice`, key);
    if (key === 'MaxRecvDataSegmentLength' && RESERVED_ANSWERS.has(value)) {
      // The target refused our declaration: it will assume the default (8192) for what we receive.
      resetInitiatorMaxRecv(d);
      continue;
    }
    if (RESERVED_ANSWERS.has(value)) return initiatorFail('UNEXPECTED_ANSWER', `the target answered ${key}=${value} to an offer never made`, key);
    const r = takeTargetOffer(d, def, value);
    if (isFailure(r)) return r;
  }

  if (chapKeys.size > 0) {
    if (d.authMethod !== 'CHAP' || d.chap === undefined) {
      return initiatorFail('AUTH_FAILED', 'the target sent CHAP keys before AuthMethod=CHAP was agreed', undefined, 'UNEXPECTED_KEY');
    }
    const step = initiatorChapStep(d.chap, chapKeys);
    if (!step.ok) return initiatorFail('AUTH_FAILED', `CHAP: ${step.reason}`, undefined, step.code);
    d.chap = step.chap;
    d.pending = [...d.pending, ...step.response];
  }
  if (d.authMethod === 'CHAP' && d.chap && d.chap.step === 'start') {
    const start = initiatorChapStart(d.chap);
    d.chap = start.chap;
    d.pending = [...d.pending, ...start.request];
  }

  if (response.transit && stage === 'security') {
    if (d.authMethod === 'CHAP' && (d.chap === undefined || d.chap.step !== 'done')) {
      return initiatorFail('AUTH_FAILED', 'the target ended security negotiation before CHAP completed (mutual CHAP answer missing)', undefined, 'MISSING_KEY');
    }
    if (c.requireChap && d.authMethod !== 'CHAP') {
      return initiatorFail('AUTH_REQUIRED', 'the target ended security negotiation without CHAP, which this initiator requires');
    }
  }

  d.received = [...received];
  freezeParams(d.params);
  if (response.transit && response.nsg === Stage.LOGIN_OPERATIONAL_NEGOTIATION) d.stage = 'operational';
  return { ok: true, state: d };
}

function resetInitiatorMaxRecv(d: InitiatorDraft): void {
  d.params.MaxRecvDataSegmentLength = { ...d.params.MaxRecvDataSegmentLength, initiator: RFC_DEFAULTS.MaxRecvDataSegmentLength.initiator };
}

function sameDeclaration(state: InitiatorNegotiation, key: string, value: string): boolean {
  const def = lookupKey(key);
  switch (key) {
    case 'TargetPortalGroupTag':
    case 'MaxRecvDataSegmentLength': {
      const n = def?.type === 'numeric' ? parseKeyNumber(def, value) : null;
      const had = key === 'TargetPortalGroupTag' ? state.target.TargetPortalGroupTag : state.params.MaxRecvDataSegmentLength.target;
      return n !== null && n === had;
    }
    case 'TargetAlias':
      return state.target.TargetAlias === value;
    case 'TargetAddress':
      return state.target.TargetAddress === value;
    default:
      return false;
  }
}

/** The target answered one of our offers. */
function applyAnswer(d: InitiatorDraft, def: KeyDef, offered: string, answer: string): NegotiationFailure | null {
  const key = def.name;
  const p = d.params;
  if (answer === NOT_UNDERSTOOD || answer === IRRELEVANT || answer === REJECT) {
    if (key === 'AuthMethod') {
      return initiatorFail('AUTH_METHOD_UNAVAILABLE', `the target answered AuthMethod=${answer} to ${offered}`, key);
    }
    return null; // the key keeps its current (default) value (§6.2)
  }
  switch (def.type) {
    case 'list': {
      const items = parseList(offered) ?? [];
      if (!items.includes(answer)) return initiatorFail('INADMISSIBLE_ANSWER', `the target chose ${key}=${answer}, which was not offered (${offered})`, key);
      if (key === 'AuthMethod') {
        d.authMethod = answer as AuthMethodName;
        if (answer === 'CHAP') {
          const chapCfg = d.config.chap;
          if (!chapCfg) return initiatorFail('INADMISSIBLE_ANSWER', 'the target chose CHAP without credentials configured', key);
          d.chap = createInitiatorChap({
            credentials: chapCfg.credentials,
            ...(chapCfg.mutual ? { mutual: chapCfg.mutual } : {}),
            ...(d.random ? { random: d.random } : {}),
          });
        }
      } else {
        setListParam(p, key as ListParam, answer);
      }
      return null;
    }
    case 'boolean': {
      const o = parseBoolean(offered);
      const a = parseBoolean(answer);
      if (o === null || a === null || !booleanAnswerAdmissible(def, o, a) || !isBoolParam(key)) {
        return initiatorFail('INADMISSIBLE_ANSWER', `the target answered ${key}=${answer} to ${offered} (result function ${def.result})`, key);
      }
      p[key] = a;
      return null;
    }
    case 'numeric': {
      const o = parseKeyNumber(def, offered);
      const a = parseKeyNumber(def, answer);
      if (o === null || a === null || !numberAnswerAdmissible(def, o, a) || !isNumParam(key)) {
        return initiatorFail('INADMISSIBLE_ANSWER', `the target answered ${key}=${answer} to ${offered} (result function ${def.result})`, key);
      }
      p[key] = a;
      return null;
    }
    default:
      return null;
  }
}

/** A key the target sent on its own: a declaration to record, or an offer to answer. */
function takeTargetOffer(d: InitiatorDraft, def: KeyDef, value: string): NegotiationFailure | null {
  const key = def.name;
  const p = d.params;
  const answer = (v: string): null => {
    d.pending = [...d.pending, [key, v]];
    d.settled = [...d.settled, key];
    return null;
  };
  switch (def.type) {
    case 'numeric': {
      if (def.result === 'Declarative') {
        const n = parseKeyNumber(def, value);
        if (n === null) return initiatorFail('UNEXPECTED_ANSWER', `the target declared a malformed ${key}=${value.slice(0, 40)}`, key);
        if (key === 'TargetPortalGroupTag') d.target = { ...d.target, TargetPortalGroupTag: n };
        else p.MaxRecvDataSegmentLength = { ...p.MaxRecvDataSegmentLength, target: n };
        return null;
      }
      if (def.irrelevantInDiscovery && p.SessionType === 'Discovery') return answer(IRRELEVANT);
      const n = parseKeyNumber(def, value);
      if (n === null || !isNumParam(key)) return answer(REJECT);
      // Spindle implements RFC 7143: level 1 unless configured otherwise.
      const ours = key === 'iSCSIProtocolLevel' ? (d.config.iSCSIProtocolLevel ?? 1) : d.config[key];
      const result = acceptNumber(def, n, ours);
      p[key] = result;
      return answer(String(result));
    }
    case 'boolean': {
      if (def.irrelevantInDiscovery && p.SessionType === 'Discovery') return answer(IRRELEVANT);
      const o = parseBoolean(value);
      if (o === null || !isBoolParam(key)) return answer(REJECT);
      const result = acceptBoolean(def, o, d.config[key]);
      p[key] = result;
      return answer(formatBoolean(result));
    }
    case 'list': {
      if (def.irrelevantInDiscovery && p.SessionType === 'Discovery') return answer(IRRELEVANT);
      const items = parseList(value);
      if (key === 'AuthMethod') {
        const ours = authOffer(d.config).split(',');
        const choice = items?.find((v) => ours.includes(v));
        if (choice === undefined) return answer(REJECT);
        d.authMethod = choice as AuthMethodName;
        if (choice === 'CHAP' && d.config.chap) {
          d.chap = createInitiatorChap({
            credentials: d.config.chap.credentials,
            ...(d.config.chap.mutual ? { mutual: d.config.chap.mutual } : {}),
            ...(d.random ? { random: d.random } : {}),
          });
        }
        return answer(choice);
      }
      const ours: readonly string[] = key === 'TaskReporting' ? (d.config.TaskReporting ?? ['RFC3720']) : d.config[key as 'HeaderDigest' | 'DataDigest'];
      const choice = items?.find((v) => ours.includes(v));
      if (choice === undefined) return answer(REJECT);
      setListParam(p, key as ListParam, choice);
      return answer(choice);
    }
    case 'local-name':
      d.target = { ...d.target, TargetAlias: value };
      return null;
    case 'text':
      if (key === 'TargetAddress') d.target = { ...d.target, TargetAddress: value };
      return null;
    case 'iscsi-name':
      return null; // TargetName in a login response (some targets echo it): ignore.
    case 'obsolete':
      return answer(REJECT);
    case 'iser':
      return answer(key === 'RDMAExtensions' ? 'No' : IRRELEVANT);
    default:
      return null;
  }
}

export type InitiatorFinishResult =
  | { readonly ok: true; readonly params: SessionParams; readonly state: InitiatorNegotiation }
  | NegotiationFailure;

/**
 * The session parameters once the target answered T=1 NSG=3. Offers the
 * target left unanswered keep their defaults, except booleans whose result
 * the offer alone decides (AND offered No, OR offered Yes: §6.2.2).
 */
export function finishInitiatorLogin(state: InitiatorNegotiation): InitiatorFinishResult {
  if (state.chap !== undefined && state.chap.step !== 'done') {
    return initiatorFail('AUTH_FAILED', 'the login finished before CHAP completed', undefined, 'MISSING_KEY');
  }
  if (state.config.requireChap && state.authMethod !== 'CHAP') {
    return initiatorFail('AUTH_REQUIRED', 'the login finished without CHAP, which this initiator requires');
  }
  const p = cloneParams(state.params);
  for (const [key, offered] of Object.entries(state.awaiting)) {
    const def = lookupKey(key);
    if (def?.type !== 'boolean' || !isBoolParam(key)) continue;
    const o = parseBoolean(offered);
    if (o === null) continue;
    if ((def.result === 'AND' && !o) || (def.result === 'OR' && o)) p[key] = o;
  }
  if (p.SessionType === 'Discovery') p.MaxConnections = 1;
  if (p.FirstBurstLength > p.MaxBurstLength) p.FirstBurstLength = p.MaxBurstLength;
  const params = freezeParams(p);
  return { ok: true, params, state: { ...state, stage: 'full-feature', params, received: [] } };
}

// ---------------------------------------------------------------------------
// SendTargets responses (initiator, RFC 7143 §13.3, §13.8)
// ---------------------------------------------------------------------------

export interface TargetPortal {
  readonly host: string;
  readonly port: number;
  /** Absent only in redirects; SendTargets responses always carry it. */
  readonly portalGroupTag?: number;
}

export interface DiscoveredTarget {
  readonly name: string;
  readonly portals: readonly TargetPortal[];
}

/**
 * Parse TargetAddress=domainname[:port][,portal-group-tag] (§13.8): a DNS
 * name, dotted IPv4 or bracketed IPv6; port defaults to 3260.
 */
export function parseTargetAddress(value: string): TargetPortal | null {
  const m = /^(\[[0-9A-Fa-f:.%a-zA-Z]+\]|[^:,[\]\s]+)(?::(\d{1,5}))?(?:,(\d+|0x[0-9a-fA-F]+))?$/.exec(value);
  if (!m) return null;
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  const port = m[2] === undefined ? 3260 : Number(m[2]);
  if (port < 1 || port > 65535) return null;
  let tag: number | undefined;
  if (m[3] !== undefined) {
    tag = Number(m[3]);
    if (!Number.isInteger(tag) || tag > 65535) return null;
  }
  return { host, port, ...(tag !== undefined ? { portalGroupTag: tag } : {}) };
}

/**
 * Group a SendTargets Text Response: each TargetName starts a target, the
 * TargetAddress pairs after it are its portals (§13.3); a name repeated
 * later adds its portals to the first entry. Returns null when a
 * TargetAddress precedes any TargetName or is malformed.
 */
export function parseSendTargetsResponse(input: Iterable<TextPairInput>): DiscoveredTarget[] | null {
  const out: Array<{ name: string; portals: TargetPortal[] }> = [];
  // Some targets name a target once per portal group: one entry per name (names compare case-insensitively, §4.2.7.1).
  const byName = new Map<string, { name: string; portals: TargetPortal[] }>();
  let current: { name: string; portals: TargetPortal[] } | undefined;
  for (const [key, value] of toPairs(input)) {
    if (key === 'TargetName') {
      current = byName.get(value.toLowerCase());
      if (current === undefined) {
        current = { name: value, portals: [] };
        byName.set(value.toLowerCase(), current);
        out.push(current);
      }
    } else if (key === 'TargetAddress') {
      const portal = parseTargetAddress(value);
      if (!current || !portal) return null;
      const seen = current.portals.some((p) => p.host === portal.host && p.port === portal.port && p.portalGroupTag === portal.portalGroupTag);
      if (!seen) current.portals.push(portal);
    }
  }
  return out;
}
