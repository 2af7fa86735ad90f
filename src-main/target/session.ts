/**
 * One iSCSI session on the target (RFC 7143 §4.1, §4.2.2): its identity
 * (initiator name, ISID, TSIH, target), the negotiated parameters, the
 * CmdSN window with in-order delivery, and the table of running tasks by
 * ITT. ErrorRecoveryLevel 0 and MaxConnections=1 (what Spindle negotiates):
 * a session has one connection and ends with it.
 */
import { formatIsid } from '../iscsi/login';
import type { RawPdu } from '../iscsi/framer';
import type { SessionParams } from '../iscsi/negotiation';
import { CmdSnWindow } from './data-plan';
import type { EngineContext, SessionInfo, SessionLike, TargetNode } from './engine-types';
import type { ItNexus } from './scsi/types';
import { IoStats } from './stats';
import type { Task } from './scsi-task';

/** What a session needs from its connection. */
export interface SessionConnection {
  readonly address: string;
  readonly localAddress: string;
  readonly headerDigest: boolean;
  readonly dataDigest: boolean;
  close(reason: string): void;
  requestLogout(seconds: number): void;
}

export class Session implements SessionLike {
  readonly since = new Date();
  readonly window: CmdSnWindow;
  /** Running tasks (SCSI commands, and TMFs waiting for them) by ITT. */
  readonly tasks = new Map<number, Task>();
  /** Non-immediate PDUs that arrived ahead of ExpCmdSN, by CmdSN. */
  readonly held = new Map<number, RawPdu>();
  /** CmdSNs an ABORT TASK named before they arrived: consumed without running. */
  readonly discardCmdSNs = new Set<number>();
  readonly stats = new IoStats();
  /** Bytes of write buffers waiting for Data-Out (see MAX_PENDING_WRITE_BYTES). */
  pendingWriteBytes = 0;
  readonly nexus: ItNexus | null;
  initiatorAlias: string | undefined;
  params: SessionParams;
  connection: SessionConnection | null = null;
  closed = false;

  constructor(
    private readonly ctx: EngineContext,
    readonly tsih: number,
    readonly isid: number,
    readonly initiatorName: string,
    readonly target: TargetNode | null,
    params: SessionParams,
    firstCmdSN: number,
  ) {
    this.params = params;
    this.window = new CmdSnWindow(firstCmdSN, ctx.queueDepth);
    if (target !== null) {
      const tpgt = target.tpgt.toString(16).padStart(4, '0');
      const initiatorPortName = `${initiatorName},i,0x${formatIsid(isid)}`;
      const targetPortName = `${target.iqn},t,0x${tpgt}`;
      this.nexus = { initiatorPortName, targetPortName, relativeTargetPortId: target.tpgt, key: `${initiatorPortName}|${targetPortName}` };
    } else {
      this.nexus = null;
    }
  }

  get isDiscovery(): boolean {
    return this.target === null;
  }

  /** MaxCmdSN to advertise now (the window opens as tasks finish). */
  maxCmdSN(): number {
    return this.window.update(this.tasks.size);
  }

  info(): SessionInfo {
    const c = this.connection;
    return {
      id: `${formatIsid(this.isid)}:${this.tsih.toString(16).padStart(4, '0')}`,
      initiatorName: this.initiatorName,
      ...(this.initiatorAlias !== undefined ? { initiatorAlias: this.initiatorAlias } : {}),
      address: c?.address ?? '',
      localAddress: c?.localAddress ?? '',
      targetName: this.target?.iqn ?? '',
      sessionType: this.target === null ? 'Discovery' : 'Normal',
      isid: formatIsid(this.isid),
      tsih: this.tsih,
      since: this.since,
      params: this.params,
      headerDigest: c?.headerDigest ?? false,
      dataDigest: c?.dataDigest ?? false,
      stats: this.stats.snapshot(),
    };
  }

  close(reason: string): void {
    if (this.connection !== null) this.connection.close(reason);
    else this.finish(reason);
  }

  requestLogout(seconds: number): void {
    this.connection?.requestLogout(seconds);
  }

  /**
   * Abort every task of this session on `lun` (-1: every LUN). Tasks still
   * collecting Data-Out end at once; tasks inside the SCSI layer finish
   * their I/O (their responses are dropped) before `cb` runs.
   */
  abortTasks(lun: number, cb: () => void): void {
    let waiting = 1;
    const one = (): void => {
      if (--waiting === 0) cb();
    };
    for (const task of Array.from(this.tasks.values())) {
      if (lun !== -1 && task.lun !== lun) continue;
      waiting++;
      task.abort(one);
    }
    one();
  }

  /** The connection ended: drop every task, release the nexus, leave the engine. */
  finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const task of Array.from(this.tasks.values())) task.abort(null);
    this.tasks.clear();
    this.held.clear();
    if (this.target !== null && this.nexus !== null) {
      try {
        this.target.lunTable.nexusGone(this.nexus);
      } catch (err) {
        this.ctx.log('error', `nexus cleanup for ${this.initiatorName} failed: ${(err as Error).message}`);
      }
    }
    this.ctx.removeSession(this, reason);
  }
}
