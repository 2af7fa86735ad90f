/**
 * One TCP connection to a target, seen as a stream of PDUs: the initiator's
 * counterpart of the target's Connection, without its Full Feature Phase
 * machinery. PDUs are framed as they arrive (the shared PduFramer) and read
 * with next(); every wait is bounded, and a closed or misbehaving peer ends
 * every wait with an InitiatorError.
 */
import net from 'node:net';
import { EMPTY_BUFFER } from '../iscsi/bhs';
import { Opcode } from '../iscsi/constants';
import { PduFramer, type RawPdu } from '../iscsi/framer';
import { PduWriter } from '../iscsi/writer';
import { InitiatorError } from './errors';

/** MaxRecvDataSegmentLength in effect during login (RFC 7143 §13.12: 8192 until negotiated). */
export const LOGIN_MAX_RECV_DATA_SEGMENT_LENGTH = 8192;
/** PDUs received but not yet read before the peer counts as flooding us. */
const MAX_QUEUED_PDUS = 64;

export interface ConnectOptions {
  readonly host: string;
  readonly port: number;
  /** Milliseconds for the TCP connection to come up. */
  readonly timeoutMs: number;
}

export class PduChannel {
  private readonly framer: PduFramer;
  private readonly writer: PduWriter;
  private readonly queue: RawPdu[] = [];
  private waiter: { resolve: (pdu: RawPdu) => void; reject: (err: InitiatorError) => void; timer: NodeJS.Timeout } | null = null;
  private failure: InitiatorError | null = null;
  /** Set by listen(): PDUs go straight here instead of the queue. */
  private listener: { onPdu: (pdu: RawPdu) => void; onEnd: (err: InitiatorError) => void } | null = null;
  /** Date.now() past which every wait fails (see setDeadline); what for, for the message. */
  private deadline = Infinity;
  private deadlineFor = '';

  private constructor(
    private readonly socket: net.Socket,
    /** HOST:PORT, for messages. */
    readonly portal: string,
  ) {
    this.framer = new PduFramer({
      onPdu: (pdu) => this.onPdu(pdu),
      onError: (err) => this.fail(new InitiatorError('PROTOCOL_ERROR', `${portal} sent a malformed PDU: ${err.message}`)),
      maxRecvDataSegmentLength: LOGIN_MAX_RECV_DATA_SEGMENT_LENGTH,
      // PDUs are kept until read: never hand out views of socket chunks Node may reuse.
      allocate: (size) => Buffer.allocUnsafe(size),
    });
    this.writer = new PduWriter(socket);
    let first = true;
    socket.on('data', (chunk: Buffer) => {
      if (first && chunk.length > 0) {
        first = false;
        // A target speaks first only to answer a Login Request (or reject it): anything else is not iSCSI —
        // typically a web server or SSH on the port asked. Say so now rather than wait for a length that lies.
        const op = chunk[0] & 0x3f;
        if (op !== Opcode.LOGIN_RESPONSE && op !== Opcode.REJECT) {
          this.fail(new InitiatorError('PROTOCOL_ERROR', `${portal} is not an iSCSI target: it answered ${preview(chunk)}`));
          return;
        }
      }
      try {
        // The framer may deliver views of `chunk`; 'data' chunks are never reused by Node.
        this.framer.push(chunk);
      } catch (err) {
        this.fail(new InitiatorError('PROTOCOL_ERROR', `${portal}: ${(err as Error).message}`));
      }
    });
    socket.on('error', (err) => this.fail(new InitiatorError('CONNECTION_CLOSED', `the connection to ${portal} failed: ${err.message}`)));
    socket.on('close', () => this.fail(new InitiatorError('CONNECTION_CLOSED', `${portal} closed the connection`)));
  }

  /** Opens a TCP connection to the portal. Rejects with CONNECT_FAILED or TIMEOUT. */
  static connect(options: ConnectOptions): Promise<PduChannel> {
    const portal = options.host.includes(':') ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: options.host, port: options.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new InitiatorError('TIMEOUT', `${portal} did not accept a connection within ${options.timeoutMs} ms — check the address and that nothing blocks the port`));
      }, options.timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.setNoDelay(true);
        resolve(new PduChannel(socket, portal));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        const why =
          err.code === 'ECONNREFUSED'
            ? 'nothing listens there — is the target running, and is this its port (3260 by default)?'
            : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN'
              ? 'the host name does not resolve'
              : err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH'
                ? 'the host is not reachable from here'
                : err.message;
        reject(new InitiatorError('CONNECT_FAILED', `could not connect to ${portal}: ${why}`));
      });
    });
  }

  /** Sends one PDU (header already encoded with the right DataSegmentLength and TotalAHSLength). */
  send(bhs: Buffer, data: Buffer = EMPTY_BUFFER, ahs: Buffer = EMPTY_BUFFER): void {
    if (this.failure !== null) throw this.failure;
    this.writer.write(bhs, data, ahs);
  }

  /**
   * Bounds the whole exchange, not just each wait: a target that keeps
   * answering but never finishes (endless continuations, pings) is cut off
   * at `Date.now() + ms`.
   */
  setDeadline(ms: number, what: string): void {
    this.deadline = Date.now() + ms;
    this.deadlineFor = `${what} did not finish within ${ms} ms`;
  }

  /** The next PDU from the target; rejects with TIMEOUT after `timeoutMs` (or at the deadline), or with why the connection ended. */
  next(timeoutMs: number, waitingFor: string): Promise<RawPdu> {
    if (Date.now() >= this.deadline) return Promise.reject(this.timedOut(`${this.portal}: ${this.deadlineFor}`));
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.waiter !== null) return Promise.reject(new InitiatorError('PROTOCOL_ERROR', 'internal: two reads wait on one connection'));
    const left = this.deadline - Date.now();
    const wait = Math.min(timeoutMs, left);
    const message = wait < timeoutMs ? `${this.portal}: ${this.deadlineFor}` : `${this.portal} did not send ${waitingFor} within ${timeoutMs} ms`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(this.timedOut(message));
      }, wait);
      this.waiter = { resolve, reject, timer };
    });
  }

  private timedOut(message: string): InitiatorError {
    const err = new InitiatorError('TIMEOUT', message);
    this.fail(err);
    return err;
  }

  /** Takes the negotiated limits for what the target may send from now on. */
  setReceiveLimits(maxRecvDataSegmentLength: number, headerDigest: boolean, dataDigest: boolean): void {
    this.framer.maxRecvDataSegmentLength = maxRecvDataSegmentLength;
    this.framer.setDigests(headerDigest, dataDigest);
    this.writer.setDigests(headerDigest, dataDigest);
  }

  close(): void {
    this.fail(new InitiatorError('CONNECTION_CLOSED', `the connection to ${this.portal} was closed`));
  }

  /**
   * From now on every PDU goes to `onPdu` as it arrives (any already queued
   * first), with no promise per PDU; `onEnd` is told once why the connection
   * ended. A throw from `onPdu` ends the connection as a protocol error.
   */
  listen(onPdu: (pdu: RawPdu) => void, onEnd: (err: InitiatorError) => void): void {
    this.listener = { onPdu, onEnd };
    while (this.queue.length > 0 && this.failure === null) this.deliver(this.queue.shift()!);
    if (this.failure !== null) onEnd(this.failure);
  }

  private deliver(pdu: RawPdu): void {
    try {
      this.listener!.onPdu(pdu);
    } catch (err) {
      this.fail(err instanceof InitiatorError ? err : new InitiatorError('PROTOCOL_ERROR', `${this.portal}: ${(err as Error).message}`));
    }
  }

  private onPdu(pdu: RawPdu): void {
    if (this.listener !== null) {
      this.deliver(pdu);
      return;
    }
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      clearTimeout(w.timer);
      w.resolve(pdu);
      return;
    }
    if (this.queue.length >= MAX_QUEUED_PDUS) {
      this.fail(new InitiatorError('PROTOCOL_ERROR', `${this.portal} sent ${MAX_QUEUED_PDUS} PDUs nobody asked for`));
      return;
    }
    this.queue.push(pdu);
  }

  private fail(err: InitiatorError): void {
    if (this.failure !== null) return;
    this.failure = err;
    this.framer.destroy();
    this.socket.destroy();
    this.listener?.onEnd(err);
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      clearTimeout(w.timer);
      w.reject(err);
    }
  }
}

/** The start of what a peer sent, for a message: printable text quoted, else hex. */
function preview(chunk: Buffer): string {
  const head = chunk.subarray(0, 32);
  const text = head.toString('latin1');
  if (/^[\x20-\x7e\r\n\t]+$/.test(text)) return `"${text.replace(/[\r\n\t]+/g, ' ').trim()}${chunk.length > 32 ? '…' : ''}"`;
  return `bytes ${head.subarray(0, 16).toString('hex')}${chunk.length > 16 ? '…' : ''}`;
}
