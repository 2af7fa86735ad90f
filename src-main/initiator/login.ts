/**
 * The initiator's side of login (RFC 7143 §6, §11.12–§11.13) over a
 * PduChannel: the pure negotiation in iscsi/negotiation.ts decides what to
 * offer and checks every answer; this module moves the PDUs — stages and
 * the T bit, text that continues over several responses (C bit, §6.4), and
 * a refused login turned into an InitiatorError that says what to do.
 */
import { randomInt } from 'node:crypto';
import { readOpcode } from '../iscsi/bhs';
import { LoginStatusClass, Opcode, Stage, loginStatusName } from '../iscsi/constants';
import type { ChapCredentials } from '../iscsi/chap';
import { encodeLoginRequest, parseLoginResponse } from '../iscsi/login';
import { encodeLogoutRequest, parseLogoutResponse } from '../iscsi/logout';
import {
  buildInitiatorOffer,
  checkTargetResponse,
  createInitiatorNegotiation,
  finishInitiatorLogin,
  initiatorReadyToTransit,
  type InitiatorNegotiation,
  type OperationalPreferences,
  type SessionParams,
  type SessionType,
} from '../iscsi/negotiation';
import { decodeTextKeys, encodeTextKeys } from '../iscsi/text-keys';
import { InitiatorError } from './errors';
import type { PduChannel } from './pdu-channel';

/** Login Request/Response round trips before a login that goes nowhere is given up (CHAP needs 3–4). */
const MAX_LOGIN_EXCHANGES = 16;
/** Text a login response may carry in total, over its continuations. */
const MAX_LOGIN_TEXT_BYTES = 64 * 1024;
/** Login Responses one answer may be continued over (C=1); an endless stream of empty ones is a broken target. */
const MAX_LOGIN_CONTINUATIONS = 64;

export interface LoginOptions {
  readonly initiatorName: string;
  readonly initiatorAlias?: string;
  /** Required for a Normal session. */
  readonly targetName?: string;
  readonly sessionType: SessionType;
  /** One-way CHAP, and optionally mutual CHAP (the target proves itself too). */
  readonly chap?: { readonly credentials: ChapCredentials; readonly mutual?: ChapCredentials };
  /** The session's ISID (see randomIsid). */
  readonly isid: number;
  /** Milliseconds to wait for each Login Response. */
  readonly timeoutMs: number;
  /** Operational values to offer instead of DEFAULT_INITIATOR_OFFER's (e.g. a small MaxRecvDataSegmentLength, ImmediateData=No). */
  readonly offer?: Partial<OperationalPreferences>;
}

/** Where a logged-in session stands: its parameters and the sequence numbers to go on with. */
export interface LoggedIn {
  readonly params: SessionParams;
  readonly tsih: number;
  /** ITT of the last login PDU; the next task takes a higher one. */
  readonly lastItt: number;
  /** CmdSN for the next non-immediate command. */
  readonly cmdSN: number;
  /** StatSN we expect next. */
  readonly expStatSN: number;
  readonly maxCmdSN: number;
  readonly targetAlias?: string;
}

/** A random-format ISID (§11.12.5: T=10b, A=0, B and C random, D=qualifier). */
export function randomIsid(qualifier = 0): number {
  return 0x80 * 2 ** 40 + randomInt(0, 2 ** 24) * 2 ** 16 + (qualifier & 0xffff);
}

/** Runs a leading login on `channel`. Resolves in the Full Feature Phase; rejects with an InitiatorError. */
export async function login(channel: PduChannel, options: LoginOptions): Promise<LoggedIn> {
  let state: InitiatorNegotiation;
  try {
    state = createInitiatorNegotiation({
      config: {
        InitiatorName: options.initiatorName,
        ...(options.initiatorAlias !== undefined ? { InitiatorAlias: options.initiatorAlias } : {}),
        ...(options.targetName !== undefined ? { TargetName: options.targetName } : {}),
        SessionType: options.sessionType,
        ...options.offer,
        // With mutual CHAP the target must prove itself: a target that answers AuthMethod=None is refused.
        ...(options.chap !== undefined ? { chap: options.chap, requireChap: options.chap.mutual !== undefined } : {}),
      },
    });
  } catch (err) {
    throw new InitiatorError('INVALID_CONFIG', (err as Error).message);
  }
  const who = options.sessionType === 'Discovery' ? `discovery at ${channel.portal}` : `${options.targetName} at ${channel.portal}`;
  const cmdSN = 1;
  let expStatSN = 0;
  // One ITT for every Login Request of this login (LIO refuses a login whose ITT changes).
  const itt = 0;
  let csg: number = Stage.SECURITY_NEGOTIATION;

  for (let exchange = 0; exchange < MAX_LOGIN_EXCHANGES; exchange++) {
    const offer = buildInitiatorOffer(state, csg);
    state = offer.state;
    const transit = initiatorReadyToTransit(state);
    const nsg = csg === Stage.SECURITY_NEGOTIATION ? Stage.LOGIN_OPERATIONAL_NEGOTIATION : Stage.FULL_FEATURE_PHASE;
    const request = (data: Buffer, t: boolean) =>
      encodeLoginRequest({
        transit: t,
        continue: false,
        csg,
        nsg: t ? nsg : 0,
        versionMax: 0,
        versionMin: 0,
        isid: options.isid,
        tsih: 0,
        itt,
        cid: 0,
        cmdSN,
        expStatSN,
        data,
      });
    const text = encodeTextKeys(offer.pairs);
    channel.send(request(text, transit), text);

    // The answer, gathered over Login Responses with C=1: each continuation is asked for with an empty request (§6.4).
    const parts: Buffer[] = [];
    let total = 0;
    let response;
    for (let continued = 0; ; continued++) {
      if (continued > MAX_LOGIN_CONTINUATIONS) throw new InitiatorError('PROTOCOL_ERROR', `${who}: the target continued one login answer over ${MAX_LOGIN_CONTINUATIONS} responses`);
      const raw = await channel.next(options.timeoutMs, 'a Login Response');
      const op = readOpcode(raw.bhs);
      if (op === Opcode.REJECT) throw new InitiatorError('PROTOCOL_ERROR', `${who}: the target rejected our Login Request`);
      if (op !== Opcode.LOGIN_RESPONSE) throw new InitiatorError('PROTOCOL_ERROR', `${who}: the target sent opcode 0x${op.toString(16)} during login`);
      response = parseLoginResponse(raw.bhs, raw.data);
      if (response.statusClass !== LoginStatusClass.SUCCESS) throw refused(who, options, response.statusClass, response.statusDetail, raw.data);
      if (response.itt !== itt) throw new InitiatorError('PROTOCOL_ERROR', `${who}: a Login Response for ITT ${response.itt}, not ${itt}`);
      if (response.versionActive !== 0) throw new InitiatorError('PROTOCOL_ERROR', `${who}: the target answered with iSCSI version ${response.versionActive}`);
      // §11.13.1: T and C both set is a protocol error.
      if (response.transit && response.continue) throw new InitiatorError('PROTOCOL_ERROR', `${who}: a Login Response with both T and C set`);
      expStatSN = (response.statSN + 1) >>> 0;
      total += response.data.length;
      if (total > MAX_LOGIN_TEXT_BYTES) throw new InitiatorError('PROTOCOL_ERROR', `${who}: the target's login text runs past ${MAX_LOGIN_TEXT_BYTES} bytes`);
      parts.push(Buffer.from(response.data));
      if (!response.continue) break;
      const empty = Buffer.alloc(0);
      channel.send(request(empty, false), empty);
    }
    let pairs;
    try {
      pairs = decodeTextKeys(Buffer.concat(parts));
    } catch (err) {
      throw new InitiatorError('PROTOCOL_ERROR', `${who}: unreadable login text: ${(err as Error).message}`);
    }
    if (response.csg !== csg) throw new InitiatorError('PROTOCOL_ERROR', `${who}: the target answered for stage ${response.csg}, not ${csg}`);
    if (response.transit && (!transit || response.nsg !== nsg)) {
      throw new InitiatorError('PROTOCOL_ERROR', `${who}: the target moved to stage ${response.nsg} unasked`);
    }
    const checked = checkTargetResponse(state, { stage: response.csg, transit: response.transit, nsg: response.nsg, pairs });
    if (!checked.ok) {
      if (checked.key === 'AuthMethod' && options.chap === undefined) {
        // A target that wants CHAP may say so with AuthMethod=Reject (or by choosing CHAP) rather than refuse with 0x0201.
        throw new InitiatorError('AUTH_FAILED', `${who}: the target wants CHAP (${checked.reason}) — give the CHAP user name and secret it was set up with`);
      }
      const auth = checked.code === 'AUTH_FAILED' || checked.code === 'AUTH_REQUIRED' || checked.code === 'AUTH_METHOD_UNAVAILABLE';
      throw new InitiatorError(auth ? 'AUTH_FAILED' : 'PROTOCOL_ERROR', `${who}: ${checked.reason}`);
    }
    state = checked.state;
    if (!response.transit) continue;
    if (response.nsg === Stage.FULL_FEATURE_PHASE) {
      const done = finishInitiatorLogin(state);
      if (!done.ok) throw new InitiatorError(done.code === 'AUTH_FAILED' || done.code === 'AUTH_REQUIRED' ? 'AUTH_FAILED' : 'PROTOCOL_ERROR', `${who}: ${done.reason}`);
      return {
        params: done.params,
        tsih: response.tsih,
        lastItt: itt,
        cmdSN: response.expCmdSN,
        expStatSN,
        maxCmdSN: response.maxCmdSN,
        ...(state.target.TargetAlias !== undefined ? { targetAlias: state.target.TargetAlias } : {}),
      };
    }
    csg = response.nsg;
  }
  throw new InitiatorError('PROTOCOL_ERROR', `${who}: the login did not finish in ${MAX_LOGIN_EXCHANGES} exchanges`);
}

function refused(who: string, options: LoginOptions, statusClass: number, statusDetail: number, data: Buffer): InitiatorError {
  const status = { statusClass, statusDetail };
  const code = `0x${((statusClass << 8) | statusDetail).toString(16).padStart(4, '0')}`;
  if (statusClass === LoginStatusClass.REDIRECTION) {
    let where = '';
    try {
      where = decodeTextKeys(data).find(([k]) => k === 'TargetAddress')?.[1] ?? '';
    } catch {
      // An unreadable redirect still is a redirect.
    }
    return new InitiatorError('TARGET_MOVED', `${who}: the target has moved${where ? ` to ${where}` : ''} (${code})`, status);
  }
  if (statusClass === LoginStatusClass.INITIATOR_ERROR) {
    switch (statusDetail) {
      case 0x01:
        return new InitiatorError(
          'AUTH_FAILED',
          options.chap === undefined
            ? `${who}: the target wants CHAP (${code}, authentication failure) — give the CHAP user name and secret it was set up with`
            : `${who}: the target refused the CHAP user name or secret (${code}, authentication failure) — check both`,
          status,
        );
      case 0x02:
        return new InitiatorError(
          'NOT_ALLOWED',
          `${who}: the target does not allow initiator ${options.initiatorName} (${code}, authorization failure) — add this name to the target's allowed initiators (ACL)`,
          status,
        );
      case 0x03:
      case 0x04:
        return new InitiatorError('TARGET_NOT_FOUND', `${who}: the target says there is no such target (${code}, ${loginStatusName(statusClass, statusDetail).toLowerCase().replace(/_/g, ' ')})`, status);
    }
  }
  if (statusClass === LoginStatusClass.TARGET_ERROR) {
    return new InitiatorError('TARGET_BUSY', `${who}: the target could not take the login (${code}, ${loginStatusName(statusClass, statusDetail).toLowerCase().replace(/_/g, ' ')}) — try again later`, status);
  }
  return new InitiatorError('LOGIN_REFUSED', `${who}: login refused (${code}, ${loginStatusName(statusClass, statusDetail).toLowerCase().replace(/_/g, ' ')})`, status);
}

/**
 * Logout: close the session (reason 0, §11.14) and wait for the Logout
 * Response. Best effort — resolves false when the target did not answer
 * properly; the caller closes the connection either way.
 */
export async function logout(channel: PduChannel, at: { itt: number; cmdSN: number; expStatSN: number }, timeoutMs: number): Promise<boolean> {
  try {
    channel.send(encodeLogoutRequest({ immediate: true, reasonCode: 0, itt: at.itt, cid: 0, cmdSN: at.cmdSN, expStatSN: at.expStatSN }));
    for (let i = 0; i < 8; i++) {
      const raw = await channel.next(timeoutMs, 'a Logout Response');
      if (readOpcode(raw.bhs) !== Opcode.LOGOUT_RESPONSE) continue; // a late NOP-In or Async Message
      const r = parseLogoutResponse(raw.bhs);
      return r.itt === at.itt && r.response === 0;
    }
    return false;
  } catch {
    return false;
  }
}
