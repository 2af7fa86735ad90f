/**
 * CHAP with MD5 for iSCSI login (RFC 1994; RFC 7143 §12.1.3 and §9.2.1).
 *
 *   I -> T  AuthMethod=CHAP,None           (negotiation.ts picks the method)
 *   I -> T  CHAP_A=5                       (list of algorithms; only 5 = MD5)
 *   T -> I  CHAP_A=5 CHAP_I=<0..255> CHAP_C=0x<challenge>
 *   I -> T  CHAP_N=<name> CHAP_R=0x<MD5(I || secret || C)> [CHAP_I=.. CHAP_C=..]
 *   T -> I  (mutual only) CHAP_N=<target name> CHAP_R=0x<MD5(I' || mutual secret || C')>
 *
 * Both sides live here as small state machines over key maps; they decide,
 * they do no I/O. Randomness comes from an injectable `random` function
 * (crypto.randomBytes by default) so tests are deterministic.
 *
 * Refused, per RFC 7143 §9.2.1 / §12.1.3:
 *   - secrets shorter than 12 bytes (96 bits) — a configuration error;
 *   - a mutual (target) secret equal to the initiator's secret — a configuration
 *     error, and at run time a response equal to the one the receiver would
 *     compute with its own secret is an authentication failure;
 *   - a peer that sends back the challenge it was given (reflection).
 * Secrets and expected responses never appear in messages or errors.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { LARGE_BINARY_MAX_BYTES, type TextPair, byteLength, formatBinary, parseBinary, parseNumber } from './keys';

/** CHAP_A value of CHAP with MD5 (RFC 1994; the only algorithm RFC 7143 requires). */
export const CHAP_ALGORITHM_MD5 = 5;
export const CHAP_MD5_RESPONSE_BYTES = 16;
/** RFC 7143 §12.1.3: do not send a CHAP response with a secret under 96 bits. */
export const MIN_CHAP_SECRET_BYTES = 12;
/** A sane ceiling (open-iscsi accepts 256); also bounds what we hash. */
export const MAX_CHAP_SECRET_BYTES = 256;
/** Challenge length we send (LIO sends 16 too); §12.1.3 caps binary values at 1024 bytes. */
export const DEFAULT_CHAP_CHALLENGE_BYTES = 16;
export const MIN_CHAP_CHALLENGE_BYTES = 16;

export type RandomSource = (size: number) => Uint8Array;

export interface ChapCredentials {
  /** CHAP_N: the user name. Not secret. */
  readonly name: string;
  /** The shared secret (a string is taken as UTF-8). */
  readonly secret: string | Uint8Array;
}

export type ChapConfigProblem = 'NAME_EMPTY' | 'NAME_TOO_LONG' | 'SECRET_TOO_SHORT' | 'SECRET_TOO_LONG' | 'MUTUAL_SECRET_REUSED' | 'MUTUAL_WITHOUT_ONE_WAY';

/** A CHAP configuration Spindle refuses to use. The message never contains a secret. */
export class ChapConfigError extends Error {
  override readonly name = 'ChapConfigError';
  constructor(
    readonly code: ChapConfigProblem,
    message: string,
  ) {
    super(message);
  }
}

export type ChapFailureCode =
  | 'UNSUPPORTED_ALGORITHM'
  | 'UNEXPECTED_KEY'
  | 'MISSING_KEY'
  | 'MALFORMED_VALUE'
  | 'WRONG_NAME'
  | 'WRONG_RESPONSE'
  | 'REFLECTED_CHALLENGE'
  | 'SAME_SECRET'
  | 'MUTUAL_NOT_CONFIGURED';

export interface ChapFailure {
  ok: false;
  code: ChapFailureCode;
  /** One log line. Never contains a secret or an expected response. */
  reason: string;
}

function secretBytes(secret: string | Uint8Array): Buffer {
  return typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength);
}

function checkOne(creds: ChapCredentials, label: string): ChapConfigError | null {
  if (typeof creds.name !== 'string' || creds.name.length === 0) {
    return new ChapConfigError('NAME_EMPTY', `the ${label} user name is empty; enter the name the other side expects`);
  }
  if (byteLength(creds.name) > 255) {
    return new ChapConfigError('NAME_TOO_LONG', `the ${label} user name is longer than 255 bytes`);
  }
  const len = secretBytes(creds.secret).length;
  if (len < MIN_CHAP_SECRET_BYTES) {
    return new ChapConfigError(
      'SECRET_TOO_SHORT',
      `the ${label} secret is shorter than ${MIN_CHAP_SECRET_BYTES} bytes; use ${MIN_CHAP_SECRET_BYTES} to 16 random characters (RFC 7143 §12.1.3 asks for at least 96 bits)`,
    );
  }
  if (len > MAX_CHAP_SECRET_BYTES) {
    return new ChapConfigError('SECRET_TOO_LONG', `the ${label} secret is longer than ${MAX_CHAP_SECRET_BYTES} bytes`);
  }
  return null;
}

/** Secrets of sealed credentials, reachable only through the `secret` getter. */
const SEALED_SECRETS = new WeakMap<SealedChapCredentials, Buffer>();

/**
 * Credentials whose secret is not a property at all: it lives in a
 * module-private WeakMap behind a prototype getter. JSON.stringify, object
 * spread, Object.keys/entries, structuredClone and util.inspect (even with
 * showHidden) show the name only; `secret` still works for chapResponse.
 */
class SealedChapCredentials implements ChapCredentials {
  readonly name: string;

  constructor(name: string, secret: Buffer) {
    this.name = name;
    SEALED_SECRETS.set(this, secret);
    Object.freeze(this);
  }

  /** A copy of the secret (callers cannot change the sealed one). */
  get secret(): Buffer {
    return Buffer.from(SEALED_SECRETS.get(this) ?? Buffer.alloc(0));
  }

  toJSON(): { name: string; secret: '(hidden)' } {
    return { name: this.name, secret: '(hidden)' };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `ChapCredentials { name: ${JSON.stringify(this.name)}, secret: (hidden) }`;
  }

  toString(): string {
    return `ChapCredentials(${this.name})`;
  }
}

/**
 * A copy of `c` that never shows its secret: JSON.stringify, util.inspect,
 * console.log, template strings and spreads of anything holding it
 * (negotiation states, engine configs) show the name only. Every create*
 * function seals what it keeps; sealing sealed credentials is cheap and safe.
 */
export function sealCredentials(c: ChapCredentials): ChapCredentials {
  return new SealedChapCredentials(c.name, Buffer.from(secretBytes(c.secret)));
}

/** True for credentials made by sealCredentials. */
export function isSealedCredentials(c: ChapCredentials): boolean {
  return c instanceof SealedChapCredentials;
}

/**
 * Check a CHAP configuration: `oneWay` authenticates the initiator, `mutual`
 * authenticates the target. Use it where the user enters secrets (CLI, UI);
 * createTargetChap / createInitiatorChap throw the same errors.
 */
export function checkChapConfig(oneWay: ChapCredentials | undefined, mutual?: ChapCredentials): ChapConfigError | null {
  if (mutual && !oneWay) {
    return new ChapConfigError('MUTUAL_WITHOUT_ONE_WAY', 'mutual CHAP needs one-way CHAP (the initiator user and secret) as well');
  }
  if (oneWay) {
    const e = checkOne(oneWay, 'CHAP');
    if (e) return e;
  }
  if (mutual) {
    const e = checkOne(mutual, 'mutual CHAP');
    if (e) return e;
    if (oneWay && secretBytes(oneWay.secret).equals(secretBytes(mutual.secret))) {
      return new ChapConfigError(
        'MUTUAL_SECRET_REUSED',
        'the mutual CHAP secret must differ from the initiator CHAP secret (RFC 7143 §9.2.1); choose another one',
      );
    }
  }
  return null;
}

/** RFC 1994 §4.1: Response = MD5(Identifier || secret || Challenge). */
export function chapResponse(id: number, secret: string | Uint8Array, challenge: Uint8Array): Buffer {
  if (!Number.isInteger(id) || id < 0 || id > 255) throw new RangeError('CHAP identifier must be 0..255');
  return createHash('md5').update(Buffer.of(id)).update(secretBytes(secret)).update(challenge).digest();
}

/** Constant-time equality for equal-length values (false for different lengths). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function parseIdentifier(value: string | undefined): number | null {
  if (value === undefined) return null;
  const n = parseNumber(value);
  return n !== null && n <= 255n ? Number(n) : null;
}

function fail(code: ChapFailureCode, reason: string): ChapFailure {
  return { ok: false, code, reason };
}

function unexpected(keys: ReadonlyMap<string, string>, allowed: readonly string[], step: string): ChapFailure | null {
  for (const k of keys.keys()) {
    if (!allowed.includes(k)) return fail('UNEXPECTED_KEY', `${k} is not expected ${step}`);
  }
  return null;
}

/**
 * The algorithm to use from a CHAP_A offer ("5" or a list like "7,6,5"):
 * 5 (MD5) if offered, otherwise null.
 */
export function selectChapAlgorithm(offer: string): typeof CHAP_ALGORITHM_MD5 | null {
  for (const item of offer.split(',')) {
    const n = parseNumber(item);
    if (n === BigInt(CHAP_ALGORITHM_MD5)) return CHAP_ALGORITHM_MD5;
  }
  return null;
}

// ---------------------------------------------------------------------------
// Target side
// ---------------------------------------------------------------------------

export interface TargetChapOptions {
  /** What the initiator must prove it knows. */
  readonly initiator: ChapCredentials;
  /** What the target answers with when the initiator asks for mutual CHAP. */
  readonly mutual?: ChapCredentials;
  readonly random?: RandomSource;
  /** CHAP_C length in bytes, 16..1024 (default 16). */
  readonly challengeBytes?: number;
  /**
   * Optional check across connections: true when `challenge` is one this
   * target issued recently on any connection (a reflected challenge).
   */
  readonly isOwnChallenge?: (challenge: Uint8Array) => boolean;
}

export type TargetChapStep = 'await-algorithm' | 'await-response' | 'done';

export interface TargetChap {
  readonly role: 'target';
  readonly options: TargetChapOptions;
  readonly step: TargetChapStep;
  /** CHAP_I and CHAP_C the target sent (once challenged). */
  readonly id?: number;
  readonly challenge?: Buffer;
  /** Set when done: whether the target also authenticated itself. */
  readonly mutual?: boolean;
}

export type ChapStepResult<S> = { ok: true; chap: S; response: TextPair[]; done: boolean } | ChapFailure;

/** Start target-side CHAP. Throws ChapConfigError for a configuration Spindle refuses. */
export function createTargetChap(options: TargetChapOptions): TargetChap {
  const problem = checkChapConfig(options.initiator, options.mutual);
  if (problem) throw problem;
  const n = options.challengeBytes ?? DEFAULT_CHAP_CHALLENGE_BYTES;
  if (!Number.isInteger(n) || n < MIN_CHAP_CHALLENGE_BYTES || n > LARGE_BINARY_MAX_BYTES) {
    throw new RangeError(`CHAP challenge length must be ${MIN_CHAP_CHALLENGE_BYTES}..${LARGE_BINARY_MAX_BYTES} bytes`);
  }
  const sealed: TargetChapOptions = {
    ...options,
    initiator: sealCredentials(options.initiator),
    ...(options.mutual ? { mutual: sealCredentials(options.mutual) } : {}),
  };
  return { role: 'target', options: sealed, step: 'await-algorithm' };
}

function draw(random: RandomSource | undefined, size: number): Buffer {
  const bytes = (random ?? randomBytes)(size);
  if (bytes.length !== size) throw new RangeError(`random source returned ${bytes.length} bytes, wanted ${size}`);
  return Buffer.from(bytes);
}

/**
 * Feed the CHAP_* keys of one Login Request to the target side. Returns the
 * CHAP_* keys to answer with; `done` once the initiator is authenticated
 * (and, if it asked, the target has answered its challenge). Any failure is a
 * Login reject with "Authentication failure" (0x0201).
 */
export function targetChapStep(chap: TargetChap, keys: ReadonlyMap<string, string>): ChapStepResult<TargetChap> {
  const o = chap.options;
  switch (chap.step) {
    case 'await-algorithm': {
      const bad = unexpected(keys, ['CHAP_A'], 'before the CHAP challenge (send CHAP_A first)');
      if (bad) return bad;
      const offer = keys.get('CHAP_A');
      if (offer === undefined) return fail('MISSING_KEY', 'CHAP_A is missing');
      if (selectChapAlgorithm(offer) === null) {
        return fail('UNSUPPORTED_ALGORITHM', `CHAP_A=${offer} does not offer 5 (MD5), the only algorithm supported`);
      }
      const random = o.random;
      const id = draw(random, 1)[0];
      const challenge = draw(random, o.challengeBytes ?? DEFAULT_CHAP_CHALLENGE_BYTES);
      return {
        ok: true,
        chap: { ...chap, step: 'await-response', id, challenge },
        response: [
          ['CHAP_A', String(CHAP_ALGORITHM_MD5)],
          ['CHAP_I', String(id)],
          ['CHAP_C', formatBinary(challenge)],
        ],
        done: false,
      };
    }
    case 'await-response': {
      const bad = unexpected(keys, ['CHAP_N', 'CHAP_R', 'CHAP_I', 'CHAP_C'], 'in the CHAP response');
      if (bad) return bad;
      const name = keys.get('CHAP_N');
      const r = keys.get('CHAP_R');
      if (name === undefined || r === undefined) return fail('MISSING_KEY', 'the CHAP response needs both CHAP_N and CHAP_R');
      const response = parseBinary(r, LARGE_BINARY_MAX_BYTES);
      if (response === null || response.length !== CHAP_MD5_RESPONSE_BYTES) {
        return fail('MALFORMED_VALUE', 'CHAP_R is not a 16-byte hex (0x) or base64 (0b) value');
      }
      const id = chap.id as number;
      const challenge = chap.challenge as Buffer;
      // §9.2.1: a response equal to the one we would compute with our own (mutual)
      // secret means one secret serves both directions: fail.
      if (o.mutual && sameBytes(response, chapResponse(id, o.mutual.secret, challenge))) {
        return fail('SAME_SECRET', 'the initiator answered with the target\'s own secret; one CHAP secret must not serve both directions');
      }
      const expected = chapResponse(id, o.initiator.secret, challenge);
      const responseOk = sameBytes(response, expected);
      const nameOk = name === o.initiator.name;
      if (!nameOk) return fail('WRONG_NAME', `CHAP_N=${name} is not the CHAP user configured for this initiator`);
      if (!responseOk) return fail('WRONG_RESPONSE', `CHAP_R from ${name} does not match (wrong secret)`);

      const mi = keys.get('CHAP_I');
      const mc = keys.get('CHAP_C');
      if (mi === undefined && mc === undefined) {
        return { ok: true, chap: { ...chap, step: 'done', mutual: false }, response: [], done: true };
      }
      if (mi === undefined || mc === undefined) return fail('MISSING_KEY', 'mutual CHAP needs both CHAP_I and CHAP_C');
      if (!o.mutual) {
        return fail('MUTUAL_NOT_CONFIGURED', 'the initiator asked the target to authenticate itself (mutual CHAP) but no mutual CHAP user is configured');
      }
      const peerId = parseIdentifier(mi);
      if (peerId === null) return fail('MALFORMED_VALUE', 'CHAP_I is not a number 0..255');
      const peerChallenge = parseBinary(mc, LARGE_BINARY_MAX_BYTES);
      if (peerChallenge === null) return fail('MALFORMED_VALUE', 'CHAP_C is not a hex (0x) or base64 (0b) value of 1..1024 bytes');
      if (peerChallenge.equals(challenge) || o.isOwnChallenge?.(peerChallenge)) {
        return fail('REFLECTED_CHALLENGE', 'the initiator sent back a challenge this target issued; refusing (RFC 7143 §12.1.3)');
      }
      return {
        ok: true,
        chap: { ...chap, step: 'done', mutual: true },
        response: [
          ['CHAP_N', o.mutual.name],
          ['CHAP_R', formatBinary(chapResponse(peerId, o.mutual.secret, peerChallenge))],
        ],
        done: true,
      };
    }
    case 'done':
      if (keys.size === 0) return { ok: true, chap, response: [], done: true };
      return fail('UNEXPECTED_KEY', `${[...keys.keys()][0]} after CHAP authentication completed`);
  }
}

// ---------------------------------------------------------------------------
// Initiator side
// ---------------------------------------------------------------------------

export interface InitiatorChapOptions {
  /** The initiator's user and secret (answers the target's challenge). */
  readonly credentials: ChapCredentials;
  /** When set, the initiator also challenges the target and expects these. */
  readonly mutual?: ChapCredentials;
  readonly random?: RandomSource;
  readonly challengeBytes?: number;
}

export type InitiatorChapStep = 'start' | 'await-challenge' | 'await-mutual' | 'done';

export interface InitiatorChap {
  readonly role: 'initiator';
  readonly options: InitiatorChapOptions;
  readonly step: InitiatorChapStep;
  /** The target's challenge (to refuse it if reflected back). */
  readonly targetChallenge?: Buffer;
  /** Our mutual CHAP_I / CHAP_C. */
  readonly id?: number;
  readonly challenge?: Buffer;
}

/** Start initiator-side CHAP. Throws ChapConfigError for a configuration Spindle refuses. */
export function createInitiatorChap(options: InitiatorChapOptions): InitiatorChap {
  const problem = checkChapConfig(options.credentials, options.mutual);
  if (problem) throw problem;
  const n = options.challengeBytes ?? DEFAULT_CHAP_CHALLENGE_BYTES;
  if (!Number.isInteger(n) || n < MIN_CHAP_CHALLENGE_BYTES || n > LARGE_BINARY_MAX_BYTES) {
    throw new RangeError(`CHAP challenge length must be ${MIN_CHAP_CHALLENGE_BYTES}..${LARGE_BINARY_MAX_BYTES} bytes`);
  }
  const sealed: InitiatorChapOptions = {
    ...options,
    credentials: sealCredentials(options.credentials),
    ...(options.mutual ? { mutual: sealCredentials(options.mutual) } : {}),
  };
  return { role: 'initiator', options: sealed, step: 'start' };
}

/** The first CHAP request, once AuthMethod=CHAP was agreed: CHAP_A=5. */
export function initiatorChapStart(chap: InitiatorChap): { chap: InitiatorChap; request: TextPair[] } {
  if (chap.step !== 'start') throw new Error('CHAP already started');
  return { chap: { ...chap, step: 'await-challenge' }, request: [['CHAP_A', String(CHAP_ALGORITHM_MD5)]] };
}

/**
 * Feed the target's CHAP_* keys. After the challenge, `response` holds
 * CHAP_N/CHAP_R (and our CHAP_I/CHAP_C for mutual CHAP) for the next request;
 * after the mutual answer, `done` is true. Any failure: drop the connection.
 */
export function initiatorChapStep(chap: InitiatorChap, keys: ReadonlyMap<string, string>): ChapStepResult<InitiatorChap> {
  const o = chap.options;
  switch (chap.step) {
    case 'start':
      return fail('UNEXPECTED_KEY', 'the target sent CHAP keys before CHAP_A was offered');
    case 'await-challenge': {
      const bad = unexpected(keys, ['CHAP_A', 'CHAP_I', 'CHAP_C'], 'in the target\'s CHAP challenge');
      if (bad) return bad;
      const a = keys.get('CHAP_A');
      const i = keys.get('CHAP_I');
      const c = keys.get('CHAP_C');
      if (a === undefined || i === undefined || c === undefined) return fail('MISSING_KEY', 'the CHAP challenge needs CHAP_A, CHAP_I and CHAP_C');
      if (a !== String(CHAP_ALGORITHM_MD5)) {
        return fail('UNSUPPORTED_ALGORITHM', `the target chose CHAP_A=${a}, which was not offered (only 5, MD5)`);
      }
      const id = parseIdentifier(i);
      if (id === null) return fail('MALFORMED_VALUE', 'CHAP_I is not a number 0..255');
      const challenge = parseBinary(c, LARGE_BINARY_MAX_BYTES);
      if (challenge === null) return fail('MALFORMED_VALUE', 'CHAP_C is not a hex (0x) or base64 (0b) value of 1..1024 bytes');
      const request: TextPair[] = [
        ['CHAP_N', o.credentials.name],
        ['CHAP_R', formatBinary(chapResponse(id, o.credentials.secret, challenge))],
      ];
      if (!o.mutual) {
        return { ok: true, chap: { ...chap, step: 'done', targetChallenge: challenge }, response: request, done: true };
      }
      const ourId = draw(o.random, 1)[0];
      let ours = draw(o.random, o.challengeBytes ?? DEFAULT_CHAP_CHALLENGE_BYTES);
      // §12.1.3: never reuse the responder's challenge for the other direction.
      while (ours.equals(challenge)) ours = draw(o.random, ours.length);
      request.push(['CHAP_I', String(ourId)], ['CHAP_C', formatBinary(ours)]);
      return {
        ok: true,
        chap: { ...chap, step: 'await-mutual', targetChallenge: challenge, id: ourId, challenge: ours },
        response: request,
        done: false,
      };
    }
    case 'await-mutual': {
      const bad = unexpected(keys, ['CHAP_N', 'CHAP_R'], 'in the target\'s mutual CHAP answer');
      if (bad) return bad;
      const name = keys.get('CHAP_N');
      const r = keys.get('CHAP_R');
      if (name === undefined || r === undefined) return fail('MISSING_KEY', 'the target did not answer the mutual CHAP challenge (CHAP_N and CHAP_R)');
      const response = parseBinary(r, LARGE_BINARY_MAX_BYTES);
      if (response === null || response.length !== CHAP_MD5_RESPONSE_BYTES) {
        return fail('MALFORMED_VALUE', 'the target\'s CHAP_R is not a 16-byte hex (0x) or base64 (0b) value');
      }
      const mutual = o.mutual as ChapCredentials;
      const id = chap.id as number;
      const challenge = chap.challenge as Buffer;
      if (sameBytes(response, chapResponse(id, o.credentials.secret, challenge))) {
        return fail('SAME_SECRET', 'the target answered with the initiator\'s own secret; one CHAP secret must not serve both directions');
      }
      const ok = sameBytes(response, chapResponse(id, mutual.secret, challenge));
      if (name !== mutual.name) return fail('WRONG_NAME', `the target's CHAP_N=${name} is not the expected mutual CHAP user`);
      if (!ok) return fail('WRONG_RESPONSE', 'the target\'s mutual CHAP_R does not match (wrong secret)');
      return { ok: true, chap: { ...chap, step: 'done' }, response: [], done: true };
    }
    case 'done':
      if (keys.size === 0) return { ok: true, chap, response: [], done: true };
      return fail('UNEXPECTED_KEY', `${[...keys.keys()][0]} after CHAP authentication completed`);
  }
}
