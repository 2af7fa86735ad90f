/**
 * Pure arithmetic of the target's data path (RFC 7143), kept apart from the
 * connection state machine so it can be unit tested exhaustively:
 *
 *   - CmdSnWindow: ExpCmdSN / MaxCmdSN bookkeeping and the "deliver now /
 *     hold until the gap fills / silently drop" decision of §4.2.2.1;
 *   - planDataIn: how a read's data is cut into Data-In PDUs (at most the
 *     initiator's MaxRecvDataSegmentLength each, sequences of at most
 *     MaxBurstLength closed with F=1, §11.7);
 *   - computeResidual: the O/U flags and ResidualCount of §11.4.5;
 *   - unsolicitedLimit / nextR2T: how much data may arrive unsolicited
 *     (ImmediateData, InitialR2T, FirstBurstLength; §13.10, §13.11, §13.14)
 *     and the R2Ts that solicit the rest (MaxBurstLength, §11.8).
 *
 * Nothing here allocates per call except planDataIn's result array, which
 * the hot path avoids by calling forEachDataIn instead.
 */
import { snAdd, snGreaterThan, snInWindow } from '../iscsi/serial';

// ---------------------------------------------------------------------------
// CmdSN window
// ---------------------------------------------------------------------------

export type CmdSnVerdict = 'now' | 'later' | 'drop';

/**
 * The command window of one session (single connection). ExpCmdSN is the
 * next CmdSN the target expects; MaxCmdSN the last it will accept. The
 * window never shrinks (MaxCmdSN only grows): initiators keep the largest
 * MaxCmdSN they have seen, so lowering it would only make us drop commands
 * they believe are in the window.
 */
export class CmdSnWindow {
  expCmdSN: number;
  maxCmdSN: number;

  constructor(
    firstCmdSN: number,
    /** Commands the session may have outstanding (queue depth). */
    readonly depth: number,
  ) {
    if (!Number.isInteger(depth) || depth < 1) throw new RangeError(`queue depth ${depth} must be a positive integer`);
    this.expCmdSN = firstCmdSN >>> 0;
    this.maxCmdSN = snAdd(this.expCmdSN, depth - 1);
  }

  /**
   * What to do with a PDU carrying `cmdSN`: immediate PDUs are delivered at
   * once and do not advance ExpCmdSN; a non-immediate one is delivered when
   * it is the expected CmdSN, held when it is ahead but inside the window,
   * and silently dropped otherwise (§4.2.2.1: "MUST silently ignore").
   */
  classify(cmdSN: number, immediate: boolean): CmdSnVerdict {
    if (immediate) return 'now';
    // The window is empty when MaxCmdSN = ExpCmdSN - 1 (every slot busy): then even ExpCmdSN is out.
    if (!snInWindow(cmdSN, this.expCmdSN, this.maxCmdSN)) return 'drop';
    return cmdSN === this.expCmdSN ? 'now' : 'later';
  }

  /** A non-immediate PDU with CmdSN = ExpCmdSN was delivered. */
  advance(): void {
    this.expCmdSN = snAdd(this.expCmdSN, 1);
  }

  /**
   * Recompute MaxCmdSN from the number of commands still active (received
   * but not yet answered): MaxCmdSN = ExpCmdSN - 1 + (depth - active), never
   * decreasing. Returns the MaxCmdSN to put in the next PDU.
   */
  update(active: number): number {
    const room = this.depth - active;
    const candidate = snAdd(this.expCmdSN, room - 1);
    if (snGreaterThan(candidate, this.maxCmdSN)) this.maxCmdSN = candidate;
    return this.maxCmdSN;
  }
}

// ---------------------------------------------------------------------------
// Residuals
// ---------------------------------------------------------------------------

export interface Residual {
  overflow: boolean;
  underflow: boolean;
  count: number;
}

export const NO_RESIDUAL: Readonly<Residual> = Object.freeze({ overflow: false, underflow: false, count: 0 });

/**
 * §11.4.5: `wanted` is the number of bytes the command would transfer (the
 * data it produced, or the Data-Out its CDB asks for); `expected` the
 * initiator's ExpectedDataTransferLength for that direction. More wanted
 * than expected: overflow by the difference; less: underflow.
 */
export function computeResidual(wanted: number, expected: number): Residual {
  if (wanted > expected) return { overflow: true, underflow: false, count: wanted - expected };
  if (wanted < expected) return { overflow: false, underflow: true, count: expected - wanted };
  return NO_RESIDUAL;
}

// ---------------------------------------------------------------------------
// Data-In planning
// ---------------------------------------------------------------------------

export interface DataInPdu {
  /** Offset of this PDU's data in the command's buffer (= BufferOffset). */
  offset: number;
  length: number;
  dataSN: number;
  /** F: last PDU of a Data-In sequence (every MaxBurstLength bytes, and the last PDU). */
  final: boolean;
  /** Last PDU of the command (where phase-collapsed status goes). */
  last: boolean;
}

/**
 * Visit the Data-In PDUs for `total` bytes: each at most `maxSegment`
 * (initiator's MaxRecvDataSegmentLength), never crossing a `maxBurst`
 * boundary, F=1 at the end of each burst and on the last PDU. No PDUs for
 * total = 0. Returns the number of PDUs (the next DataSN).
 */
export function forEachDataIn(
  total: number,
  maxSegment: number,
  maxBurst: number,
  visit: (offset: number, length: number, dataSN: number, final: boolean, last: boolean) => void,
): number {
  if (maxSegment < 1 || maxBurst < 1) throw new RangeError('segment and burst lengths must be positive');
  let offset = 0;
  let dataSN = 0;
  let burstLeft = maxBurst;
  while (offset < total) {
    const length = Math.min(maxSegment, burstLeft, total - offset);
    burstLeft -= length;
    const last = offset + length === total;
    const final = last || burstLeft === 0;
    visit(offset, length, dataSN, final, last);
    offset += length;
    dataSN++;
    if (burstLeft === 0) burstLeft = maxBurst;
  }
  return dataSN;
}

/** forEachDataIn as an array (tests, logs). */
export function planDataIn(total: number, maxSegment: number, maxBurst: number): DataInPdu[] {
  const out: DataInPdu[] = [];
  forEachDataIn(total, maxSegment, maxBurst, (offset, length, dataSN, final, last) => out.push({ offset, length, dataSN, final, last }));
  return out;
}

// ---------------------------------------------------------------------------
// Write data: unsolicited part and R2T planning
// ---------------------------------------------------------------------------

export interface WriteParams {
  InitialR2T: boolean;
  ImmediateData: boolean;
  FirstBurstLength: number;
  MaxBurstLength: number;
  MaxOutstandingR2T: number;
}

/**
 * Bytes of a write that may arrive without an R2T: the immediate data plus,
 * when InitialR2T=No and the command's F bit is clear, unsolicited Data-Out
 * — in total at most FirstBurstLength and at most EDTL (§13.14). Returns
 * -1 when the command's own shape is a protocol error (immediate data when
 * ImmediateData=No, more immediate data than FirstBurstLength or EDTL, F=0
 * when InitialR2T=Yes).
 */
export function unsolicitedLimit(p: WriteParams, edtl: number, immediateLength: number, finalBit: boolean): number {
  if (immediateLength > 0 && !p.ImmediateData) return -1;
  if (immediateLength > edtl || immediateLength > p.FirstBurstLength) return -1;
  if (finalBit) return immediateLength;
  if (p.InitialR2T) return -1;
  return Math.min(edtl, p.FirstBurstLength);
}

export interface R2TPlan {
  offset: number;
  length: number;
}

/**
 * The next R2T to send: from `nextOffset`, at most MaxBurstLength, never
 * past EDTL; null when everything is solicited.
 */
export function nextR2T(nextOffset: number, edtl: number, maxBurst: number): R2TPlan | null {
  if (nextOffset >= edtl) return null;
  return { offset: nextOffset, length: Math.min(maxBurst, edtl - nextOffset) };
}

/** Every R2T needed to solicit [from, edtl) (tests, logs). */
export function planR2Ts(from: number, edtl: number, maxBurst: number): R2TPlan[] {
  const out: R2TPlan[] = [];
  for (let r = nextR2T(from, edtl, maxBurst); r !== null; r = nextR2T(r.offset + r.length, edtl, maxBurst)) out.push(r);
  return out;
}
