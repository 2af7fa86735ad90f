/**
 * Text Requests in the Full Feature Phase (RFC 7143 §11.10, §11.11, §6.3):
 * SendTargets (Appendix C) in discovery and normal sessions, and
 * renegotiation of the keys allowed there (MaxRecvDataSegmentLength,
 * InitiatorAlias) through iscsi/negotiation.ts. Long answers are sent in
 * pieces of the initiator's MaxRecvDataSegmentLength with C=1, each
 * fetched by an empty Text Request echoing our Target Transfer Tag.
 */
import { EMPTY_BUFFER } from '../iscsi/bhs';
import { RESERVED_TAG } from '../iscsi/constants';
import { negotiateText, type TargetNegotiation, type TextPair } from '../iscsi/negotiation';
import { decodeTextKeys, encodeTextKeys, SEND_TARGETS_REPEATABLE_KEYS, TextKeyError, TextSegmentAssembler } from '../iscsi/text-keys';
import { encodeTextResponse, parseTextRequest } from '../iscsi/text';
import type { EngineContext, TargetNode } from './engine-types';
import type { Session } from './session';
import type { PduWriter } from '../iscsi/writer';

export interface TextHost {
  readonly ctx: EngineContext;
  readonly session: Session;
  readonly writer: PduWriter;
  readonly hdr: Buffer;
  readonly localAddress: string;
  readonly localPort: number;
  negotiation: TargetNegotiation;
  initiatorMrdsl: number;
  nextStatSN(): number;
  nextTtt(): number;
  reject(reason: number, bhs: Buffer): void;
}

/** SendTargets answer (Appendix C): TargetName, then its TargetAddress values, per visible target. */
export function sendTargetsPairs(
  ctx: EngineContext,
  value: string,
  session: { initiatorName: string; target: TargetNode | null },
  localAddress: string,
  localPort: number,
  /** The initiator's HOST:PORT, for the hidden-targets report. */
  address = '',
): TextPair[] {
  let targets: TargetNode[];
  if (session.target !== null) {
    // Normal session: only the target of this session (Appendix C: "" or its own name).
    const own = session.target;
    targets = value === '' || value === 'All' || value.toLowerCase() === own.iqn ? [own] : [];
  } else if (value === 'All') {
    targets = ctx.visibleTargets(session.initiatorName);
    ctx.discoveryFiltered(session.initiatorName, address, ctx.hiddenTargets(session.initiatorName));
  } else {
    const t = ctx.findTarget(value);
    const allowed = t !== undefined && ctx.isAllowed(t, session.initiatorName);
    targets = allowed ? [t] : [];
    if (t !== undefined && !allowed) ctx.discoveryFiltered(session.initiatorName, address, [t]);
  }
  const pairs: TextPair[] = [];
  for (const t of targets) {
    pairs.push(['TargetName', t.iqn]);
    for (const addr of ctx.targetAddresses(localAddress, localPort, t.tpgt)) pairs.push(['TargetAddress', addr]);
  }
  return pairs;
}

/** Per-connection state of a text exchange. */
export class TextExchange {
  private readonly assembler = new TextSegmentAssembler(64 * 1024);
  /** Answer still to send, the tag the initiator echoes to fetch it, and its ITT. */
  private pending: Buffer | null = null;
  private pendingTtt = RESERVED_TAG;
  private pendingItt = RESERVED_TAG;

  constructor(private readonly host: TextHost) {}

  handle(bhs: Buffer, data: Buffer): void {
    const host = this.host;
    const req = parseTextRequest(bhs, data);
    if (req.final && req.continue) {
      host.reject(0x04, bhs);
      return;
    }
    // Continuation of our long answer.
    if (req.ttt !== RESERVED_TAG && !this.assembler.pending) {
      if (this.pending === null || req.ttt !== this.pendingTtt || req.itt !== this.pendingItt) {
        host.reject(0x09, bhs);
        return;
      }
      this.sendPiece(req.itt, req.lun);
      return;
    }
    // A new request resets any unfinished answer (§11.10.4).
    this.pending = null;
    this.pendingTtt = RESERVED_TAG;
    let text: Buffer | undefined;
    try {
      text = this.assembler.push(req.data, req.continue);
    } catch {
      host.reject(0x04, bhs);
      return;
    }
    if (text === undefined) {
      // Solicit the rest of the initiator's text (it echoes this tag).
      this.respond(req.itt, req.lun, EMPTY_BUFFER, false, false, host.nextTtt());
      return;
    }
    let pairs;
    try {
      pairs = decodeTextKeys(text, { repeatable: SEND_TARGETS_REPEATABLE_KEYS });
    } catch (err) {
      host.ctx.log('warn', `bad Text Request from ${host.session.initiatorName}: ${err instanceof TextKeyError ? err.message : String(err)}`);
      host.reject(0x04, bhs);
      return;
    }
    const r = negotiateText(host.negotiation, pairs, { newSequence: true });
    if (!r.ok) {
      host.ctx.log('warn', `Text Request from ${host.session.initiatorName} refused: ${r.reason}`);
      host.reject(r.rejectReason, bhs);
      return;
    }
    host.negotiation = r.state;
    host.initiatorMrdsl = r.state.params.MaxRecvDataSegmentLength.initiator;
    const out: TextPair[] = [...r.response];
    if (r.sendTargets !== undefined) {
      out.push(...sendTargetsPairs(host.ctx, r.sendTargets, host.session, host.localAddress, host.localPort, host.session.info().address));
    }
    const answer = encodeTextKeys(out);
    this.pending = answer;
    this.pendingItt = req.itt;
    this.sendPiece(req.itt, req.lun);
  }

  private sendPiece(itt: number, lun: number): void {
    const host = this.host;
    const text = this.pending!;
    const max = host.initiatorMrdsl;
    if (text.length > max) {
      this.pending = text.subarray(max);
      this.pendingTtt = host.nextTtt();
      this.respond(itt, lun, text.subarray(0, max), false, true, this.pendingTtt);
      return;
    }
    this.pending = null;
    this.pendingTtt = RESERVED_TAG;
    this.respond(itt, lun, text, true, false, RESERVED_TAG);
  }

  private respond(itt: number, lun: number, data: Buffer, final: boolean, cont: boolean, ttt: number): void {
    const host = this.host;
    const s = host.session;
    const hdr = encodeTextResponse(
      {
        final,
        continue: cont,
        lun: lun < 0 ? 0 : lun,
        itt,
        ttt,
        statSN: host.nextStatSN(),
        expCmdSN: s.window.expCmdSN,
        maxCmdSN: s.maxCmdSN(),
        data,
      },
      host.hdr,
    );
    host.writer.write(hdr, data);
  }
}
