/**
 * One TCP connection of the target (RFC 7143 §8 connection states, target
 * side): the login phase (login.ts), then the Full Feature Phase —
 * CmdSN-ordered delivery of commands, SCSI tasks (scsi-task.ts), task
 * management (task-management.ts), Text (text.ts), NOP-Out/NOP-In in both
 * directions, Logout, Reject, Async Message — until logout or a drop.
 *
 * Robustness (SPEC §7): every PDU handler runs guarded; a PDU the codec
 * cannot parse is answered with Reject and the connection goes on; framing
 * faults and protocol violations (ErrorRecoveryLevel 0 has no other
 * recovery) drop this connection only. Nothing here throws into the
 * socket's event handlers.
 */
import type { Socket } from 'node:net';
import { readITT, readImmediate, readOpcode, readCmdSN, EMPTY_BUFFER } from '../iscsi/bhs';
import { AsyncEvent, Opcode, RejectReason, RESERVED_TAG, opcodeName } from '../iscsi/constants';
import { PduFormatError, type FramingError } from '../iscsi/errors';
import { PduFramer, type RawPdu } from '../iscsi/framer';
import { encodeAsyncMessage } from '../iscsi/async-message';
import { encodeLogoutResponse, parseLogoutRequest } from '../iscsi/logout';
import type { TargetNegotiation } from '../iscsi/negotiation';
import { encodeNopIn, parseNopOut } from '../iscsi/nop';
import { encodeReject } from '../iscsi/reject';
import { PduWriter } from '../iscsi/writer';
import type { EngineContext } from './engine-types';
import { LoginPhase, type LoginResult } from './login';
import { decideLogout } from './logout';
import { Session } from './session';
import { formatPortal } from './portal';
import { handleDataOut, handleScsiCommand, placeDataOut, type TaskHost } from './scsi-task';
import type { IoStats } from './stats';
import { handleTmf } from './task-management';
import { TextExchange } from './text';

type State = 'login' | 'ffp' | 'closing' | 'closed';

const LOGIN_MRDSL = 8192;

/**
 * Data-In one connection may hold — reads running plus answers the peer has
 * not taken off the socket yet. A peer that stops reading stalls its own
 * reads at this point instead of growing the target's memory.
 */
export const DATA_IN_BUDGET = 64 << 20;

const formatAddress = (host: string | undefined, port: number | undefined) => formatPortal(host ?? '?', port ?? 0);

/** Memory a logged-in connection's socket is read into (see readIntoSlabs): one read takes at most what is left of a slab. */
export const READ_SLAB_BYTES = 256 << 10;
/**
 * The slab of a connection still in login: login PDUs are small, and
 * connections that never get further (port scans, floods of half logins,
 * idle sockets) should not hold a large slab each.
 */
export const LOGIN_READ_SLAB_BYTES = 16 << 10;

const slabReadsOn = process.env.SPINDLE_SOCKET_READS !== 'stream';

type SocketInternals = Socket & { _handle?: { useUserBuffer?: (buf: Uint8Array) => void } | null } & Record<symbol, unknown>;

/**
 * Read `socket` into large reusable slabs instead of the fresh 64 KiB buffer
 * Node allocates for every read of a server socket (and leaves to the garbage
 * collector): the same mechanism as net.Socket's `onread` option, which
 * Node offers only for sockets it creates itself. `onChunk` gets each read
 * as a view that is valid only during the call, and returns whether it kept
 * a reference to any of it (e.g. a PDU delivered in place): then the next
 * read goes to fresh memory after it, else the same memory is read into
 * again — so a stream of large writes, whose data is copied into the
 * commands' buffers as it arrives, allocates nothing per read.
 *
 * `slabBytes` is asked after every read how large the slab should be; a
 * slab of another size is replaced (so a connection can start small and
 * grow once it is logged in). A slab with less than a quarter of it left is
 * replaced too.
 *
 * Returns false (and changes nothing) when this Node does not have the
 * internals it relies on, or the socket already has data or readers; the
 * caller then reads with 'data' events. pause()/resume() and 'end'/'close'
 * work as usual (Node's own onread path).
 */
export function readIntoSlabs(socket: Socket, onChunk: (chunk: Buffer) => boolean, slabBytes: () => number = () => READ_SLAB_BYTES): boolean {
  const s = socket as SocketInternals;
  const handle = s._handle;
  if (handle == null || typeof handle.useUserBuffer !== 'function') return false;
  let kBuffer: symbol | undefined;
  let kBufferCb: symbol | undefined;
  let kBufferGen: symbol | undefined;
  for (const sym of Object.getOwnPropertySymbols(s)) {
    if (sym.description === 'kBuffer') kBuffer = sym;
    else if (sym.description === 'kBufferCb') kBufferCb = sym;
    else if (sym.description === 'kBufferGen') kBufferGen = sym;
  }
  if (kBuffer === undefined || kBufferCb === undefined || kBufferGen === undefined) return false;
  if (s[kBuffer] != null || s[kBufferCb] != null || s[kBufferGen] != null) return false;
  if (socket.readableLength > 0 || socket.listenerCount('data') > 0 || socket.destroyed) return false;
  let slab = Buffer.allocUnsafeSlow(slabBytes());
  let used = 0;
  let next = slab;
  s[kBufferCb] = (nread: number, buf: Buffer): void => {
    const kept = onChunk(buf.subarray(0, nread));
    // Kept: the next read goes after it (8-byte aligned), or into a fresh slab.
    if (kept) used += (nread + 7) & ~7;
    const want = slabBytes();
    if (slab.length !== want || slab.length - used < want >> 2) {
      slab = Buffer.allocUnsafeSlow(want);
      used = 0;
      next = slab;
    } else if (kept) {
      next = slab.subarray(used);
    }
  };
  // Node asks for the buffer of the next read after each callback.
  s[kBufferGen] = (): Buffer => next;
  s[kBuffer] = next;
  try {
    handle.useUserBuffer(next);
  } catch {
    s[kBuffer] = null;
    s[kBufferCb] = null;
    s[kBufferGen] = null;
    return false;
  }
  return true;
}

export class Connection implements TaskHost {
  readonly writer: PduWriter;
  readonly hdr = Buffer.allocUnsafe(48);
  readonly address: string;
  readonly localAddress: string;
  readonly localPort: number;
  session!: Session;
  negotiation!: TargetNegotiation;
  initiatorMrdsl = LOGIN_MRDSL;
  headerDigest = false;
  dataDigest = false;

  private state: State = 'login';
  private readonly framer: PduFramer;
  private login: LoginPhase | null;
  private text: TextExchange | null = null;
  private statSN = 1;
  private ttt = 0;
  private cid = 0;
  private lastRx = Date.now();
  private pingTtt = 0;
  private pingSentAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  private paused = false;
  private outputCorked = false;
  private dataInReserved = 0;
  private readonly deferred: Array<() => void> = [];
  private drainingDeferred = false;
  /** Send what the current turn has written so far (see the output batching in the constructor). */
  readonly flushOutput: () => void;

  constructor(
    private readonly socket: Socket,
    readonly ctx: EngineContext,
    /** Called once when the connection is gone. */
    private readonly onGone: (conn: Connection) => void,
  ) {
    this.address = formatAddress(socket.remoteAddress, socket.remotePort);
    this.localAddress = socket.localAddress ?? '';
    this.localPort = socket.localPort ?? 0;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    // Output batching: the first PDU written in an event-loop turn corks the socket and an
    // immediate uncorks it, so every answer produced in that turn (all the reads whose I/O
    // completed in one poll phase, say) leaves in one writev. flushOutput() sends at once
    // when nothing else is running (queue depth 1 pays no batching delay).
    // When flushOutput sends synchronously, the immediate is cancelled: a pending immediate
    // would make the event loop poll once more without blocking before it waits again.
    let immediate: NodeJS.Immediate | null = null;
    const uncork = (): void => {
      immediate = null;
      if (!this.outputCorked) return;
      this.outputCorked = false;
      socket.uncork();
    };
    this.flushOutput = (): void => {
      if (!this.outputCorked) return;
      this.outputCorked = false;
      if (immediate !== null) {
        clearImmediate(immediate);
        immediate = null;
      }
      socket.uncork();
    };
    this.writer = new PduWriter({
      cork: () => socket.cork(),
      uncork: () => socket.uncork(),
      write: (chunk, cb) => {
        if (!this.outputCorked) {
          this.outputCorked = true;
          socket.cork();
          immediate = setImmediate(uncork);
        }
        return socket.write(chunk, cb);
      },
    });
    this.framer = new PduFramer({
      onPdu: (pdu) => this.onPdu(pdu),
      onError: (err) => this.onFramingError(err),
      maxRecvDataSegmentLength: LOGIN_MRDSL,
      // Write data that spans socket reads is copied once, straight into its command's buffer.
      placeData: (bhs, length) => (this.state === 'ffp' ? placeDataOut(this, bhs, length) : null),
    });
    this.login = new LoginPhase(this, (result) => this.loginComplete(result));
    if (!slabReadsOn || !readIntoSlabs(socket, (chunk) => this.onChunk(chunk), () => (this.state === 'login' ? LOGIN_READ_SLAB_BYTES : READ_SLAB_BYTES))) socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      if (this.paused && this.state === 'ffp') {
        this.paused = false;
        socket.resume();
      }
      this.startDeferred();
    });
    socket.on('error', (err) => this.ctx.log('debug', `connection ${this.address}: ${err.message}`));
    socket.on('close', () => this.onSocketClosed());
    this.timer = setTimeout(() => {
      if (this.state === 'login') this.close(`login did not complete within ${ctx.loginTimeout} ms`);
    }, ctx.loginTimeout);
    this.timer.unref();
  }

  get closed(): boolean {
    return this.state === 'closing' || this.state === 'closed';
  }

  get inFullFeaturePhase(): boolean {
    return this.state === 'ffp';
  }

  // -------------------------------------------------------------------------
  // Sequence numbers and tags
  // -------------------------------------------------------------------------

  nextStatSN(): number {
    const sn = this.statSN;
    this.statSN = (sn + 1) >>> 0;
    return sn;
  }

  peekStatSN(): number {
    return this.statSN;
  }

  nextTtt(): number {
    this.ttt = (this.ttt + 1) & 0x7fffffff;
    if (this.ttt === 0) this.ttt = 1;
    return this.ttt;
  }

  reserveDataIn(bytes: number): boolean {
    const queued = this.socket.writableLength;
    if (!this.drainingDeferred && this.deferred.length > 0) return false; // first come, first served
    if (this.dataInReserved + queued + bytes > DATA_IN_BUDGET && this.dataInReserved + queued > 0) return false;
    this.dataInReserved += bytes;
    return true;
  }

  releaseDataIn(bytes: number): void {
    this.dataInReserved -= bytes;
    if (this.deferred.length > 0) setImmediate(() => this.startDeferred());
  }

  deferStart(start: () => void): void {
    // A deferred read that still does not fit goes back to the front of the line.
    if (this.drainingDeferred) this.deferred.unshift(start);
    else this.deferred.push(start);
  }

  private startDeferred(): void {
    // Each start reserves again (or defers itself again); stop at the first that cannot go.
    while (this.deferred.length > 0 && !this.closed) {
      const queued = this.socket.writableLength;
      if (this.dataInReserved + queued >= DATA_IN_BUDGET) return;
      const start = this.deferred.shift()!;
      const before = this.deferred.length;
      this.drainingDeferred = true;
      try {
        start();
      } catch (err) {
        this.pduFailedInternal(err);
        return;
      } finally {
        this.drainingDeferred = false;
      }
      if (this.deferred.length > before) return; // it did not fit after all
    }
  }

  internalError(err: unknown): void {
    this.pduFailedInternal(err);
  }

  private pduFailedInternal(err: unknown): void {
    this.log('error', `internal error, dropping the connection: ${(err as Error).stack ?? String(err)}`);
    this.close('internal error');
  }

  lunStats(lun: number): IoStats | undefined {
    return this.session.target?.lunStats.get(lun);
  }

  log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void {
    this.ctx.log(level, `${this.address}: ${message}`);
  }

  // -------------------------------------------------------------------------
  // Input
  // -------------------------------------------------------------------------

  /** A read into reused memory (readIntoSlabs): true when a PDU of it was handed on in place. */
  private onChunk(chunk: Buffer): boolean {
    if (this.closed) return false;
    const views = this.framer.chunkViews;
    this.onData(chunk);
    // After an internal error the framer may have stopped mid-PDU: keep the memory to be safe.
    return this.framer.chunkViews !== views || this.closed;
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    try {
      this.framer.push(chunk);
    } catch (err) {
      this.log('error', `internal error, dropping the connection: ${(err as Error).stack ?? String(err)}`);
      this.close('internal error');
      return;
    }
    if (!this.paused && this.socket.writableNeedDrain && this.state === 'ffp') {
      // Backpressure: stop reading (and so stop taking commands) until the answers drain.
      this.paused = true;
      this.socket.pause();
    }
  }

  private onFramingError(err: FramingError): void {
    if (err.fatal) {
      this.log('warn', `${err.message}; dropping the connection`);
      this.close(err.message);
      return;
    }
    // Data digest error: at ErrorRecoveryLevel 0 a lost Data-Out cannot be recovered.
    const bhs = (err as FramingError & { bhs?: Buffer }).bhs;
    if (bhs === undefined || readOpcode(bhs) === Opcode.SCSI_DATA_OUT || this.state !== 'ffp') {
      this.log('warn', `${err.message}; dropping the connection`);
      this.close(err.message);
      return;
    }
    this.log('warn', err.message);
    this.reject(RejectReason.DATA_DIGEST_ERROR, bhs);
  }

  private onPdu(raw: RawPdu): void {
    if (this.closed) return;
    this.lastRx = Date.now();
    const bhs = raw.bhs;
    const op = readOpcode(bhs);
    try {
      if (this.state === 'login') {
        if (op !== Opcode.LOGIN_REQUEST) {
          this.close(`${opcodeName(op)} PDU during login`);
          return;
        }
        this.login!.handle(bhs, raw.data);
        return;
      }
      switch (op) {
        case Opcode.SCSI_DATA_OUT:
          handleDataOut(this, raw);
          return;
        case Opcode.SCSI_COMMAND:
        case Opcode.NOP_OUT:
        case Opcode.TASK_MGMT_REQUEST:
        case Opcode.TEXT_REQUEST:
        case Opcode.LOGOUT_REQUEST:
          this.ordered(raw, op);
          return;
        case Opcode.SNACK_REQUEST:
          // ErrorRecoveryLevel 0: no SNACK support.
          this.reject(RejectReason.COMMAND_NOT_SUPPORTED, bhs);
          return;
        case Opcode.LOGIN_REQUEST:
          this.reject(RejectReason.PROTOCOL_ERROR, bhs);
          return;
        default:
          this.reject(RejectReason.COMMAND_NOT_SUPPORTED, bhs);
          return;
      }
    } catch (err) {
      this.pduFailed(err, bhs);
    }
  }

  private pduFailed(err: unknown, bhs: Buffer): void {
    if (err instanceof PduFormatError) {
      this.log('warn', `${opcodeName(readOpcode(bhs))}: ${err.message}`);
      this.reject(err.rejectReason, bhs);
      return;
    }
    this.log('error', `internal error on ${opcodeName(readOpcode(bhs))}, dropping the connection: ${(err as Error).stack ?? String(err)}`);
    this.close('internal error');
  }

  /** PDUs that carry a CmdSN: deliver in order, hold early ones, drop those outside the window. */
  private ordered(raw: RawPdu, op: number): void {
    const s = this.session;
    const bhs = raw.bhs;
    if (op === Opcode.NOP_OUT && readITT(bhs) === RESERVED_TAG) {
      // The answer to our NOP-In ping (or an initiator's no-reply ping): nothing to send.
      this.pingSentAt = 0;
      return;
    }
    const immediate = readImmediate(bhs);
    const cmdSN = readCmdSN(bhs);
    const verdict = s.window.classify(cmdSN, immediate);
    if (verdict === 'drop') {
      this.log('debug', `${opcodeName(op)} CmdSN ${cmdSN} outside the window ${s.window.expCmdSN}..${s.window.maxCmdSN}: ignored`);
      return;
    }
    if (verdict === 'later') {
      if (s.held.size < this.ctx.queueDepth && !s.held.has(cmdSN)) s.held.set(cmdSN, raw);
      return;
    }
    if (!immediate) s.window.advance();
    this.process(raw, op, immediate ? -1 : cmdSN);
    while (s.held.size > 0 && this.state === 'ffp') {
      const sn = s.window.expCmdSN;
      const next = s.held.get(sn);
      if (next === undefined) break;
      s.held.delete(sn);
      s.window.advance();
      try {
        this.process(next, readOpcode(next.bhs), sn);
      } catch (err) {
        this.pduFailed(err, next.bhs);
      }
    }
  }

  private process(raw: RawPdu, op: number, cmdSN: number): void {
    if (cmdSN >= 0 && this.session.discardCmdSNs.size > 0 && this.session.discardCmdSNs.delete(cmdSN)) return;
    switch (op) {
      case Opcode.SCSI_COMMAND:
        handleScsiCommand(this, raw);
        return;
      case Opcode.NOP_OUT:
        this.nopOut(raw);
        return;
      case Opcode.TASK_MGMT_REQUEST:
        handleTmf(this, raw.bhs);
        return;
      case Opcode.TEXT_REQUEST:
        this.text!.handle(raw.bhs, raw.data);
        return;
      case Opcode.LOGOUT_REQUEST:
        this.logout(raw.bhs);
        return;
    }
  }

  // -------------------------------------------------------------------------
  // Login
  // -------------------------------------------------------------------------

  private loginComplete(result: LoginResult): void {
    const ctx = this.ctx;
    const targetName = result.target?.iqn ?? '';
    // A TSIH first: with none free the login fails with 0x0302 Out of resources (§11.13.5)
    // before the final Login Response, and no old session is ended for it.
    const tsih = ctx.allocateTsih();
    if (tsih === null) {
      ctx.log('warn', 'no free TSIH: every one of the 65535 session handles is in use');
      result.refuse('OUT_OF_RESOURCES', 'no free TSIH: every one of the 65535 session handles is in use; close sessions and retry');
      return;
    }
    // Session reinstatement (§6.3.5): same initiator port and target, TSIH 0 → the old session ends now.
    const old = ctx.sessionByNexus(result.initiatorName, result.isid, targetName);
    if (old !== undefined) {
      this.log('info', `reinstating the session of ${result.initiatorName} (ISID ${result.isid.toString(16)}) on ${targetName || 'discovery'}`);
      old.close('session reinstatement');
    }
    const session = new Session(ctx, tsih, result.isid, result.initiatorName, result.target, result.params, result.cmdSN);
    session.initiatorAlias = result.initiatorAlias;
    session.connection = this;
    this.session = session;
    this.negotiation = result.negotiation;
    this.cid = result.cid;
    const p = result.params;
    this.initiatorMrdsl = p.MaxRecvDataSegmentLength.initiator;
    result.respond(tsih);
    // Digests and our MaxRecvDataSegmentLength apply from the next PDU on (§13.1, §13.12).
    this.headerDigest = p.HeaderDigest === 'CRC32C';
    this.dataDigest = p.DataDigest === 'CRC32C';
    this.framer.setDigests(this.headerDigest, this.dataDigest);
    this.framer.maxRecvDataSegmentLength = p.MaxRecvDataSegmentLength.target;
    this.writer.setDigests(this.headerDigest, this.dataDigest);
    this.state = 'ffp';
    this.login = null;
    this.text = new TextExchange(this);
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.startKeepalive();
    ctx.addSession(session);
  }

  // -------------------------------------------------------------------------
  // NOP, Logout, Reject, Async Message
  // -------------------------------------------------------------------------

  private nopOut(raw: RawPdu): void {
    const nop = parseNopOut(raw.bhs, raw.data);
    this.pingSentAt = 0;
    const s = this.session;
    const data = nop.data.length > this.initiatorMrdsl ? nop.data.subarray(0, this.initiatorMrdsl) : nop.data;
    const hdr = encodeNopIn(
      {
        lun: nop.lun < 0 ? 0 : nop.lun,
        itt: nop.itt,
        ttt: RESERVED_TAG,
        statSN: this.nextStatSN(),
        expCmdSN: s.window.expCmdSN,
        maxCmdSN: s.maxCmdSN(),
        data,
      },
      this.hdr,
    );
    this.writer.write(hdr, data);
  }

  private startKeepalive(): void {
    const interval = this.ctx.nopInterval;
    if (interval <= 0) return;
    const tick = Math.max(100, Math.min(interval, this.ctx.nopTimeout) / 2);
    this.timer = setInterval(() => this.keepalive(), tick);
    this.timer.unref();
  }

  private keepalive(): void {
    if (this.state !== 'ffp') return;
    const now = Date.now();
    if (this.pingSentAt !== 0) {
      if (this.lastRx >= this.pingSentAt) {
        this.pingSentAt = 0;
      } else if (now - this.pingSentAt >= this.ctx.nopTimeout) {
        this.log('warn', `no answer to NOP-In within ${this.ctx.nopTimeout} ms; dropping the connection`);
        this.close('NOP-In ping timeout');
        return;
      }
      return;
    }
    if (now - this.lastRx < this.ctx.nopInterval) return;
    this.pingSentAt = now;
    this.pingTtt = this.nextTtt();
    const s = this.session;
    try {
      const hdr = encodeNopIn(
        { lun: 0, itt: RESERVED_TAG, ttt: this.pingTtt, statSN: this.statSN, expCmdSN: s.window.expCmdSN, maxCmdSN: s.maxCmdSN(), data: EMPTY_BUFFER },
        this.hdr,
      );
      this.writer.write(hdr);
    } catch (err) {
      this.log('error', `NOP-In failed: ${(err as Error).message}`);
    }
  }

  private logout(bhs: Buffer): void {
    const req = parseLogoutRequest(bhs);
    const decision = decideLogout(req, this.cid);
    const s = this.session;
    const send = (): void => {
      if (this.closed) return;
      const hdr = encodeLogoutResponse(
        {
          response: decision.response,
          itt: req.itt,
          statSN: this.nextStatSN(),
          expCmdSN: s.window.expCmdSN,
          maxCmdSN: s.maxCmdSN(),
          time2Wait: 0,
          time2Retain: 0,
        },
        this.hdr,
      );
      this.writer.write(hdr);
      if (decision.close) this.close('logout');
    };
    if (decision.close) s.abortTasks(-1, send);
    else send();
  }

  /** Reject a PDU (§11.17): the connection and the session go on. */
  reject(reason: number, bhs: Buffer): void {
    if (this.closed) return;
    const s = this.state === 'ffp' ? this.session : null;
    const data = Buffer.from(bhs.subarray(0, 48));
    const hdr = encodeReject(
      {
        reason,
        statSN: this.nextStatSN(),
        expCmdSN: s?.window.expCmdSN ?? 0,
        maxCmdSN: s?.maxCmdSN() ?? 0,
        dataSN: 0,
        data,
      },
      this.hdr,
    );
    this.writer.write(hdr, data);
  }

  protocolError(message: string, bhs?: Buffer): void {
    this.log('warn', `protocol error: ${message}; dropping the connection (ErrorRecoveryLevel 0)`);
    if (bhs !== undefined) this.reject(RejectReason.PROTOCOL_ERROR, bhs);
    this.close(`protocol error: ${message}`);
  }

  /** Async Message event 1: the target asks the initiator to log out within `seconds`. */
  requestLogout(seconds: number): void {
    if (this.state !== 'ffp') return;
    const s = this.session;
    const hdr = encodeAsyncMessage(
      {
        lun: 0,
        statSN: this.nextStatSN(),
        expCmdSN: s.window.expCmdSN,
        maxCmdSN: s.maxCmdSN(),
        asyncEvent: AsyncEvent.LOGOUT_REQUESTED,
        asyncVCode: 0,
        parameter1: 0,
        parameter2: 0,
        parameter3: Math.max(0, Math.min(0xffff, Math.round(seconds))),
        data: EMPTY_BUFFER,
      },
      this.hdr,
    );
    this.writer.write(hdr);
  }

  // -------------------------------------------------------------------------
  // Closing
  // -------------------------------------------------------------------------

  /** End the connection: what is queued is still written, then FIN; the session ends now. */
  close(reason: string): void {
    if (this.closed) return;
    const wasFfp = this.state === 'ffp';
    this.state = 'closing';
    this.framer.destroy();
    if (this.timer !== null) {
      clearTimeout(this.timer);
      clearInterval(this.timer);
      this.timer = null;
    }
    if (wasFfp) this.session.finish(reason);
    this.socket.end();
    if (this.paused) this.socket.resume();
    // A peer that never reads must not keep the socket forever.
    this.killTimer = setTimeout(() => this.socket.destroy(), 5_000);
    this.killTimer.unref();
  }

  private onSocketClosed(): void {
    if (this.state === 'closed') return;
    if (this.state !== 'closing') this.close('connection closed by the initiator');
    this.state = 'closed';
    if (this.killTimer !== null) clearTimeout(this.killTimer);
    this.onGone(this);
  }

  /** Drop at once (engine shutdown after the grace period). */
  destroy(reason: string): void {
    this.close(reason);
    this.socket.destroy();
  }
}
