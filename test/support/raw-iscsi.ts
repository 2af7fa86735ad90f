// A small raw iSCSI client for tests, built on Spindle's own PDU codec: open a
// TCP connection, send arbitrary bytes or PDUs, log in with chosen keys, run
// SCSI commands one at a time, read target PDUs with a timeout and notice
// when the target closes. It does what it is told and checks nothing beyond
// what a test asks for — hostile tests use it to say things no initiator would.
import { connect as netConnect, type Socket } from 'node:net';
import { BhsOffset, EMPTY_BUFFER, readOpcode } from '../../src-main/iscsi/bhs';
import { Flag, ISCSI_VERSION, Opcode, RESERVED_TAG, Stage, opcodeName } from '../../src-main/iscsi/constants';
import { PduFramer } from '../../src-main/iscsi/framer';
import { encodeDataOut, encodeLoginRequest, encodeNopOut, encodeScsiCommand, parsePdu, type LoginRequestFields, type TargetPdu } from '../../src-main/iscsi/pdu';
import { decodeTextKeys, encodeTextKeys } from '../../src-main/iscsi/text-keys';
import { framePdu, type DigestSettings } from '../../src-main/iscsi/writer';

/** A PDU from the target: raw views plus the parsed object (null when the codec refuses it). */
export interface ReceivedPdu {
  opcode: number;
  name: string;
  bhs: Buffer;
  ahs: Buffer;
  data: Buffer;
  pdu: TargetPdu | null;
  parseError?: string;
}

export type ReadResult = { kind: 'pdu'; pdu: ReceivedPdu } | { kind: 'closed' } | { kind: 'timeout' };

export interface LoginOptions {
  initiatorName?: string;
  targetName?: string;
  sessionType?: 'Normal' | 'Discovery';
  /** Operational keys offered in the operational stage (after the defaults below, overriding them). */
  operational?: Array<[string, string]>;
  isid?: number;
  timeoutMs?: number;
}

export type LoginOutcome =
  | { ok: true; tsih: number; keys: Map<string, string> }
  | { ok: false; statusClass: number; statusDetail: number; stage: number };

export interface ScsiResult {
  status: number;
  /** Response field of a SCSI Response (0 when the status came with Data-In). */
  response: number;
  sense: Buffer;
  data: Buffer;
}

export const DEFAULT_INITIATOR = 'iqn.2026-11.net.spindle.test:raw-client';

/** Operational keys a friendly, fast initiator offers (SPEC §6). */
export const FAST_KEYS: Array<[string, string]> = [
  ['HeaderDigest', 'None'],
  ['DataDigest', 'None'],
  ['MaxRecvDataSegmentLength', '262144'],
  ['InitialR2T', 'No'],
  ['ImmediateData', 'Yes'],
  ['MaxBurstLength', '1048576'],
  ['FirstBurstLength', '262144'],
  ['MaxOutstandingR2T', '1'],
  ['DataPDUInOrder', 'Yes'],
  ['DataSequenceInOrder', 'Yes'],
  ['ErrorRecoveryLevel', '0'],
  ['MaxConnections', '1'],
];

let isidCounter = 0x400000000000 + (process.pid & 0xffff) * 0x10000;

export class RawIscsi {
  readonly socket: Socket;
  /** Set once the socket has closed (by either side). */
  closed = false;
  /** Set when the framer could not make sense of the target's bytes. */
  framingError: string | undefined;
  /** Digest settings for what we send (the framer follows the same ones for what we read). */
  readonly digests: DigestSettings = { headerDigest: false, dataDigest: false };
  cmdSN = 0;
  expStatSN = 0;
  maxCmdSN = 0;
  /** Keys the target answered during login (last value wins). */
  keys = new Map<string, string>();
  /** PDUs the command loop did not expect (Reject, Async Message, stray Data-In...). */
  readonly unexpected: ReceivedPdu[] = [];
  /** When set, the first `recordLimit` bytes written are kept here (to print a reproduction). */
  recorded: Buffer[] | null = null;
  recordLimit = 4096;
  private recordedBytes = 0;

  private readonly framer: PduFramer;
  private readonly queue: ReceivedPdu[] = [];
  private wake: (() => void) | null = null;
  private itt = 0x100;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.framer = new PduFramer({
      onPdu: (raw) => {
        const op = readOpcode(raw.bhs);
        let pdu: TargetPdu | null = null;
        let parseError: string | undefined;
        try {
          pdu = parsePdu(raw.bhs, raw.data, raw.ahs) as TargetPdu;
        } catch (err) {
          parseError = (err as Error).message;
        }
        // The framer hands out views of socket chunks; copy so nothing aliases later reads.
        const bhs = Buffer.from(raw.bhs);
        this.queue.push({ opcode: op, name: opcodeName(op), bhs, ahs: Buffer.from(raw.ahs), data: Buffer.from(raw.data), pdu, ...(parseError ? { parseError } : {}) });
        this.poke();
      },
      onError: (err) => {
        this.framingError = err.message;
        this.socket.destroy();
      },
      maxRecvDataSegmentLength: 0xffffff,
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        this.framer.push(chunk);
      } catch (err) {
        this.framingError = (err as Error).message;
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.poke();
    });
  }

  static connect(host: string, port: number, timeoutMs = 5000): Promise<RawIscsi> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${host}:${port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new RawIscsi(socket));
      });
    });
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  nextItt(): number {
    this.itt = (this.itt + 1) >>> 0;
    if (this.itt === RESERVED_TAG) this.itt = 1;
    return this.itt;
  }

  // ---------------------------------------------------------------------------
  // Output
  // ---------------------------------------------------------------------------

  /** Write raw bytes. Errors (the target already closed) are ignored: the test watches `closed`. */
  write(bytes: Buffer): boolean {
    if (this.socket.destroyed || this.socket.writableEnded) return false;
    if (this.recorded !== null && this.recordedBytes < this.recordLimit) {
      const keep = bytes.subarray(0, this.recordLimit - this.recordedBytes);
      this.recorded.push(Buffer.from(keep));
      this.recordedBytes += keep.length;
    }
    return this.socket.write(bytes);
  }

  /** Write one PDU, framed with padding and the current digests. */
  send(bhs: Buffer, data: Buffer = EMPTY_BUFFER, ahs: Buffer = EMPTY_BUFFER): boolean {
    return this.write(Buffer.concat(framePdu(bhs, data, ahs, this.digests)));
  }

  /** Resolves once everything written so far has left for the kernel (or the socket died). */
  flush(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || this.socket.writableEnded) return resolve();
      this.socket.write(EMPTY_BUFFER, () => resolve());
    });
  }

  /** Half-close: send FIN, keep reading. */
  end(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  // ---------------------------------------------------------------------------
  // Input
  // ---------------------------------------------------------------------------

  /** The next PDU from the target, or 'closed' (nothing queued and the socket is gone), or 'timeout'. */
  async read(timeoutMs: number): Promise<ReadResult> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const next = this.queue.shift();
      if (next !== undefined) return { kind: 'pdu', pdu: next };
      if (this.closed) return { kind: 'closed' };
      const left = deadline - Date.now();
      if (left <= 0) return { kind: 'timeout' };
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          if (this.wake === done) this.wake = null;
          resolve();
        }, left);
        const done = (): void => {
          clearTimeout(timer);
          resolve();
        };
        this.wake = done;
      });
    }
  }

  /** Put a PDU back at the head of the queue (a helper read it, the caller should see it). */
  unread(p: ReceivedPdu): void {
    this.queue.unshift(p);
  }

  /** Wait until the target closes the connection (true) or `timeoutMs` passes (false); PDUs meanwhile are kept. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const seen: ReceivedPdu[] = [];
    for (;;) {
      const r = await this.read(deadline - Date.now());
      if (r.kind === 'closed') break;
      if (r.kind === 'timeout') break;
      seen.push(r.pdu);
    }
    this.queue.unshift(...seen);
    return this.closed;
  }

  /**
   * The first of: a PDU, the close, or the timeout — the answer to a hostile
   * input. Skips NOP-In pings (answering them) so keepalive is not mistaken for an answer.
   */
  async answer(timeoutMs: number): Promise<ReadResult> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.read(deadline - Date.now());
      if (r.kind === 'pdu' && this.answerPing(r.pdu)) continue;
      return r;
    }
  }

  /** Reply to a NOP-In that asks for one (TTT ≠ 0xffffffff). Returns true if `p` was such a ping. */
  answerPing(p: ReceivedPdu): boolean {
    if (p.opcode !== Opcode.NOP_IN) return false;
    const ttt = p.bhs.readUInt32BE(BhsOffset.TTT);
    const itt = p.bhs.readUInt32BE(BhsOffset.ITT);
    if (itt !== RESERVED_TAG) return false;
    if (ttt !== RESERVED_TAG) {
      const hdr = encodeNopOut({ immediate: true, lun: 0, itt: RESERVED_TAG, ttt, cmdSN: this.cmdSN, expStatSN: this.expStatSN, data: EMPTY_BUFFER });
      this.send(hdr);
    }
    return true;
  }

  /** Track StatSN / MaxCmdSN from a target PDU that carries them. */
  private track(p: ReceivedPdu): void {
    const op = p.opcode;
    const statusCarrying =
      op === Opcode.SCSI_RESPONSE ||
      op === Opcode.TASK_MGMT_RESPONSE ||
      op === Opcode.LOGIN_RESPONSE ||
      op === Opcode.TEXT_RESPONSE ||
      op === Opcode.LOGOUT_RESPONSE ||
      op === Opcode.REJECT ||
      op === Opcode.ASYNC_MESSAGE ||
      (op === Opcode.NOP_IN && p.bhs.readUInt32BE(BhsOffset.ITT) !== RESERVED_TAG) ||
      (op === Opcode.SCSI_DATA_IN && (p.bhs[1] & Flag.S) !== 0);
    if (statusCarrying) this.expStatSN = (p.bhs.readUInt32BE(BhsOffset.STAT_SN) + 1) >>> 0;
    if (op !== Opcode.LOGIN_RESPONSE || p.bhs[BhsOffset.STATUS_CLASS] === 0) {
      const max = p.bhs.readUInt32BE(BhsOffset.MAX_CMD_SN);
      if (op !== Opcode.REJECT || max !== 0) this.maxCmdSN = max;
    }
  }

  // ---------------------------------------------------------------------------
  // Login
  // ---------------------------------------------------------------------------

  /** A Login Request BHS; mutate it before send() to say what no encoder would. */
  loginBhs(fields: Partial<LoginRequestFields> & { data?: Buffer }): Buffer {
    return encodeLoginRequest({
      transit: false,
      continue: false,
      csg: Stage.SECURITY_NEGOTIATION,
      nsg: 0,
      versionMax: ISCSI_VERSION,
      versionMin: ISCSI_VERSION,
      isid: 0x400000000001,
      tsih: 0,
      itt: 0,
      cid: 0,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      data: EMPTY_BUFFER,
      ...fields,
    });
  }

  /**
   * Log in: security stage (AuthMethod=None) → operational stage with the
   * chosen keys → Full Feature Phase. Follows the target's continued (C=1)
   * responses. Throws if the target closes or goes quiet.
   */
  async login(opts: LoginOptions = {}): Promise<LoginOutcome> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const isid = opts.isid ?? isidCounter++;
    const itt = this.nextItt();
    const sessionType = opts.sessionType ?? 'Normal';
    const first: Array<[string, string]> = [
      ['InitiatorName', opts.initiatorName ?? DEFAULT_INITIATOR],
      ['SessionType', sessionType],
      ...(opts.targetName !== undefined ? [['TargetName', opts.targetName] as [string, string]] : []),
      ['AuthMethod', 'None'],
    ];
    const exchange = async (csg: number, nsg: number, pairs: Array<[string, string]>): Promise<{ keys: Array<[string, string]>; rsp: Buffer; tsih: number } | LoginOutcome> => {
      let text = encodeTextKeys(pairs);
      const got: Buffer[] = [];
      for (;;) {
        this.send(this.loginBhs({ transit: true, csg, nsg, isid, itt, cmdSN: this.cmdSN, expStatSN: this.expStatSN, data: text }), text);
        text = EMPTY_BUFFER;
        const r = await this.read(timeoutMs);
        if (r.kind !== 'pdu') throw new Error(`login: target ${r.kind === 'closed' ? 'closed the connection' : 'did not answer'} in stage ${csg}`);
        const p = r.pdu;
        if (p.opcode !== Opcode.LOGIN_RESPONSE) throw new Error(`login: got ${p.name} instead of a Login Response`);
        this.track(p);
        const statusClass = p.bhs[BhsOffset.STATUS_CLASS];
        if (statusClass !== 0) return { ok: false, statusClass, statusDetail: p.bhs[BhsOffset.STATUS_DETAIL], stage: csg };
        got.push(p.data);
        const cont = (p.bhs[1] & Flag.C) !== 0;
        const transit = (p.bhs[1] & Flag.T) !== 0;
        if (cont || !transit) continue; // fetch the rest / let the target transit on our next (empty) request
        const keys = got.length > 0 ? decodeTextKeys(Buffer.concat(got)) : [];
        return { keys, rsp: p.bhs, tsih: p.bhs.readUInt16BE(BhsOffset.TSIH) };
      }
    };
    this.cmdSN = 1;
    const sec = await exchange(Stage.SECURITY_NEGOTIATION, Stage.LOGIN_OPERATIONAL_NEGOTIATION, first);
    if ('ok' in sec) return sec;
    for (const [k, v] of sec.keys) this.keys.set(k, v);
    const offered = new Map<string, string>(sessionType === 'Discovery' ? [['HeaderDigest', 'None'], ['DataDigest', 'None'], ['MaxRecvDataSegmentLength', '262144']] : FAST_KEYS);
    for (const [k, v] of opts.operational ?? []) offered.set(k, v);
    const op = await exchange(Stage.LOGIN_OPERATIONAL_NEGOTIATION, Stage.FULL_FEATURE_PHASE, [...offered]);
    if ('ok' in op) return op;
    for (const [k, v] of op.keys) this.keys.set(k, v);
    this.cmdSN = op.rsp.readUInt32BE(BhsOffset.EXP_CMD_SN);
    this.digests.headerDigest = this.keys.get('HeaderDigest') === 'CRC32C';
    this.digests.dataDigest = this.keys.get('DataDigest') === 'CRC32C';
    this.framer.setDigests(this.digests.headerDigest, this.digests.dataDigest);
    return { ok: true, tsih: op.tsih, keys: this.keys };
  }

  /** A number the target answered for `key` (or `fallback`). */
  param(key: string, fallback: number): number {
    const v = this.keys.get(key);
    return v === undefined || !/^\d+$/.test(v) ? fallback : Number(v);
  }

  // ---------------------------------------------------------------------------
  // Full Feature Phase
  // ---------------------------------------------------------------------------

  /** Immediate NOP-Out with a fresh ITT; true when the matching NOP-In comes back in time. */
  async ping(timeoutMs: number): Promise<boolean> {
    const itt = this.nextItt();
    this.send(encodeNopOut({ immediate: true, lun: 0, itt, ttt: RESERVED_TAG, cmdSN: this.cmdSN, expStatSN: this.expStatSN, data: EMPTY_BUFFER }));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.read(deadline - Date.now());
      if (r.kind !== 'pdu') return false;
      this.track(r.pdu);
      if (this.answerPing(r.pdu)) continue;
      if (r.pdu.opcode === Opcode.NOP_IN && r.pdu.bhs.readUInt32BE(BhsOffset.ITT) === itt) return true;
    }
  }

  /**
   * One SCSI command, start to finish: immediate and unsolicited data as
   * negotiated, Data-Out for each R2T, Data-In gathered by BufferOffset,
   * status from the SCSI Response or the last Data-In. Throws on timeout,
   * close, or a PDU that makes no sense for this command.
   */
  async command(opts: { lun: number; cdb: Buffer; readLength?: number; writeData?: Buffer; timeoutMs?: number }): Promise<ScsiResult> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const itt = this.nextItt();
    const out = opts.writeData ?? EMPTY_BUFFER;
    const readLength = opts.readLength ?? 0;
    const write = out.length > 0;
    const edtl = write ? out.length : readLength;
    const mrdsl = this.param('MaxRecvDataSegmentLength', 8192);
    const firstBurst = this.param('FirstBurstLength', 65536);
    const immediateOk = this.keys.get('ImmediateData') === 'Yes';
    const initialR2T = this.keys.get('InitialR2T') !== 'No';
    const unsolicited = write ? Math.min(out.length, firstBurst) : 0;
    const immediateLen = write && immediateOk ? Math.min(unsolicited, mrdsl) : 0;
    const moreUnsolicited = write && !initialR2T && immediateLen < unsolicited;
    const immediateData = out.subarray(0, immediateLen);
    const cmdSN = this.cmdSN;
    this.cmdSN = (this.cmdSN + 1) >>> 0;
    const hdr = encodeScsiCommand({
      immediate: false,
      final: !moreUnsolicited,
      read: readLength > 0,
      write,
      taskAttribute: 1,
      lun: opts.lun,
      itt,
      expectedDataTransferLength: edtl,
      cmdSN,
      expStatSN: this.expStatSN,
      cdb: opts.cdb,
      bidirectionalReadExpectedDataTransferLength: 0,
      data: immediateData,
    });
    this.send(hdr, immediateData);
    if (moreUnsolicited) this.sendData(itt, opts.lun, RESERVED_TAG, out, immediateLen, unsolicited - immediateLen, mrdsl);

    const data = Buffer.alloc(readLength);
    let got = 0;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.read(deadline - Date.now());
      if (r.kind === 'closed') throw new Error(`ITT 0x${itt.toString(16)}: the target closed the connection`);
      if (r.kind === 'timeout') throw new Error(`ITT 0x${itt.toString(16)}: no status within ${timeoutMs} ms`);
      const p = r.pdu;
      this.track(p);
      if (this.answerPing(p)) continue;
      const pItt = p.bhs.readUInt32BE(BhsOffset.ITT);
      if (pItt !== itt) {
        this.unexpected.push(p);
        if (p.opcode === Opcode.REJECT) throw new Error(`ITT 0x${itt.toString(16)}: target sent Reject reason 0x${p.bhs[2].toString(16)}`);
        continue;
      }
      if (p.opcode === Opcode.R2T) {
        const offset = p.bhs.readUInt32BE(BhsOffset.BUFFER_OFFSET);
        const length = p.bhs.readUInt32BE(BhsOffset.DESIRED_DATA_TRANSFER_LENGTH);
        const ttt = p.bhs.readUInt32BE(BhsOffset.TTT);
        if (offset + length > out.length) throw new Error(`R2T for ${offset}+${length} beyond the ${out.length}-byte write`);
        this.sendData(itt, opts.lun, ttt, out, offset, length, mrdsl);
        continue;
      }
      if (p.opcode === Opcode.SCSI_DATA_IN) {
        const offset = p.bhs.readUInt32BE(BhsOffset.BUFFER_OFFSET);
        if (offset + p.data.length > readLength) throw new Error(`Data-In ${offset}+${p.data.length} beyond the ${readLength}-byte read`);
        p.data.copy(data, offset);
        got += p.data.length;
        if ((p.bhs[1] & Flag.S) !== 0) return { status: p.bhs[3], response: 0, sense: EMPTY_BUFFER, data: data.subarray(0, got) };
        continue;
      }
      if (p.opcode === Opcode.SCSI_RESPONSE) {
        const senseLen = p.data.length >= 2 ? p.data.readUInt16BE(0) : 0;
        return { status: p.bhs[3], response: p.bhs[2], sense: p.data.subarray(2, 2 + senseLen), data: data.subarray(0, got) };
      }
      throw new Error(`ITT 0x${itt.toString(16)}: unexpected ${p.name}`);
    }
  }

  /** Data-Out PDUs for [offset, offset+length) of `buf`, at most `segment` bytes each, DataSN from 0, F on the last. */
  sendData(itt: number, lun: number, ttt: number, buf: Buffer, offset: number, length: number, segment: number): void {
    let dataSN = 0;
    for (let off = offset; off < offset + length; off += segment) {
      const n = Math.min(segment, offset + length - off);
      const piece = buf.subarray(off, off + n);
      const hdr = encodeDataOut({ final: off + n === offset + length, lun, itt, ttt, expStatSN: this.expStatSN, dataSN: dataSN++, bufferOffset: off, data: piece });
      this.send(hdr, piece);
    }
  }
}
