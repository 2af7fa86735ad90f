/**
 * SendTargets discovery (RFC 7143 §4.3, Appendix C): log in to a portal
 * with SessionType=Discovery, ask SendTargets=All, gather the answer over
 * Text Responses that continue (C bit, §6.4), log out. The target lists
 * only what this initiator may see, each target with its portals.
 */
import { EMPTY_BUFFER, readOpcode } from '../iscsi/bhs';
import { Opcode, RESERVED_TAG } from '../iscsi/constants';
import type { ChapCredentials } from '../iscsi/chap';
import { parseSendTargetsResponse, type DiscoveredTarget } from '../iscsi/negotiation';
import { encodeNopOut, parseNopIn } from '../iscsi/nop';
import { encodeTextRequest, parseTextResponse } from '../iscsi/text';
import { SEND_TARGETS_REPEATABLE_KEYS, decodeTextKeys, encodeTextKeys } from '../iscsi/text-keys';
import { InitiatorError } from './errors';
import { login, logout, randomIsid } from './login';
import { PduChannel } from './pdu-channel';

export type { DiscoveredTarget } from '../iscsi/negotiation';

export const ISCSI_PORT = 3260;
/** Default wait for the connection and for each answer. */
export const DISCOVERY_TIMEOUT_MS = 10_000;
/** Default bound on the whole discovery: connect, login, answer and logout. */
export const DISCOVERY_DEADLINE_MS = 60_000;
/** A SendTargets answer longer than this is not a home lab's; stop reading. */
const MAX_SEND_TARGETS_BYTES = 1 << 20;
/** Text Responses one answer may be spread over, and PDUs we may skip (pings, async messages) meanwhile. */
const MAX_TEXT_RESPONSES = 4096;
const MAX_SKIPPED_PDUS = 64;

export interface DiscoveryOptions {
  readonly host: string;
  readonly port?: number;
  readonly initiatorName: string;
  readonly chap?: { readonly credentials: ChapCredentials; readonly mutual?: ChapCredentials };
  readonly timeoutMs?: number;
  /** Milliseconds for the whole discovery (default 60 s), however chatty the target. */
  readonly deadlineMs?: number;
  /** The largest Text Response data segment we take (default 256 KiB); a longer answer arrives in continued responses. */
  readonly maxRecvDataSegmentLength?: number;
}

/** The targets `host:port` offers this initiator. Rejects with an InitiatorError. */
export async function discoverTargets(options: DiscoveryOptions): Promise<DiscoveredTarget[]> {
  const timeoutMs = options.timeoutMs ?? DISCOVERY_TIMEOUT_MS;
  const channel = await PduChannel.connect({ host: options.host, port: options.port ?? ISCSI_PORT, timeoutMs });
  channel.setDeadline(options.deadlineMs ?? DISCOVERY_DEADLINE_MS, 'discovery');
  try {
    const session = await login(channel, {
      initiatorName: options.initiatorName,
      sessionType: 'Discovery',
      ...(options.chap !== undefined ? { chap: options.chap } : {}),
      isid: randomIsid(),
      timeoutMs,
      ...(options.maxRecvDataSegmentLength !== undefined ? { offer: { MaxRecvDataSegmentLength: options.maxRecvDataSegmentLength } } : {}),
    });
    const p = session.params;
    channel.setReceiveLimits(p.MaxRecvDataSegmentLength.initiator, p.HeaderDigest === 'CRC32C', p.DataDigest === 'CRC32C');
    const itt = session.lastItt + 1;
    let cmdSN = session.cmdSN;
    let expStatSN = session.expStatSN;
    const ask = (ttt: number, data: Buffer) => {
      channel.send(encodeTextRequest({ immediate: false, final: true, continue: false, lun: 0, itt, ttt, cmdSN, expStatSN, data }), data);
      cmdSN = (cmdSN + 1) >>> 0;
    };
    ask(RESERVED_TAG, encodeTextKeys([['SendTargets', 'All']]));

    const parts: Buffer[] = [];
    let total = 0;
    let responses = 0;
    let skipped = 0;
    for (;;) {
      const raw = await channel.next(timeoutMs, 'its SendTargets answer');
      const op = readOpcode(raw.bhs);
      if (op === Opcode.NOP_IN || op === Opcode.ASYNC_MESSAGE) {
        if (++skipped > MAX_SKIPPED_PDUS) throw new InitiatorError('PROTOCOL_ERROR', `discovery at ${channel.portal}: ${MAX_SKIPPED_PDUS} pings and messages instead of an answer`);
        if (op === Opcode.NOP_IN) {
          const ping = parseNopIn(raw.bhs, raw.data);
          // §11.19: a NOP-In with a TTT wants a NOP-Out echoing it (immediate, so CmdSN does not advance).
          if (ping.ttt !== RESERVED_TAG) {
            channel.send(encodeNopOut({ immediate: true, lun: ping.lun < 0 ? 0 : ping.lun, itt: RESERVED_TAG, ttt: ping.ttt, cmdSN, expStatSN, data: EMPTY_BUFFER }));
          }
        }
        continue;
      }
      if (op === Opcode.REJECT) throw new InitiatorError('PROTOCOL_ERROR', `discovery at ${channel.portal}: the target rejected SendTargets`);
      if (op !== Opcode.TEXT_RESPONSE) throw new InitiatorError('PROTOCOL_ERROR', `discovery at ${channel.portal}: opcode 0x${op.toString(16)} instead of a Text Response`);
      const r = parseTextResponse(raw.bhs, raw.data);
      if (r.itt !== itt) throw new InitiatorError('PROTOCOL_ERROR', `discovery at ${channel.portal}: a Text Response for ITT ${r.itt}, not ${itt}`);
      expStatSN = (r.statSN + 1) >>> 0;
      total += r.data.length;
      if (total > MAX_SEND_TARGETS_BYTES) throw new InitiatorError('PROTOCOL_ERROR', `discovery at ${channel.portal}: the SendTargets answer runs past ${MAX_SEND_TARGETS_BYTES} bytes`);
      if (++responses > MAX_TEXT_RESPONSES) throw new InitiatorError('PROTOCOL_ERROR', `discovery at ${channel.portal}: the SendTargets answer goes on over ${MAX_TEXT_RESPONSES} responses`);
      parts.push(Buffer.from(r.data));
      if (r.final && r.continue) throw new InitiatorError('PROTOCOL_ERROR', `discovery at ${channel.portal}: a Text Response with both F and C set`);
      if (r.final) break;
      // §11.11: F=0 (with C=1 when a pair is cut, else C=0) means more follows; an empty Text Request
      // with the target's TTT asks for it. Without a TTT there is nothing to ask for.
      if (r.ttt === RESERVED_TAG) throw new InitiatorError('PROTOCOL_ERROR', `discovery at ${channel.portal}: a Text Response that says more follows, without a Target Transfer Tag to ask for it`);
      ask(r.ttt, Buffer.alloc(0));
    }
    let targets: DiscoveredTarget[] | null;
    try {
      targets = parseSendTargetsResponse(decodeTextKeys(Buffer.concat(parts), { repeatable: SEND_TARGETS_REPEATABLE_KEYS }));
    } catch (err) {
      throw new InitiatorError('PROTOCOL_ERROR', `discovery at ${channel.portal}: unreadable SendTargets answer: ${(err as Error).message}`);
    }
    if (targets === null) throw new InitiatorError('PROTOCOL_ERROR', `discovery at ${channel.portal}: a TargetAddress in the SendTargets answer is malformed or comes before any TargetName`);
    await logout(channel, { itt: itt + 1, cmdSN, expStatSN }, Math.min(timeoutMs, 2_000));
    return targets;
  } finally {
    channel.close();
  }
}
