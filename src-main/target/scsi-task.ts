/**
 * SCSI Command handling on the target (RFC 7143 §11.3-§11.8): a task per
 * command, from the SCSI Command PDU through its immediate, unsolicited and
 * solicited (R2T) Data-Out, into the SCSI emulation, and back as Data-In
 * (phase-collapsed status when possible) and/or a SCSI Response.
 *
 * Hot path rules: callbacks only, one Buffer for a write's data (or none:
 * a write whose data all came as immediate data runs straight from the
 * received segment), Data-In headers written in place into the connection's
 * scratch header, and a whole read answer (Data-In burst + status) handed
 * to the socket in one corked write. A WRITE's data buffer comes from the
 * SCSI layer's buffer pool and goes back once the write has completed
 * (WRITE(6/10/12/16) only: their handler keeps no reference to Data-Out);
 * Data-Out the framer already placed in that buffer (placeDataOut) is not
 * copied again.
 */
import { performance } from 'node:perf_hooks';
import { BhsOffset, EMPTY_BUFFER, beginBhs, encodeLun, readBufferOffset, readDataSN, readFinal, readITT, readTTT } from '../iscsi/bhs';
import type { RawPdu } from '../iscsi/framer';
import { Flag, Opcode, RejectReason, RESERVED_TAG, ScsiStatus } from '../iscsi/constants';
import type { SessionParams } from '../iscsi/negotiation';
import { encodeR2T } from '../iscsi/r2t';
import { encodeScsiResponse, encodeSenseData, parseScsiCommand, type ScsiCommand as ScsiCommandPdu } from '../iscsi/scsi-command';
import { AdditionalSense, SenseKey, buildFixedSense } from '../iscsi/sense';
import type { PduWriter } from '../iscsi/writer';
import { NO_RESIDUAL, computeResidual, forEachDataIn, nextR2T, unsolicitedLimit, type Residual } from './data-plan';
import type { Session } from './session';
import type { ScsiCommand, ScsiResponse } from './scsi/types';
import { defaultBufferPool } from './scsi/buffer-pool';
import { IoStats, OP_READ, OP_WRITE, opKindOf, type OpKind } from './stats';

/** Largest write a single command may announce (the SCSI layer's own limit is lower). */
export const MAX_WRITE_BYTES = 64 << 20;
/**
 * Write data one session may hold while it waits for Data-Out. A command
 * that would go over gets TASK SET FULL (the initiator retries later), so an
 * initiator announcing huge writes and never sending them cannot eat memory.
 */
export const MAX_PENDING_WRITE_BYTES = 256 << 20;

/** Opcodes whose Data-Out buffer may come from (and go back to) the pool. */
function poolsDataOut(opcode: number): boolean {
  // WRITE(6), WRITE(10), WRITE(12), WRITE(16)
  return opcode === 0x2a || opcode === 0x8a || opcode === 0xaa || opcode === 0x0a;
}

function tagOf(itt: number): string {
  return `ITT 0x${itt.toString(16)}`;
}

/** What tasks need from their connection. */
export interface TaskHost {
  readonly session: Session;
  readonly writer: PduWriter;
  /** Per-connection scratch BHS (the writer copies it). */
  readonly hdr: Buffer;
  /** The initiator's MaxRecvDataSegmentLength (Data-In segment limit). */
  readonly initiatorMrdsl: number;
  readonly closed: boolean;
  /** StatSN for a status-carrying PDU (post-increment). */
  nextStatSN(): number;
  /** StatSN field of PDUs that do not advance it (R2T, Data-In without status). */
  peekStatSN(): number;
  nextTtt(): number;
  /** Write out what is batched now (used when no other command is running). */
  flushOutput(): void;
  /**
   * Reserve `bytes` of Data-In for a read about to start; false when the
   * connection already holds its budget of unsent or in-production Data-In
   * (a peer that does not read): the read then waits (deferStart) until the
   * socket drains.
   */
  reserveDataIn(bytes: number): boolean;
  releaseDataIn(bytes: number): void;
  deferStart(start: () => void): void;
  /** Protocol violation: Reject (if a header is given) and drop the connection (ERL 0). */
  protocolError(message: string, bhs?: Buffer): void;
  /** A bug of ours surfaced: log it and drop this connection; the process and other sessions go on. */
  internalError(err: unknown): void;
  reject(reason: number, bhs: Buffer): void;
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void;
  /** Counters of a LUN of this session's target (undefined for unknown LUNs). */
  lunStats(lun: number): IoStats | undefined;
}

const enum TaskState {
  DATA = 0,
  SCSI = 1,
  DONE = 2,
  /** A read waiting for the connection's Data-In budget (see TaskHost.reserveDataIn). */
  DEFERRED = 3,
}

interface R2tState {
  ttt: number;
  offset: number;
  length: number;
  /** Next expected BufferOffset. */
  next: number;
  /** Next expected DataSN. */
  dataSN: number;
}

export class Task {
  state = TaskState.DATA;
  aborted = false;
  /** Gathered Data-Out (writes that did not arrive whole as immediate data). */
  buf: Buffer | null = null;
  /** The pooled buffer `buf` is a view of, returned once the command is over; null when not pooled. */
  pooled: Buffer | null = null;
  received = 0;
  /** Unsolicited Data-Out still expected: [unsolicitedNext, unsolicitedEnd). */
  unsolicitedOpen = false;
  unsolicitedNext = 0;
  unsolicitedEnd = 0;
  unsolicitedDataSN = 0;
  /** Next offset to solicit with an R2T. */
  r2tNext = 0;
  r2tSN = 0;
  readonly r2ts: R2tState[] = [];
  scsi: ScsiCommand | null = null;
  startedAt = 0;
  /** Data-In bytes reserved against the connection's budget while this read runs. */
  dataInReserved = 0;
  readonly kind: OpKind;
  private waiters: Array<() => void> | null = null;
  readonly onScsiDone: (resp: ScsiResponse) => void;

  constructor(
    readonly host: TaskHost,
    readonly pdu: ScsiCommandPdu,
  ) {
    this.kind = opKindOf(pdu.cdb[0]);
    this.onScsiDone = (resp) => completeTask(this, resp);
  }

  get itt(): number {
    return this.pdu.itt;
  }
  get lun(): number {
    return this.pdu.lun;
  }
  get edtl(): number {
    return this.pdu.expectedDataTransferLength;
  }

  /**
   * Abort: a task still collecting Data-Out ends now; one inside the SCSI
   * layer is flagged (queued commands complete as TASK ABORTED without
   * touching the medium) and its response will be dropped. `cb` runs once
   * the task has settled.
   */
  abort(cb: (() => void) | null): void {
    if (this.state === TaskState.DONE) {
      cb?.();
      return;
    }
    this.aborted = true;
    if (this.state === TaskState.DATA || this.state === TaskState.DEFERRED) {
      this.state = TaskState.DONE;
      this.host.session.tasks.delete(this.itt);
      this.dropBuffer();
      // The pooled buffer is not given back: the framer may be placing a
      // Data-Out in it right now (placeDataOut); the garbage collector takes it.
      this.pooled = null;
      cb?.();
      return;
    }
    if (this.scsi !== null) this.scsi.aborted = true;
    if (cb !== null) (this.waiters ??= []).push(cb);
  }

  /** Leave the Data-Out phase: the buffer no longer counts against the session's pending writes. */
  dropBuffer(): void {
    if (this.buf !== null) {
      this.host.session.pendingWriteBytes -= this.buf.length;
      this.buf = null;
    }
  }

  /** Give the pooled Data-Out buffer back (only once nothing can use it any more). */
  returnBuffer(): void {
    const p = this.pooled;
    if (p !== null) {
      this.pooled = null;
      defaultBufferPool.release(p);
    }
  }

  settle(): void {
    const w = this.waiters;
    this.waiters = null;
    if (w !== null) for (const cb of w) cb();
  }
}

// ---------------------------------------------------------------------------
// Command arrival
// ---------------------------------------------------------------------------

/** A SCSI Command PDU, delivered in CmdSN order. */
export function handleScsiCommand(host: TaskHost, raw: RawPdu): void {
  const session = host.session;
  if (session.target === null) {
    host.reject(RejectReason.PROTOCOL_ERROR, raw.bhs);
    return;
  }
  const pdu = parseScsiCommand(raw.bhs, raw.data, raw.ahs);
  if (session.tasks.has(pdu.itt)) {
    host.reject(RejectReason.TASK_IN_PROGRESS, raw.bhs);
    return;
  }
  const task = new Task(host, pdu);
  session.tasks.set(pdu.itt, task);
  const edtl = pdu.expectedDataTransferLength;
  const immediate = pdu.data;

  if (!pdu.write || edtl === 0) {
    if (immediate.length > 0) {
      host.protocolError(`SCSI command ITT 0x${pdu.itt.toString(16)} carries ${immediate.length} bytes of immediate data without a write to go with it`, raw.bhs);
      return;
    }
    startScsi(task, null);
    return;
  }

  const limit = unsolicitedLimit(session.params, edtl, immediate.length, pdu.final);
  if (limit < 0) {
    host.protocolError(
      `SCSI write ITT 0x${pdu.itt.toString(16)}: immediate data ${immediate.length}, F=${pdu.final ? 1 : 0} and EDTL ${edtl} break the negotiated ImmediateData/InitialR2T/FirstBurstLength`,
      raw.bhs,
    );
    return;
  }
  if (immediate.length === edtl) {
    // Zero copy: the whole write arrived with the command.
    task.received = edtl;
    startScsi(task, immediate);
    return;
  }
  if (edtl > MAX_WRITE_BYTES) {
    host.protocolError(`SCSI write ITT 0x${pdu.itt.toString(16)} announces ${edtl} bytes, over the ${MAX_WRITE_BYTES}-byte limit`, raw.bhs);
    return;
  }
  if (session.pendingWriteBytes + edtl > MAX_PENDING_WRITE_BYTES) {
    task.state = TaskState.SCSI;
    task.startedAt = performance.now();
    session.stats.inFlight++;
    const ls = host.lunStats(task.lun);
    if (ls !== undefined) ls.inFlight++;
    completeTask(task, { status: ScsiStatus.TASK_SET_FULL, data: null, sense: null, dataOutLength: edtl });
    return;
  }
  let buf: Buffer;
  if (poolsDataOut(pdu.cdb[0])) {
    const placed = adoptPlacedImmediate(immediate, edtl);
    const pooled = placed ?? defaultBufferPool.acquire(edtl);
    task.pooled = pooled;
    buf = pooled.length === edtl ? pooled : pooled.subarray(0, edtl);
    if (placed === null && immediate.length > 0) immediate.copy(buf, 0);
  } else {
    buf = Buffer.allocUnsafe(edtl);
    if (immediate.length > 0) immediate.copy(buf, 0);
  }
  task.buf = buf;
  session.pendingWriteBytes += edtl;
  task.received = immediate.length;
  task.r2tNext = immediate.length;
  if (limit > immediate.length) {
    task.unsolicitedOpen = true;
    task.unsolicitedNext = immediate.length;
    task.unsolicitedEnd = limit;
  } else {
    sendR2Ts(task, session.params);
  }
}

/** Solicit the rest of a write, up to MaxOutstandingR2T R2Ts at a time. */
function sendR2Ts(task: Task, p: SessionParams): void {
  const host = task.host;
  while (task.r2ts.length < p.MaxOutstandingR2T) {
    const plan = nextR2T(task.r2tNext, task.edtl, p.MaxBurstLength);
    if (plan === null) return;
    const r2t: R2tState = { ttt: host.nextTtt(), offset: plan.offset, length: plan.length, next: plan.offset, dataSN: 0 };
    task.r2ts.push(r2t);
    task.r2tNext = plan.offset + plan.length;
    const session = host.session;
    const hdr = encodeR2T(
      {
        lun: task.lun < 0 ? 0 : task.lun,
        itt: task.itt,
        ttt: r2t.ttt,
        statSN: host.peekStatSN(),
        expCmdSN: session.window.expCmdSN,
        maxCmdSN: session.maxCmdSN(),
        r2tSN: task.r2tSN++,
        bufferOffset: plan.offset,
        desiredDataTransferLength: plan.length,
      },
      host.hdr,
    );
    host.writer.write(hdr);
  }
}

/** A SCSI Data-Out PDU (no CmdSN: delivered as it comes). */
export function handleDataOut(host: TaskHost, raw: RawPdu): void {
  const bhs = raw.bhs;
  const itt = readITT(bhs);
  const task = host.session.tasks.get(itt);
  // Data for an aborted or finished task (or garbage): drop it (RFC 7143 §4.2.3.3).
  if (task === undefined || task.state !== TaskState.DATA) return;
  const buf = task.buf;
  const ttt = readTTT(bhs);
  const dataSN = readDataSN(bhs);
  const offset = readBufferOffset(bhs);
  const data = raw.data;
  const len = data.length;
  const final = readFinal(bhs);
  if (buf === null) {
    failWrite(task, `Data-Out for ${tagOf(itt)}, which expects no data`);
    return;
  }
  if (ttt === RESERVED_TAG) {
    if (!task.unsolicitedOpen) {
      failWrite(task, `unsolicited Data-Out for ${tagOf(itt)} after its unsolicited burst ended`);
      return;
    }
    if (dataSN !== task.unsolicitedDataSN) {
      failWrite(task, `Data-Out for ${tagOf(itt)} has DataSN ${dataSN}, expected ${task.unsolicitedDataSN}`);
      return;
    }
    if (offset !== task.unsolicitedNext || offset + len > task.unsolicitedEnd) {
      failWrite(task, `unsolicited Data-Out for ${tagOf(itt)} at offset ${offset}+${len}, expected ${task.unsolicitedNext} within ${task.unsolicitedEnd}`);
      return;
    }
    if (!placedAt(data, buf, offset)) data.copy(buf, offset);
    task.unsolicitedNext += len;
    task.unsolicitedDataSN++;
    task.received += len;
    if (final) {
      task.unsolicitedOpen = false;
      if (task.r2tNext < task.unsolicitedNext) task.r2tNext = task.unsolicitedNext;
      if (task.received < task.edtl) sendR2Ts(task, host.session.params);
    }
  } else {
    let r2t: R2tState | undefined;
    let index = 0;
    for (; index < task.r2ts.length; index++) {
      if (task.r2ts[index].ttt === ttt) {
        r2t = task.r2ts[index];
        break;
      }
    }
    if (r2t === undefined) {
      failWrite(task, `Data-Out for ${tagOf(itt)} names TTT 0x${ttt.toString(16)}, which is not an outstanding R2T`);
      return;
    }
    if (dataSN !== r2t.dataSN) {
      failWrite(task, `Data-Out for ${tagOf(itt)} has DataSN ${dataSN}, expected ${r2t.dataSN}`);
      return;
    }
    const end = r2t.offset + r2t.length;
    if (offset !== r2t.next || offset + len > end) {
      failWrite(task, `Data-Out for ${tagOf(itt)} at offset ${offset}+${len}, expected ${r2t.next} within ${end}`);
      return;
    }
    if (!placedAt(data, buf, offset)) data.copy(buf, offset);
    r2t.next += len;
    r2t.dataSN++;
    task.received += len;
    if (r2t.next === end) {
      task.r2ts.splice(index, 1);
      if (!task.unsolicitedOpen) sendR2Ts(task, host.session.params);
    } else if (final) {
      failWrite(task, `Data-Out for ${tagOf(itt)} sets F at offset ${r2t.next}, before the end of its R2T at ${end}`);
      return;
    }
  }
  if (task.received === task.edtl && !task.unsolicitedOpen && task.r2ts.length === 0) startScsi(task, buf);
}

/** Whether `data` already is the bytes of `buf` at `offset` (the framer placed it there). */
function placedAt(data: Buffer, buf: Buffer, offset: number): boolean {
  return data.buffer === buf.buffer && data.byteOffset === buf.byteOffset + offset;
}

/**
 * Where the framer may put the data segment of a Data-Out PDU whose header
 * it has read but whose data is still arriving (PduFramer's placeData): the
 * slice of the task's own buffer that a valid PDU fills, so the bytes are
 * copied once, from the socket chunk to the write buffer. Null (the framer
 * assembles the PDU as usual) for anything handleDataOut would not accept
 * as it stands — it still checks the PDU when it is delivered, and a PDU
 * that turns out bad (a DataDigest error) leaves only bytes a valid one
 * will overwrite.
 */
export function placeDataOut(host: TaskHost, bhs: Buffer, dataLength: number): Buffer | null {
  const opcode = bhs[0] & 0x3f;
  if (opcode === Opcode.SCSI_COMMAND) return placeImmediateData(bhs, dataLength);
  if (opcode !== Opcode.SCSI_DATA_OUT) return null;
  const task = host.session.tasks.get(readITT(bhs));
  if (task === undefined || task.state !== TaskState.DATA) return null;
  const buf = task.buf;
  if (buf === null) return null;
  const ttt = readTTT(bhs);
  const offset = readBufferOffset(bhs);
  const end = offset + dataLength;
  if (ttt === RESERVED_TAG) {
    if (!task.unsolicitedOpen || offset !== task.unsolicitedNext || end > task.unsolicitedEnd) return null;
  } else {
    let ok = false;
    for (const r2t of task.r2ts) {
      if (r2t.ttt === ttt) {
        ok = offset === r2t.next && end <= r2t.offset + r2t.length;
        break;
      }
    }
    if (!ok) return null;
  }
  return buf.subarray(offset, end);
}

/**
 * Pooled write buffers the framer is filling, or has filled, with a WRITE's
 * immediate data (keyed by their memory), waiting for handleScsiCommand to
 * adopt them. A command that never arrives there (dropped, a connection
 * closed) leaves its buffer to the garbage collector.
 */
const placedImmediate = new WeakMap<ArrayBufferLike, Buffer>();

/**
 * A WRITE whose immediate data spans socket chunks and whose Data-Out will
 * not all come with it: its own pooled write buffer receives the immediate
 * data from the framer (at offset 0), so handleScsiCommand need not copy it.
 */
function placeImmediateData(bhs: Buffer, dataLength: number): Buffer | null {
  if ((bhs[1] & Flag.W) === 0 || !poolsDataOut(bhs[BhsOffset.CDB])) return null;
  const edtl = bhs.readUInt32BE(BhsOffset.EXPECTED_DATA_TRANSFER_LENGTH);
  if (edtl <= dataLength || edtl > MAX_WRITE_BYTES) return null;
  const pooled = defaultBufferPool.acquire(edtl);
  placedImmediate.set(pooled.buffer, pooled);
  return pooled;
}

/** The pooled buffer `immediate` was placed in by placeImmediateData, if it was. */
function adoptPlacedImmediate(immediate: Buffer, edtl: number): Buffer | null {
  if (immediate.length === 0) return null;
  const pooled = placedImmediate.get(immediate.buffer);
  if (pooled === undefined) return null;
  placedImmediate.delete(immediate.buffer);
  return immediate.byteOffset === pooled.byteOffset && pooled.length >= edtl ? pooled : null;
}

/**
 * A Data-Out broke the sequence rules (DataSN, BufferOffset, TTT, F bit):
 * the write ends at once with CHECK CONDITION / ABORTED COMMAND / DATA
 * PHASE ERROR, nothing is written, the connection goes on; Data-Out still
 * in flight for this ITT is dropped as belonging to no task.
 */
function failWrite(task: Task, message: string): void {
  const host = task.host;
  host.log('warn', `${message}; failing the command`);
  task.dropBuffer();
  task.state = TaskState.SCSI;
  task.startedAt = performance.now();
  host.session.stats.inFlight++;
  const ls = host.lunStats(task.lun);
  if (ls !== undefined) ls.inFlight++;
  completeTask(task, {
    status: ScsiStatus.CHECK_CONDITION,
    data: null,
    sense: buildFixedSense({ key: SenseKey.ABORTED_COMMAND, code: DATA_PHASE_ERROR }),
    dataOutLength: task.edtl,
  });
}

/** ASC/ASCQ 0x4B00 DATA PHASE ERROR (SPC-4 table D.1). */
const DATA_PHASE_ERROR = 0x4b00;

// ---------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------

function startScsi(task: Task, dataOut: Buffer | null): void {
  const host = task.host;
  if (task.pdu.read && task.edtl > 0 && task.dataInReserved === 0) {
    if (!host.reserveDataIn(task.edtl)) {
      task.state = TaskState.DEFERRED;
      host.deferStart(() => {
        if (task.state === TaskState.DEFERRED && !host.closed) startScsi(task, dataOut);
      });
      return;
    }
    task.dataInReserved = task.edtl;
  }
  const session = host.session;
  const target = session.target;
  if (task.buf !== null) session.pendingWriteBytes -= task.buf.length;
  task.state = TaskState.SCSI;
  const cmd: ScsiCommand = {
    lun: task.lun,
    cdb: task.pdu.cdb,
    nexus: session.nexus!,
    dataOut,
    expectedDataTransferLength: task.edtl,
    taskAttribute: task.pdu.taskAttribute,
  };
  task.scsi = cmd;
  task.startedAt = performance.now();
  session.stats.inFlight++;
  const ls = host.lunStats(task.lun);
  if (ls !== undefined) ls.inFlight++;
  try {
    target!.lunTable.execute(cmd, task.onScsiDone);
  } catch (err) {
    host.log('error', `SCSI layer threw on CDB opcode 0x${task.pdu.cdb[0].toString(16)}: ${(err as Error).stack ?? String(err)}`);
    completeTask(task, {
      status: ScsiStatus.CHECK_CONDITION,
      data: null,
      sense: buildFixedSense({ key: SenseKey.HARDWARE_ERROR, code: AdditionalSense.INTERNAL_TARGET_FAILURE }),
    });
  }
}

function completeTask(task: Task, resp: ScsiResponse): void {
  if (task.state !== TaskState.SCSI) {
    resp.release?.();
    return;
  }
  task.state = TaskState.DONE;
  const host = task.host;
  const session = host.session;
  const micros = Math.round((performance.now() - task.startedAt) * 1000);
  const failed = resp.status !== ScsiStatus.GOOD && resp.status !== ScsiStatus.CONDITION_MET;
  const bytes = task.kind === OP_READ ? Math.min(resp.data?.length ?? 0, task.edtl) : task.kind === OP_WRITE ? task.received : 0;
  session.stats.inFlight--;
  session.stats.record(task.kind, bytes, micros, failed);
  const ls = host.lunStats(task.lun);
  if (ls !== undefined) {
    ls.inFlight--;
    ls.record(task.kind, bytes, micros, failed);
  }
  if (session.tasks.get(task.itt) === task) session.tasks.delete(task.itt);
  task.buf = null;
  // The SCSI layer is done with the Data-Out (a WRITE completes after its I/O).
  task.returnBuffer();
  const reserved = task.dataInReserved;
  task.dataInReserved = 0;
  if (task.aborted || host.closed || session.closed) {
    resp.release?.();
    if (reserved > 0) host.releaseDataIn(reserved);
    task.settle();
    return;
  }
  // Usually runs inside a backstore callback: nothing may escape to the event loop.
  try {
    sendScsiResult(host, task, resp);
    if (session.tasks.size === 0) host.flushOutput();
  } catch (err) {
    // resp.release is not called: part of the data may already be queued with it
    // as its completion; an unreturned pool buffer is merely garbage-collected.
    host.internalError(err);
  } finally {
    // The Data-In now sits in the socket's buffer, which the budget counts by itself.
    if (reserved > 0) host.releaseDataIn(reserved);
    task.settle();
  }
}

/**
 * Data-In and status for a finished command: the data (trimmed to what the
 * initiator expects) in Data-In PDUs of at most its MaxRecvDataSegmentLength,
 * sequences of at most MaxBurstLength; the status rides in the last Data-In
 * when it is GOOD without sense (phase collapse), else a SCSI Response
 * follows. All of it in one corked write.
 */
export function sendScsiResult(host: TaskHost, task: Task, resp: ScsiResponse): void {
  const session = host.session;
  const pdu = task.pdu;
  const edtl = pdu.expectedDataTransferLength;
  const data = resp.data;
  const produced = data === null ? 0 : data.length;
  const bidi = pdu.read && pdu.write;
  const readExpected = !pdu.read ? 0 : bidi ? pdu.bidirectionalReadExpectedDataTransferLength : edtl;
  const sendLength = produced < readExpected ? produced : readExpected;

  let residual: Residual;
  let bidiResidual: Residual = NO_RESIDUAL;
  if (pdu.write) {
    residual = computeResidual(resp.dataOutLength ?? edtl, edtl);
    if (bidi) bidiResidual = computeResidual(produced, readExpected);
  } else if (pdu.read || produced > 0) {
    residual = computeResidual(produced, readExpected);
  } else {
    residual = NO_RESIDUAL;
  }

  const collapse = sendLength > 0 && !bidi && resp.status === ScsiStatus.GOOD && (resp.sense === null || resp.sense.length === 0);
  const release = resp.release;
  const onWritten = release === undefined ? undefined : () => release();
  const writer = host.writer;
  const hdr = host.hdr;
  const lun = task.lun;
  const itt = task.itt;
  let dataSNs = 0;

  writer.batch(() => {
    if (sendLength > 0) {
      const p = session.params;
      dataSNs = forEachDataIn(sendLength, host.initiatorMrdsl, p.MaxBurstLength, (offset, length, dataSN, final, last) => {
        const withStatus = last && collapse;
        let flags = final ? Flag.F : 0;
        if (withStatus) {
          flags |= Flag.S;
          if (residual.overflow) flags |= Flag.O;
          else if (residual.underflow) flags |= Flag.U;
        }
        beginBhs(hdr, Opcode.SCSI_DATA_IN, false, flags, length);
        if (lun >= 0) encodeLun(lun, hdr, BhsOffset.LUN);
        hdr.writeUInt32BE(itt, BhsOffset.ITT);
        hdr.writeUInt32BE(RESERVED_TAG, BhsOffset.TTT);
        if (withStatus) {
          hdr[3] = resp.status;
          hdr.writeUInt32BE(host.nextStatSN(), BhsOffset.STAT_SN);
          hdr.writeUInt32BE(residual.count >>> 0, BhsOffset.RESIDUAL_COUNT);
        }
        hdr.writeUInt32BE(session.window.expCmdSN, BhsOffset.EXP_CMD_SN);
        hdr.writeUInt32BE(session.maxCmdSN(), BhsOffset.MAX_CMD_SN);
        hdr.writeUInt32BE(dataSN, BhsOffset.DATA_SN);
        hdr.writeUInt32BE(offset, BhsOffset.BUFFER_OFFSET);
        writer.write(hdr, data!.subarray(offset, offset + length), EMPTY_BUFFER, withStatus ? onWritten : undefined);
      });
    }
    if (!collapse) {
      const sense = resp.sense;
      const senseData = sense !== null && sense.length > 0 ? encodeSenseData(sense) : EMPTY_BUFFER;
      const out = encodeScsiResponse(
        {
          bidirectionalReadResidualOverflow: bidiResidual.overflow,
          bidirectionalReadResidualUnderflow: bidiResidual.underflow,
          residualOverflow: residual.overflow,
          residualUnderflow: residual.underflow,
          response: 0,
          status: resp.status,
          itt,
          snackTag: 0,
          statSN: host.nextStatSN(),
          expCmdSN: session.window.expCmdSN,
          maxCmdSN: session.maxCmdSN(),
          expDataSN: pdu.write && !bidi ? task.r2tSN : dataSNs,
          bidirectionalReadResidualCount: bidiResidual.count,
          residualCount: residual.count,
          data: senseData,
        },
        hdr,
      );
      writer.write(out, senseData, EMPTY_BUFFER, onWritten);
    }
  });
}

