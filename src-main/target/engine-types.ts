/**
 * Types shared by the target engine's modules (portal, connection, login,
 * session, SCSI task handling, task management) and its public API.
 */
import type { Backstore } from '../backstore/types';
import type { SessionParams, TargetNegotiationConfig } from '../iscsi/negotiation';
import type { ItNexus, ScsiCallback, ScsiCommand } from './scsi/types';
import type { IoStats, IoStatsSnapshot } from './stats';

// ---------------------------------------------------------------------------
// The SCSI side, as the connection layer sees it
// ---------------------------------------------------------------------------

export interface LunDefinition {
  backstore: Backstore;
  readOnly: boolean;
  /** Stable identity seed (serial number, NAA); default `${iqn}/${lun}`. */
  seed: string;
  /** Report removable medium (START STOP UNIT eject/load, PREVENT ALLOW MEDIUM REMOVAL). */
  removable?: boolean;
  /** LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT (e.g. 3: 4 KiB physical blocks of 512-byte logical ones). */
  physicalBlockExponent?: number;
}

/**
 * The logical units of one target, as the iSCSI layer drives them. The SCSI
 * emulation (src-main/target/scsi) provides the implementation; see
 * scsi-port.ts for the adapter.
 */
export interface LunTable {
  /** Runs one command; `cb` exactly once (possibly synchronously). */
  execute(cmd: ScsiCommand, cb: ScsiCallback): void;
  has(lun: number): boolean;
  luns(): number[];
  add(lun: number, def: LunDefinition): void;
  /** Removes a LUN (its backstore stays open: the caller owns it). */
  remove(lun: number): void;
  /**
   * LOGICAL UNIT RESET's SCSI state part (reservations, mode pages, unit
   * attentions); `nexus` is the I_T nexus that asked for it.
   */
  lunReset(lun: number, nexus?: ItNexus): void;
  /** TARGET WARM/COLD RESET's SCSI state part, on every LUN. */
  targetReset(kind: 'warm' | 'cold'): void;
  /** An I_T nexus ended (logout, dropped connection, reinstatement). */
  nexusGone(nexus: ItNexus): void;
}

export type LunTableFactory = (target: { iqn: string }) => LunTable;

// ---------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------

export interface ChapSecret {
  user: string;
  secret: string;
}

export interface TargetAcl {
  /** 'any': every initiator may log in; else the allowed initiator names (compared case-insensitively). */
  allow: 'any' | string[];
}

export interface LunConfig {
  lun: number;
  backstore: Backstore;
  readOnly?: boolean;
  seed?: string;
  removable?: boolean;
  physicalBlockExponent?: number;
}

export interface TargetConfig {
  iqn: string;
  alias?: string;
  luns: LunConfig[];
  acl: TargetAcl;
  /** One-way CHAP: the initiator must prove this user/secret. */
  chap?: ChapSecret;
  /** Mutual CHAP: the target proves this user/secret when the initiator asks. */
  mutualChap?: ChapSecret;
}

/** The engine's live record of a target. */
export interface TargetNode {
  readonly iqn: string;
  alias: string | undefined;
  readonly lunTable: LunTable;
  /** Allowed initiators, normalized (lowercase); null = any. */
  allow: Set<string> | null;
  chap: ChapSecret | undefined;
  mutualChap: ChapSecret | undefined;
  readonly tpgt: number;
  readonly lunStats: Map<number, IoStats>;
  readonly backstores: Map<number, Backstore>;
  removed: boolean;
}

// ---------------------------------------------------------------------------
// Events and listings
// ---------------------------------------------------------------------------

export interface LoginRefusedEvent {
  initiatorName: string;
  /** Initiator's address as `host:port`. */
  address: string;
  /** Target the initiator asked for ('' for a discovery session). */
  targetName: string;
  reason: string;
  statusClass: number;
  statusDetail: number;
}

export interface SessionInfo {
  id: string;
  initiatorName: string;
  initiatorAlias?: string;
  address: string;
  localAddress: string;
  targetName: string;
  sessionType: 'Normal' | 'Discovery';
  isid: string;
  tsih: number;
  since: Date;
  params: SessionParams;
  headerDigest: boolean;
  dataDigest: boolean;
  stats: IoStatsSnapshot;
}

export interface TargetEngineEvents {
  'login-refused': [LoginRefusedEvent];
  'session-opened': [SessionInfo];
  'session-closed': [SessionInfo & { reason: string }];
  /** Something worth a log line (never contains secrets). */
  log: [{ level: 'debug' | 'info' | 'warn' | 'error'; message: string }];
}

export interface PortalConfig {
  host: string;
  port: number;
}

export interface TargetEngineOptions {
  portals: PortalConfig[];
  /** Commands one session may have outstanding (CmdSN window). Default 128. */
  queueDepth?: number;
  /** Idle time after which the target pings with NOP-In, ms. Default 15000; 0 disables. */
  nopInterval?: number;
  /** Time without any PDU after a NOP-In ping before the connection is dropped, ms. Default 15000. */
  nopTimeout?: number;
  /** A login must complete within this many ms. Default 30000. */
  loginTimeout?: number;
  /** Negotiation preferences (defaults: DEFAULT_TARGET_CONFIG of negotiation.ts). */
  negotiation?: Partial<TargetNegotiationConfig>;
  /** How LUN tables are made (default: the SCSI emulation of src-main/target/scsi). */
  lunTableFactory?: LunTableFactory;
}

/** What connections need from the engine. */
export interface EngineContext {
  readonly queueDepth: number;
  readonly nopInterval: number;
  readonly nopTimeout: number;
  readonly loginTimeout: number;
  readonly negotiation: Partial<TargetNegotiationConfig>;
  findTarget(name: string): TargetNode | undefined;
  /** Targets this initiator may see (SendTargets). */
  visibleTargets(initiatorName: string): TargetNode[];
  isAllowed(target: TargetNode, initiatorName: string): boolean;
  /** TargetAddress values for a connection that arrived at `localAddress:localPort`. */
  targetAddresses(localAddress: string, localPort: number, tpgt: number): string[];
  allocateTsih(): number;
  sessionByTsih(tsih: number): SessionLike | undefined;
  /** The session of this I_T nexus (initiator name + ISID + target), for reinstatement. */
  sessionByNexus(initiatorName: string, isid: number, targetName: string): SessionLike | undefined;
  addSession(session: SessionLike): void;
  removeSession(session: SessionLike, reason: string): void;
  loginRefused(event: LoginRefusedEvent): void;
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void;
  /** Every live session of a target (LUN RESET, CLEAR TASK SET reach them all). */
  sessionsOf(target: TargetNode): SessionLike[];
}

/** The parts of a session the engine sees (avoids an import cycle with session.ts). */
export interface SessionLike {
  readonly tsih: number;
  readonly isid: number;
  readonly initiatorName: string;
  readonly target: TargetNode | null;
  info(): SessionInfo;
  /** Close the session (its connection), e.g. for reinstatement or engine shutdown. */
  close(reason: string): void;
  /** Ask the initiator to log out (Async Message event 1) within `seconds`. */
  requestLogout(seconds: number): void;
  /** Abort every task of this session on `lun` (or all LUNs with -1); `cb` once they have settled. */
  abortTasks(lun: number, cb: () => void): void;
  readonly closed: boolean;
}
