/**
 * A normal iSCSI session from the initiator's side (RFC 7143 §3.2, §4): log
 * in to one target, then run SCSI commands — many at once — and log out.
 *
 * Per command: an ITT, a CmdSN inside the target's window (commands past
 * MaxCmdSN wait, §4.2.2.1), immediate data up to FirstBurstLength when
 * ImmediateData=Yes, unsolicited Data-Out when InitialR2T=No, Data-Out for
 * each R2T (§11.8), Data-In placed at its BufferOffset, the status from the
 * last Data-In (S bit) or a SCSI Response with its sense data. NOP-In pings
 * are answered (§11.19). Every command is bounded by a timeout; a lost
 * connection fails every command in flight with the reason.
 *
 * ErrorRecoveryLevel 0, one connection per session, no reconnect yet.
 */
import { EMPTY_BUFFER, readOpcode } from '../iscsi/bhs';
import { Opcode, RESERVED_TAG } from '../iscsi/constants';
import { encodeDataOut, parseDataIn } from '../iscsi/data';
import type { RawPdu } from '../iscsi/framer';
import { encodeNopOut, parseNopIn } from '../iscsi/nop';
import { parseR2T } from '../iscsi/r2t';
import { encodeScsiCommand, encodeScsiCommandAhs, parseScsiResponse, splitSenseData } from '../iscsi/scsi-command';
import { snLessThan } from '../iscsi/serial';
import { InitiatorError } from './errors';
import { encodeLogoutRequest } from '../iscsi/logout';
import { login, randomIsid, type LoggedIn, type LoginOptions } from './login';
import { PduChannel } from './pdu-channel';

export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

export interface OpenSessionOptions extends Omit<LoginOptions, 'isid' | 'sessionType' | 'timeoutMs' | 'targetName'> {
  readonly host: string;
  readonly port: number;
  readonly targetName: string;
  /** Connect and login waits (default 10 s each). */
  readonly timeoutMs?: number;
}

export interface CommandRequest {
  readonly lun: number;
  readonly cdb: Buffer;
  /** Bytes of Data-In expected (the CDB's allocation or transfer length in bytes). */
  readonly dataIn?: number;
  /** Data-Out to send (a write). */
  readonly dataOut?: Buffer;
  readonly timeoutMs?: number;
}

export interface CommandResult {
  /** SCSI status (0 GOOD, 2 CHECK CONDITION, ...). */
  readonly status: number;
  /** Data-In actually received (ExpectedDataTransferLength less an underflow residual). */
  readonly data: Buffer;
  /** Sense data with CHECK CONDITION, else null. */
  readonly sense: Buffer | null;
  /** ResidualCount, negative for an overflow. */
  readonly residual: number;
}

interface Task {
  readonly itt: number;
  readonly request: CommandRequest;
  readonly dataIn: Buffer | null;
  readonly edtl: number;
  /** Set once the command is sent; a PDU about an unsent command is the target's mistake. */
  sent: boolean;
  cmdSN: number;
  /** Data-In so far: the next DataSN and BufferOffset expected (DataPDUInOrder=Yes, §13.19). */
  expDataSN: number;
  received: number;
  /** R2Ts so far: the next R2TSN expected, and the bytes solicited (never past the write). */
  expR2TSN: number;
  solicited: number;
  /** Bytes sent before any R2T (immediate + unsolicited). */
  unsolicited: number;
  resolve: (r: CommandResult) => void;
  reject: (e: InitiatorError) => void;
  timer: NodeJS.Timeout | null;
}

/** Largest ExpectedDataTransferLength a command may announce (32-bit field). */
const MAX_EDTL = 0xffffffff;
/** SAM LUNs Spindle addresses (flat space). */
const MAX_LUN = 16383;

const ATTR_SIMPLE = 1;

export class InitiatorSession {
  private readonly tasks = new Map<number, Task>();
  /** Commands waiting for the target's window to open. */
  private readonly waiting: Task[] = [];
  private nextItt: number;
  private cmdSN: number;
  private maxCmdSN: number;
  private expStatSN: number;
  private ended: InitiatorError | null = null;
  /** Set by close(): no new command may start once the Logout is on its way (§11.14). */
  private closing = false;
  private logoutWait: { itt: number; resolve: () => void } | null = null;

  private constructor(
    private readonly channel: PduChannel,
    readonly loggedIn: LoggedIn,
    readonly targetName: string,
  ) {
    this.nextItt = (loggedIn.lastItt + 1) >>> 0;
    this.cmdSN = loggedIn.cmdSN;
    this.maxCmdSN = loggedIn.maxCmdSN;
    this.expStatSN = loggedIn.expStatSN;
    const p = loggedIn.params;
    channel.setReceiveLimits(p.MaxRecvDataSegmentLength.initiator, p.HeaderDigest === 'CRC32C', p.DataDigest === 'CRC32C');
    channel.listen(
      (pdu) => this.onPdu(pdu),
      (err) => this.onEnd(err),
    );
  }

  /** Connects and logs in. Rejects with an InitiatorError (CONNECT_FAILED, AUTH_FAILED, NOT_ALLOWED, ...). */
  static async open(o: OpenSessionOptions): Promise<InitiatorSession> {
    const timeoutMs = o.timeoutMs ?? 10_000;
    const channel = await PduChannel.connect({ host: o.host, port: o.port, timeoutMs });
    try {
      const s = await login(channel, { ...o, sessionType: 'Normal', isid: randomIsid(), timeoutMs });
      return new InitiatorSession(channel, s, o.targetName);
    } catch (err) {
      channel.close();
      throw err;
    }
  }

  get params(): LoggedIn['params'] {
    return this.loggedIn.params;
  }

  /** Runs one SCSI command. Resolves with its status (CHECK CONDITION included); rejects only when the transport fails. */
  command(request: CommandRequest): Promise<CommandResult> {
    if (this.ended) return Promise.reject(this.ended);
    if (this.closing) return Promise.reject(new InitiatorError('CONNECTION_CLOSED', `the session with ${this.targetName} is logging out`));
    const bad = checkRequest(request);
    if (bad !== null) return Promise.reject(new InitiatorError('INVALID_CONFIG', bad));
    const edtl = request.dataOut?.length ?? request.dataIn ?? 0;
    return new Promise((resolve, reject) => {
      const task: Task = {
        itt: this.allocItt(),
        request,
        dataIn: request.dataIn !== undefined && request.dataIn > 0 ? Buffer.alloc(request.dataIn) : null,
        edtl,
        sent: false,
        cmdSN: 0,
        expDataSN: 0,
        received: 0,
        expR2TSN: 0,
        solicited: 0,
        unsolicited: 0,
        resolve,
        reject,
        timer: null,
      };
      this.tasks.set(task.itt, task);
      if (this.windowOpen()) this.send(task);
      else this.waiting.push(task);
    });
  }

  /** Logs out (waiting for the commands in flight first) and closes the connection. */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.ended || this.closing) return;
    this.closing = true;
    const deadline = Date.now() + timeoutMs;
    while (this.tasks.size > 0 && Date.now() < deadline && !this.ended) await new Promise((r) => setTimeout(r, 10));
    if (!this.ended) {
      const itt = this.allocItt();
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.logoutWait = { itt, resolve };
        // The timer must not outlive the logout: it would keep a CLI process alive for its whole length.
        timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        // Reason 0 closes the session; immediate, so CmdSN does not advance (§11.14.1).
        try {
          this.channel.send(encodeLogoutRequest({ immediate: true, reasonCode: 0, itt, cid: 0, cmdSN: this.cmdSN, expStatSN: this.expStatSN }));
        } catch {
          resolve(); // the connection is already gone
        }
      });
      clearTimeout(timer);
      this.logoutWait = null;
    }
    this.end(new InitiatorError('CONNECTION_CLOSED', `the session with ${this.targetName} was closed`));
  }

  // -------------------------------------------------------------------------

  private allocItt(): number {
    let itt = this.nextItt;
    while (itt === RESERVED_TAG || this.tasks.has(itt)) itt = (itt + 1) >>> 0;
    this.nextItt = (itt + 1) >>> 0;
    return itt;
  }

  /** CmdSN ≤ MaxCmdSN, in serial arithmetic (§4.2.2.1). */
  private windowOpen(): boolean {
    return !snLessThan(this.maxCmdSN, this.cmdSN);
  }

  private send(task: Task): void {
    const p = this.params;
    const req = task.request;
    const out = req.dataOut ?? null;
    const mrdsl = p.MaxRecvDataSegmentLength.target;
    // Immediate data (§13.11) and unsolicited Data-Out (§13.10), both within FirstBurstLength.
    const immediate = out !== null && p.ImmediateData ? Math.min(out.length, p.FirstBurstLength, mrdsl) : 0;
    const unsolicitedEnd = out === null ? 0 : p.InitialR2T ? immediate : Math.min(out.length, p.FirstBurstLength);
    const fields = {
      immediate: false,
      final: unsolicitedEnd === immediate,
      read: task.dataIn !== null,
      write: out !== null && out.length > 0,
      taskAttribute: ATTR_SIMPLE,
      lun: req.lun,
      itt: task.itt,
      expectedDataTransferLength: task.edtl,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      cdb: req.cdb,
      bidirectionalReadExpectedDataTransferLength: 0,
      data: immediate > 0 ? out!.subarray(0, immediate) : EMPTY_BUFFER,
    };
    // Encode before the CmdSN is taken: a throw here must not leave a hole in the command sequence.
    const ahs = encodeScsiCommandAhs(fields);
    const bhs = encodeScsiCommand(fields, Buffer.alloc(48));
    task.cmdSN = this.cmdSN;
    this.cmdSN = (this.cmdSN + 1) >>> 0;
    task.sent = true;
    task.unsolicited = unsolicitedEnd;
    const timeoutMs = req.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    task.timer = setTimeout(() => {
      // At ErrorRecoveryLevel 0 a command the target never answers leaves the session in doubt: end it.
      this.end(new InitiatorError('TIMEOUT', `${this.targetName}: a command (opcode 0x${req.cdb[0].toString(16)}) got no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    this.channel.send(bhs, fields.data, ahs);
    if (unsolicitedEnd > immediate) this.sendDataOut(task, RESERVED_TAG, immediate, unsolicitedEnd - immediate);
  }

  /** Data-Out PDUs for [offset, offset+length) of a write, at most the target's MaxRecvDataSegmentLength each. */
  private sendDataOut(task: Task, ttt: number, offset: number, length: number): void {
    const out = task.request.dataOut;
    if (!out || offset + length > out.length) throw new InitiatorError('PROTOCOL_ERROR', `${this.targetName}: asked for write data past its end (offset ${offset}, ${length} bytes of ${out?.length ?? 0})`);
    const mrdsl = this.params.MaxRecvDataSegmentLength.target;
    let dataSN = 0;
    for (let at = offset; at < offset + length; at += mrdsl) {
      const n = Math.min(mrdsl, offset + length - at);
      const data = out.subarray(at, at + n);
      const bhs = encodeDataOut({ final: at + n === offset + length, lun: task.request.lun, itt: task.itt, ttt, expStatSN: this.expStatSN, dataSN: dataSN++, bufferOffset: at, data });
      this.channel.send(bhs, data);
    }
  }

  private onPdu(pdu: RawPdu): void {
    const op = readOpcode(pdu.bhs);
    switch (op) {
      case Opcode.SCSI_DATA_IN:
        return this.onDataIn(pdu);
      case Opcode.SCSI_RESPONSE:
        return this.onResponse(pdu);
      case Opcode.R2T:
        return this.onR2T(pdu);
      case Opcode.NOP_IN:
        return this.onNopIn(pdu);
      case Opcode.LOGOUT_RESPONSE: {
        const itt = pdu.bhs.readUInt32BE(16);
        if (this.logoutWait?.itt === itt) this.logoutWait.resolve();
        return;
      }
      case Opcode.REJECT: {
        this.expStatSN = (pdu.bhs.readUInt32BE(24) + 1) >>> 0;
        this.window(pdu.bhs.readUInt32BE(28), pdu.bhs.readUInt32BE(32));
        // The rejected PDU's header rides in the data segment (§11.17). Only a rejected SCSI Command ends its
        // task: after a rejected Data-Out the target asks again (R2T) or answers the command itself.
        if (pdu.data.length < 48 || (pdu.data[0] & 0x3f) !== Opcode.SCSI_COMMAND) return;
        const task = this.tasks.get(pdu.data.readUInt32BE(16));
        if (task?.sent) this.fail(task, new InitiatorError('PROTOCOL_ERROR', `${this.targetName} rejected a command (reason 0x${pdu.bhs[2].toString(16)})`));
        return;
      }
      case Opcode.ASYNC_MESSAGE: {
        this.expStatSN = (pdu.bhs.readUInt32BE(24) + 1) >>> 0;
        this.window(pdu.bhs.readUInt32BE(28), pdu.bhs.readUInt32BE(32));
        const event = pdu.bhs[36];
        // 1: the target asks us to log out (§11.9.1): finish what runs, then log out. 2, 3: it is dropping us.
        if (event === 1) void this.close(Math.max(1, pdu.bhs.readUInt16BE(42)) * 1000);
        else if (event === 2 || event === 3) this.end(new InitiatorError('CONNECTION_CLOSED', `${this.targetName} is dropping the session (async event ${event})`));
        return;
      }
      default:
        throw new InitiatorError('PROTOCOL_ERROR', `${this.targetName} sent opcode 0x${op.toString(16)} in the full feature phase`);
    }
  }

  private window(expCmdSN: number, maxCmdSN: number): void {
    // §4.2.2.1: MaxCmdSN only moves forward; a MaxCmdSN below ExpCmdSN-1 is ignored.
    if (snLessThan((maxCmdSN + 1) >>> 0, expCmdSN)) return;
    if (snLessThan(this.maxCmdSN, maxCmdSN)) this.maxCmdSN = maxCmdSN;
    while (this.waiting.length > 0 && this.windowOpen()) this.send(this.waiting.shift()!);
  }

  private task(itt: number, what: string): Task {
    const t = this.tasks.get(itt);
    if (!t || !t.sent) throw new InitiatorError('PROTOCOL_ERROR', `${this.targetName} sent ${what} for ITT 0x${itt.toString(16)}, which is no command of ours in flight`);
    return t;
  }

  private onDataIn(pdu: RawPdu): void {
    const d = parseDataIn(pdu.bhs, pdu.data);
    this.window(d.expCmdSN, d.maxCmdSN);
    const task = this.task(d.itt, 'Data-In');
    // DataPDUInOrder=Yes and ErrorRecoveryLevel 0: every Data-In follows the last, with no gap (§4.2.2.3).
    if (d.dataSN !== task.expDataSN || d.bufferOffset !== task.received) {
      throw new InitiatorError('PROTOCOL_ERROR', `${this.targetName} sent Data-In out of order (DataSN ${d.dataSN}, offset ${d.bufferOffset}; expected ${task.expDataSN}, ${task.received})`);
    }
    if (d.data.length > 0) {
      if (task.dataIn === null || d.bufferOffset + d.data.length > task.dataIn.length) {
        throw new InitiatorError('PROTOCOL_ERROR', `${this.targetName} sent Data-In past the expected length (offset ${d.bufferOffset}, ${d.data.length} bytes, expected ${task.edtl})`);
      }
      d.data.copy(task.dataIn, d.bufferOffset);
    }
    task.expDataSN++;
    task.received += d.data.length;
    if (!d.statusPresent) return;
    this.expStatSN = (d.statSN + 1) >>> 0;
    const residual = this.residual(task, d.residualOverflow, d.residualUnderflow, d.residualCount);
    if (task.received !== task.edtl - Math.max(0, residual)) {
      throw new InitiatorError('PROTOCOL_ERROR', `${this.targetName} ended a read after ${task.received} of ${task.edtl - Math.max(0, residual)} bytes`);
    }
    this.finish(task, { status: d.status, data: this.received(task, residual), sense: null, residual });
  }

  /** ResidualCount as a signed number (negative: overflow); both flags, or an underflow past EDTL, are nonsense. */
  private residual(task: Task, overflow: boolean, underflow: boolean, count: number): number {
    if (overflow && underflow) throw new InitiatorError('PROTOCOL_ERROR', `${this.targetName} set both residual overflow and underflow`);
    if (underflow && count > task.edtl) throw new InitiatorError('PROTOCOL_ERROR', `${this.targetName} reported an underflow of ${count} bytes on a ${task.edtl}-byte command`);
    return overflow ? -count : underflow ? count : 0;
  }

  private onResponse(pdu: RawPdu): void {
    const r = parseScsiResponse(pdu.bhs, pdu.data);
    this.expStatSN = (r.statSN + 1) >>> 0;
    this.window(r.expCmdSN, r.maxCmdSN);
    const task = this.task(r.itt, 'a SCSI Response');
    if (r.response !== 0) {
      this.fail(task, new InitiatorError('COMMAND_FAILED', `${this.targetName} could not run the command (iSCSI response 0x${r.response.toString(16)})`));
      return;
    }
    const { sense } = splitSenseData(r.data);
    const residual = this.residual(task, r.residualOverflow, r.residualUnderflow, r.residualCount);
    this.finish(task, { status: r.status, data: this.received(task, residual), sense: sense.length > 0 ? Buffer.from(sense) : null, residual });
  }

  private onR2T(pdu: RawPdu): void {
    const r = parseR2T(pdu.bhs);
    this.window(r.expCmdSN, r.maxCmdSN);
    const task = this.task(r.itt, 'an R2T');
    const writeLength = task.request.dataOut?.length ?? 0;
    // At ErrorRecoveryLevel 0 R2Ts come in R2TSN order, each for data not yet asked for, never past the write (§11.8).
    if (r.ttt === RESERVED_TAG || r.r2tSN !== task.expR2TSN) {
      throw new InitiatorError('PROTOCOL_ERROR', `${this.targetName} sent an R2T out of order (R2TSN ${r.r2tSN}, expected ${task.expR2TSN}) or without a Target Transfer Tag`);
    }
    if (r.desiredDataTransferLength === 0 || r.desiredDataTransferLength > this.params.MaxBurstLength) {
      throw new InitiatorError('PROTOCOL_ERROR', `${this.targetName} asked for ${r.desiredDataTransferLength} bytes in one R2T (MaxBurstLength ${this.params.MaxBurstLength})`);
    }
    task.solicited += r.desiredDataTransferLength;
    if (r.bufferOffset < task.unsolicited || task.unsolicited + task.solicited > writeLength) {
      throw new InitiatorError('PROTOCOL_ERROR', `${this.targetName} asked for write data it already has or that does not exist (offset ${r.bufferOffset}, ${r.desiredDataTransferLength} bytes of ${writeLength})`);
    }
    task.expR2TSN++;
    this.sendDataOut(task, r.ttt, r.bufferOffset, r.desiredDataTransferLength);
  }

  private onNopIn(pdu: RawPdu): void {
    const n = parseNopIn(pdu.bhs, pdu.data);
    this.window(n.expCmdSN, n.maxCmdSN);
    if (n.ttt === RESERVED_TAG) return;
    // §11.18: the answer echoes the TTT and the LUN field as received; no ping data (it may exceed what the target takes).
    const bhs = encodeNopOut({ immediate: true, lun: 0, itt: RESERVED_TAG, ttt: n.ttt, cmdSN: this.cmdSN, expStatSN: this.expStatSN, data: EMPTY_BUFFER });
    pdu.bhs.copy(bhs, 8, 8, 16);
    this.channel.send(bhs);
  }

  private received(task: Task, residual: number): Buffer {
    if (task.dataIn === null) return EMPTY_BUFFER;
    return residual > 0 ? task.dataIn.subarray(0, Math.max(0, task.edtl - residual)) : task.dataIn;
  }

  private finish(task: Task, result: CommandResult): void {
    this.forget(task);
    if (task.timer) clearTimeout(task.timer);
    task.resolve(result);
  }

  private fail(task: Task, err: InitiatorError): void {
    this.forget(task);
    if (task.timer) clearTimeout(task.timer);
    task.reject(err);
  }

  private forget(task: Task): void {
    this.tasks.delete(task.itt);
    const i = this.waiting.indexOf(task);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  private end(err: InitiatorError): void {
    if (this.ended) return;
    this.ended = err;
    this.channel.close();
    this.onEnd(err);
  }

  private onEnd(err: InitiatorError): void {
    // The first reason wins: end(TIMEOUT) closes the channel, whose own "closed" must not replace it.
    this.ended ??= err;
    const why = this.ended;
    this.logoutWait?.resolve();
    this.waiting.length = 0;
    for (const task of [...this.tasks.values()]) this.fail(task, why);
  }
}

/** Why a command request cannot be sent, or null: checked before it takes an ITT or a CmdSN. */
function checkRequest(r: CommandRequest): string | null {
  if (!Number.isInteger(r.lun) || r.lun < 0 || r.lun > MAX_LUN) return `LUN ${r.lun} is outside 0..${MAX_LUN}`;
  if (!Buffer.isBuffer(r.cdb) || r.cdb.length < 1 || r.cdb.length > 260) return `a CDB is 1 to 260 bytes, not ${Buffer.isBuffer(r.cdb) ? r.cdb.length : typeof r.cdb}`;
  if (r.dataOut !== undefined && r.dataIn !== undefined) return 'a command with both Data-In and Data-Out (bidirectional) is not supported';
  if (r.dataIn !== undefined && (!Number.isInteger(r.dataIn) || r.dataIn < 0 || r.dataIn > MAX_EDTL)) return `dataIn ${r.dataIn} is not a byte count up to ${MAX_EDTL}`;
  if (r.dataOut !== undefined && r.dataOut.length > MAX_EDTL) return `dataOut of ${r.dataOut.length} bytes is over ${MAX_EDTL}`;
  if (r.timeoutMs !== undefined && !(r.timeoutMs > 0)) return `timeoutMs ${r.timeoutMs} must be positive`;
  return null;
}
