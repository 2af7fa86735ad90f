/**
 * The login phase of one connection on the target (RFC 7143 §6, §11.12,
 * §11.13): reassembly of continued (C=1) Login Requests, target lookup,
 * ACL, CHAP and operational negotiation (iscsi/negotiation.ts does the key
 * rules), Login Response status codes, continued responses, TSIH
 * assignment and session reinstatement.
 *
 * The connection feeds every Login Request here until `onComplete` hands
 * it a Session; any refusal answers with the status, reports a
 * `login-refused` event and closes the connection.
 *
 * What a refusal reports comes partly from the wire (names, CHAP_N): it is
 * made printable and bounded first (wireName, wireText), so a hostile
 * initiator cannot forge log lines or flood them. CHAP secrets never appear.
 */
import { decodeTextKeys, encodeTextKeys, TextKeyError, TextSegmentAssembler } from '../iscsi/text-keys';
import { ChapConfigError } from '../iscsi/chap';
import { EMPTY_BUFFER } from '../iscsi/bhs';
import { ISCSI_VERSION, LoginStatus, Stage, type LoginStatusName } from '../iscsi/constants';
import { encodeLoginResponse, parseLoginRequest, type LoginRequest } from '../iscsi/login';
import {
  createTargetNegotiation,
  finishLogin,
  negotiateLogin,
  readLoginIdentity,
  type SessionParams,
  type TargetAuthPolicy,
  type TargetNegotiation,
} from '../iscsi/negotiation';
import type { PduWriter } from '../iscsi/writer';
import { SEND_TARGETS_REPEATABLE_KEYS } from '../iscsi/text-keys';
import type { EngineContext, LoginChap, TargetNode } from './engine-types';

/** Text a Login Response carries at most per PDU: the login-phase default MaxRecvDataSegmentLength. */
const LOGIN_SEGMENT = 8192;

/** RFC 7143 §4.2.7.1: an iSCSI name is at most 223 bytes (UTF-8). */
export const MAX_WIRE_NAME_BYTES = 223;
/** A refusal reason is one log line; this bounds what wire content can make of it. */
const MAX_REASON_CHARS = 512;

/** Control and format characters (C0, DEL, C1, bidi overrides, ...) and line/paragraph separators. */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

/** The first `maxBytes` UTF-8 bytes of `s`, cut at a character boundary. */
function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > maxBytes) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/** A name as received (InitiatorName, TargetName), made safe for events and logs: printable, ≤ 223 bytes. */
export function wireName(raw: string): string {
  return truncateUtf8(raw.replace(UNPRINTABLE, ''), MAX_WIRE_NAME_BYTES);
}

/** A reason that may quote wire content, made one printable line of bounded length. */
export function wireText(raw: string): string {
  const s = raw.replace(UNPRINTABLE, ' ');
  return s.length > MAX_REASON_CHARS ? `${s.slice(0, MAX_REASON_CHARS - 1)}…` : s;
}

export interface LoginHost {
  readonly ctx: EngineContext;
  readonly writer: PduWriter;
  readonly hdr: Buffer;
  /** Remote `host:port`, for events and logs. */
  readonly address: string;
  nextStatSN(): number;
  /** Close after the queued response is flushed. */
  close(reason: string): void;
}

export interface LoginResult {
  readonly params: SessionParams;
  readonly negotiation: TargetNegotiation;
  readonly initiatorName: string;
  readonly initiatorAlias: string | undefined;
  readonly target: TargetNode | null;
  readonly isid: number;
  readonly tsih: number;
  readonly cid: number;
  readonly itt: number;
  readonly cmdSN: number;
  /** Write the final Login Response (after the session exists: it carries the TSIH). */
  respond(tsih: number): void;
  /** Refuse instead of completing (e.g. no free TSIH: OUT_OF_RESOURCES, 0x0302); closes the connection. */
  refuse(statusName: LoginStatusName, reason: string): void;
}

export class LoginPhase {
  private neg: TargetNegotiation | null = null;
  private target: TargetNode | null = null;
  private initiatorName = '';
  private targetName = '';
  private readonly assembler = new TextSegmentAssembler(64 * 1024);
  /** Response text still to send (our C=1 continuation), and the flags for its final part. */
  private pendingText: Buffer | null = null;
  private pendingTransit = false;
  private pendingCsg = 0;
  private pendingNsg = 0;
  /** The finished negotiation when the pending response is the last one (T=1, NSG=3). */
  private pendingFinish: { params: SessionParams; state: TargetNegotiation } | null = null;
  private finished = false;
  private isid = 0;
  private tsih = 0;
  private cid = 0;

  constructor(
    private readonly host: LoginHost,
    private readonly onComplete: (result: LoginResult) => void,
  ) {}

  /** One Login Request PDU. */
  handle(bhs: Buffer, data: Buffer): void {
    if (this.finished) return;
    const req = parseLoginRequest(bhs, data);
    const first = this.neg === null && this.initiatorName === '' && !this.assembler.pending;
    if (first) {
      this.isid = req.isid;
      this.tsih = req.tsih;
      this.cid = req.cid;
    }
    if (req.transit && req.continue) return this.refuse(req, 'INITIATOR_ERROR', 'Login Request with both T and C set');
    if (req.versionMin > ISCSI_VERSION) {
      return this.refuse(req, 'UNSUPPORTED_VERSION', `initiator requires iSCSI version ${req.versionMin}..${req.versionMax}; this target speaks version 0 (RFC 7143)`);
    }
    if (req.isid !== this.isid || req.tsih !== this.tsih) {
      return this.refuse(req, 'INITIATOR_ERROR', 'ISID or TSIH changed during the login');
    }

    // The initiator collects the rest of a response we continued (C=1).
    if (this.pendingText !== null) {
      if (req.data.length !== 0) return this.refuse(req, 'INITIATOR_ERROR', 'Login Request with text while the target was still sending its response');
      this.sendPending(req);
      return;
    }

    let text: Buffer | undefined;
    try {
      text = this.assembler.push(req.data, req.continue);
    } catch (err) {
      return this.refuse(req, 'INITIATOR_ERROR', (err as Error).message);
    }
    if (text === undefined) {
      // Solicit the rest of the initiator's text with an empty response.
      this.sendResponse(req, { transit: false, cont: false, csg: req.csg, nsg: 0, tsih: req.tsih }, EMPTY_BUFFER);
      return;
    }
    let pairs;
    try {
      pairs = decodeTextKeys(text, { repeatable: SEND_TARGETS_REPEATABLE_KEYS });
    } catch (err) {
      return this.refuse(req, 'INITIATOR_ERROR', err instanceof TextKeyError ? `bad login text: ${err.message}` : String(err));
    }

    if (this.neg === null) {
      const id = readLoginIdentity(pairs, { allowDiscovery: this.host.ctx.negotiation.allowDiscovery ?? true });
      if (!id.ok) {
        // Names not (yet) checked: refuse() reports them through wireName.
        this.initiatorName = pairs.find(([k]) => k === 'InitiatorName')?.[1] ?? '';
        this.targetName = pairs.find(([k]) => k === 'TargetName')?.[1] ?? '';
        return this.refuse(req, id.status, id.reason);
      }
      const identity = id.identity;
      this.initiatorName = identity.InitiatorName;
      this.targetName = identity.TargetName ?? '';
      const ctx = this.host.ctx;
      // Discovery sessions (SessionType=Discovery) negotiate AuthMethod=None:
      // CHAP belongs to targets and their ACL entries, and a discovery session
      // reaches no target — SendTargets lists only the targets whose ACL lets
      // this initiator in (text.ts), so discovery reveals no more than a login would.
      let auth: TargetAuthPolicy = { method: 'None' };
      let alias: string | undefined;
      if (identity.SessionType === 'Normal') {
        const target = ctx.findTarget(identity.TargetName!);
        if (target === undefined) return this.refuse(req, 'NOT_FOUND', `no target named ${identity.TargetName} here`);
        if (!ctx.isAllowed(target, identity.InitiatorName)) {
          return this.refuse(req, 'AUTHORIZATION_FAILURE', `initiator ${identity.InitiatorName} is not in the access list of ${target.iqn}`);
        }
        this.target = target;
        alias = target.alias;
        // Read now, so an ACL or CHAP change applies from the next login on (sealed credentials).
        const chap: LoginChap | undefined = ctx.loginChap(target, identity.InitiatorName);
        if (chap !== undefined) {
          auth = { method: 'CHAP', initiator: chap.initiator, ...(chap.mutual !== undefined ? { mutual: chap.mutual } : {}) };
        }
      }
      if (req.tsih !== 0) {
        const existing = ctx.sessionByTsih(req.tsih);
        if (
          existing === undefined ||
          existing.closed ||
          existing.initiatorName !== identity.InitiatorName ||
          existing.isid !== req.isid ||
          (existing.target?.iqn ?? '') !== (this.target?.iqn ?? '')
        ) {
          return this.refuse(req, 'SESSION_DOES_NOT_EXIST', `TSIH ${req.tsih} names no session of this initiator`);
        }
        return this.refuse(req, 'TOO_MANY_CONNECTIONS', `session ${req.tsih} already has its one connection (MaxConnections=1)`);
      }
      try {
        this.neg = createTargetNegotiation({
          config: {
            ...ctx.negotiation,
            ...(alias !== undefined ? { TargetAlias: alias } : {}),
            ...(this.target !== null ? { TargetPortalGroupTag: this.target.tpgt } : {}),
          },
          auth,
        });
      } catch (err) {
        const why = err instanceof ChapConfigError ? `CHAP configuration of ${this.targetName}: ${err.message}` : (err as Error).message;
        ctx.log('error', why);
        return this.refuse(req, 'TARGET_ERROR', why);
      }
    }

    const r = negotiateLogin(this.neg, { stage: req.csg, transit: req.transit, nsg: req.nsg, pairs });
    if (!r.ok) return this.refuse(req, r.status, r.reason);
    this.neg = r.state;
    const transit = req.transit && r.canTransit;
    const response = encodeTextKeys(r.response);
    let finish: { params: SessionParams; state: TargetNegotiation } | null = null;
    if (transit && req.nsg === Stage.FULL_FEATURE_PHASE) {
      const fin = finishLogin(r.state);
      if (!fin.ok) return this.refuse(req, fin.status, fin.reason);
      finish = { params: fin.params, state: fin.state };
    }
    // A response longer than one PDU goes out continued (C=1); the flags apply to its last part.
    this.pendingText = response;
    this.pendingTransit = transit;
    this.pendingCsg = req.csg;
    this.pendingNsg = req.nsg;
    this.pendingFinish = finish;
    this.sendPending(req);
  }

  private sendPending(req: LoginRequest): void {
    const text = this.pendingText!;
    if (text.length > LOGIN_SEGMENT) {
      this.pendingText = text.subarray(LOGIN_SEGMENT);
      this.sendResponse(req, { transit: false, cont: true, csg: this.pendingCsg, nsg: 0, tsih: req.tsih }, text.subarray(0, LOGIN_SEGMENT));
      return;
    }
    this.pendingText = null;
    if (this.pendingFinish !== null) {
      this.complete(req, this.pendingFinish.params, this.pendingFinish.state, text);
      return;
    }
    const transit = this.pendingTransit;
    this.sendResponse(req, { transit, cont: false, csg: this.pendingCsg, nsg: transit ? this.pendingNsg : 0, tsih: req.tsih }, text);
  }

  /** One Login Response PDU (RFC 7143 §11.13); `status` defaults to success. */
  private sendResponse(
    req: LoginRequest,
    f: { transit: boolean; cont: boolean; csg: number; nsg: number; tsih: number },
    text: Buffer,
    status: { statusClass: number; statusDetail: number } = { statusClass: 0, statusDetail: 0 },
  ): void {
    const refused = status.statusClass !== 0;
    const hdr = encodeLoginResponse(
      {
        transit: f.transit,
        continue: f.cont,
        csg: f.csg,
        nsg: f.nsg,
        versionMax: ISCSI_VERSION,
        versionActive: ISCSI_VERSION,
        isid: req.isid,
        tsih: f.tsih,
        itt: req.itt,
        statSN: this.host.nextStatSN(),
        expCmdSN: req.cmdSN,
        // A refused login opens no command window.
        maxCmdSN: refused ? req.cmdSN : (req.cmdSN + this.host.ctx.queueDepth - 1) >>> 0,
        statusClass: status.statusClass,
        statusDetail: status.statusDetail,
        data: text,
      },
      this.host.hdr,
    );
    this.host.writer.write(hdr, text);
  }

  private complete(req: LoginRequest, params: SessionParams, state: TargetNegotiation, text: Buffer): void {
    this.finished = true;
    const identity = state.identity!;
    this.onComplete({
      params,
      negotiation: state,
      initiatorName: identity.InitiatorName,
      initiatorAlias: identity.InitiatorAlias,
      target: this.target,
      isid: req.isid,
      tsih: req.tsih,
      cid: this.cid,
      itt: req.itt,
      cmdSN: req.cmdSN,
      respond: (tsih: number) =>
        this.sendResponse(req, { transit: true, cont: false, csg: req.csg, nsg: Stage.FULL_FEATURE_PHASE, tsih }, text),
      // The final response is not sent yet, so the login can still fail (RFC 7143 §11.13.5).
      refuse: (statusName: LoginStatusName, reason: string) => this.reject(req, statusName, reason),
    });
  }

  /** Answer with a failure status, report it, close the connection. */
  refuse(req: LoginRequest | null, statusName: LoginStatusName, reason: string): void {
    if (this.finished) return;
    this.reject(req, statusName, reason);
  }

  private reject(req: LoginRequest | null, statusName: LoginStatusName, rawReason: string): void {
    this.finished = true;
    const status = LoginStatus[statusName];
    const ctx = this.host.ctx;
    const reason = wireText(rawReason);
    ctx.loginRefused({
      initiatorName: wireName(this.initiatorName),
      address: this.host.address,
      targetName: wireName(this.targetName),
      reason,
      statusClass: status.statusClass,
      statusDetail: status.statusDetail,
    });
    if (req !== null) this.sendResponse(req, { transit: false, cont: false, csg: req.csg, nsg: 0, tsih: 0 }, EMPTY_BUFFER, status);
    this.host.close(`login refused (${statusName}): ${reason}`);
  }
}
