/**
 * SendTargets discovery (RFC 7143 §4.3, Appendix C): log in to a portal
 * with SessionType=Discovery, ask SendTargets=All, gather the answer over
 * Text Responses that continue (C bit, §6.4), log out. The target lists
 * only what this initiator may see, each target with its portals.
 */
import { readOpcode } from '../iscsi/bhs';
import { Opcode, RESERVED_TAG } from '../iscsi/constants';
import type { ChapCredentials } from '../iscsi/chap';
import { parseSendTargetsResponse, type DiscoveredTarget } from '../iscsi/negotiation';
import { encodeTextRequest, parseTextResponse } from '../iscsi/text';
import { SEND_TARGETS_REPEATABLE_KEYS, decodeTextKeys, encodeTextKeys } from '../iscsi/text-keys';
import { InitiatorError } from './errors';
import { login, logout, randomIsid } from './login';
import { PduChannel } from './pdu-channel';

export type { DiscoveredTarget } from '../iscsi/negotiation';

export const ISCSI_PORT = 3260;
/** Default wait for the connection and for each answer. */
export const DISCOVERY_TIMEOUT_MS = 10_000;
/** A SendTargets answer longer than this is not a home lab's; stop reading. */
const MAX_SEND_TARGETS_BYTES = 1 << 20;

export interface DiscoveryOptions {
  readonly host: string;
  readonly port?: number;
  readonly initiatorName: string;
  readonly chap?: { readonly credentials: ChapCredentials; readonly mutual?: ChapCredentials };
  readonly timeoutMs?: number;
  /** The largest Text Response data segment we take (default 256 KiB); a longer answer arrives in continued responses. */
  readonly maxRecvDataSegmentLength?: number;
}

/** The targets `host:port` offers this initiator. Rejects with an InitiatorError. */
export async function discoverTargets(options: DiscoveryOptions): Promise<DiscoveredTarget[]> {
  const timeoutMs = options.timeoutMs ?? DISCOVERY_TIMEOUT_MS;
  const channel = await PduChannel.connect({ host: options.host, port: options.port ?? ISCSI_PORT, timeoutMs });
  try {
    const session = await login(channel, {
      initiatorName: options.initiatorName,
      sessionType: 'Discovery',
      ...(options.chap !== undefined ? { chap: options.chap } : {}),
      isid: randomIsid(),
      timeoutMs,
      ...(options.maxRecvDataSegmentLength !== undefined ? { maxRecvDataSegmentLength: options.maxRecvDataSegmentLength } : {}),
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
    for (;;) {
      const raw = await channel.next(timeoutMs, 'its SendTargets answer');
      const op = readOpcode(raw.bhs);
      if (op === Opcode.NOP_IN || op === Opcode.ASYNC_MESSAGE) continue; // nothing a short discovery session needs to act on
      if (op === Opcode.REJECT) throw new InitiatorError('PROTOCOL_ERROR', `discovery at ${channel.portal}: the target rejected SendTargets`);
      if (op !== Opcode.TEXT_RESPONSE) throw new InitiatorError('PROTOCOL_ERROR', `discovery at ${channel.portal}: opcode 0x${op.toString(16)} instead of a Text Response`);
      const r = parseTextResponse(raw.bhs, raw.data);
      if (r.itt !== itt) throw new InitiatorError('PROTOCOL_ERROR', `discovery at ${channel.portal}: a Text Response for ITT ${r.itt}, not ${itt}`);
      expStatSN = (r.statSN + 1) >>> 0;
      total += r.data.length;
      if (total > MAX_SEND_TARGETS_BYTES) throw new InitiatorError('PROTOCOL_ERROR', `discovery at ${channel.portal}: the SendTargets answer runs past ${MAX_SEND_TARGETS_BYTES} bytes`);
      parts.push(Buffer.from(r.data));
      if (!r.continue) {
        if (!r.final) throw new InitiatorError('PROTOCOL_ERROR', `discovery at ${channel.portal}: a Text Response with neither F nor C set`);
        break;
      }
      // §6.4: an empty Text Request with the target's TTT asks for the rest.
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
