/**
 * Types shared by the target engine's modules (portal, connection, login,
 * session, SCSI task handling, task management) and its public API.
 */
import type { Backstore } from '../backstore/types';
import type { ChapCredentials } from '../iscsi/chap';
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

/** A CHAP user and secret as the engine's callers give them (the engine keeps them sealed). */
export interface ChapSecret {
  user: string;
  secret: string;
}

/** One initiator in a target's ACL, optionally with its own CHAP credentials. */
export interface InitiatorAccess {
  /** The initiator's iSCSI name (compared case-insensitively). */
  name: string;
  /** One-way CHAP this initiator must prove; overrides the target's `chap`. */
  chap?: ChapSecret;
  /** Mutual CHAP the target proves to this initiator (needs `chap`). */
  mutualChap?: ChapSecret;
}

export interface TargetAcl {
  /**
   * 'any': every initiator may log in (the target-level CHAP applies); else
   * the allowed initiators, by name or with their own CHAP credentials.
   */
  allow: 'any' | Array<string | InitiatorAccess>;
}

/** CHAP credentials as a login uses them: sealed (see sealCredentials in iscsi/chap.ts). */
export interface LoginChap {
  /** What the initiator must prove. */
  readonly initiator: ChapCredentials;
  /** What the target answers with when the initiator asks for mutual CHAP. */
  readonly mutual?: ChapCredentials;
}

/** The engine's record of one ACL entry; credentials sealed. */
export interface AclEntry {
  /** Normalized (lowercase) initiator name. */
  readonly name: string;
  /** This initiator's own CHAP, or undefined to use the target's. */
  readonly chap: LoginChap | undefined;
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
  /** Allowed initiators by normalized (lowercase) name; null = any. */
  allow: Map<string, AclEntry> | null;
  /** Target-level CHAP (sealed): for an open ACL and for entries without their own. */
  chap: LoginChap | undefined;
  readonly tpgt: number;
  readonly lunStats: Map<number, IoStats>;
  readonly backstores: Map<number, Backstore>;
  removed: boolean;
}

// ---------------------------------------------------------------------------
// Events and listings
// ---------------------------------------------------------------------------

export interface LoginRefusedEvent {
  /** As the initiator sent it, made printable: control characters removed, at most 223 bytes (RFC 7143 §4.2.7.1). */
  initiatorName: string;
  /** Initiator's address as `host:port`. */
  address: string;
  /** Target the initiator asked for ('' for a discovery session); bounded like initiatorName. */
  targetName: string;
  /** One printable line; never contains a CHAP secret. */
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

/** A discovery (SendTargets) answer left out targets the initiator is not allowed on. */
export interface DiscoveryFilteredEvent {
  initiatorName: string;
  /** Initiator's address as `host:port`. */
  address: string;
  /** IQNs of the targets left out. */
  hidden: string[];
}

export interface TargetEngineEvents {
  'login-refused': [LoginRefusedEvent];
  'discovery-filtered': [DiscoveryFilteredEvent];
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
  /** Targets this initiator may not see. */
  hiddenTargets(initiatorName: string): TargetNode[];
  /** SendTargets left these targets out for this initiator (reported so the app can offer to let it in). */
  discoveryFiltered(initiatorName: string, address: string, hidden: TargetNode[]): void;
  isAllowed(target: TargetNode, initiatorName: string): boolean;
  /**
   * The CHAP a normal-session login of `initiatorName` to `target` must pass,
   * read at login time: the initiator's ACL entry's own, else the target's,
   * else undefined (no authentication).
   */
  loginChap(target: TargetNode, initiatorName: string): LoginChap | undefined;
  /** TargetAddress values for a connection that arrived at `localAddress:localPort`. */
  targetAddresses(localAddress: string, localPort: number, tpgt: number): string[];
  /** A TSIH no live session uses, or null when all 65535 are taken. */
  allocateTsih(): number | null;
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
