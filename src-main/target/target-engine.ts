/**
 * The iSCSI target engine: what the CLI (`spindle target serve`) and the
 * service use. Portals, targets with their LUNs, ACLs and CHAP, live
 * sessions, counters and events.
 *
 *   const engine = new TargetEngine({ portals: [{ host: '0.0.0.0', port: 3260 }] });
 *   engine.addTarget({ iqn, luns: [{ lun: 0, backstore }], acl: { allow: 'any' } });
 *   await engine.listen();
 *   engine.on('login-refused', (e) => ...);       // → "access requests"
 *   engine.sessions(); engine.lunStats(iqn, 0);
 *   await engine.close();                          // asks initiators to log out first
 *
 * Targets, LUNs and ACL entries change at runtime without disturbing other
 * sessions. The engine never closes backstores: their owner does, after
 * removeLun/removeTarget/close.
 *
 * CHAP: a target may have its own credentials (`chap`, `mutualChap`) and each
 * ACL entry may have an initiator's own (InitiatorAccess); a login uses the
 * entry's if it has any, else the target's, else none. Secrets are kept
 * sealed (iscsi/chap.ts sealCredentials): no log line, event, error message,
 * JSON or inspect output of the engine shows one.
 *
 * Configuration mistakes throw TargetConfigError (and listen() PortalError),
 * each with a stable `code` for the service to map and a message that says
 * what to do.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { checkChapConfig, sealCredentials } from '../iscsi/chap';
import { checkWireIscsiName, validateIscsiName, normalizeIscsiName } from '../iscsi/names';
import { Connection } from './connection';
import { wireName } from './login';
import type {
  AclEntry,
  ChapSecret,
  EngineContext,
  InitiatorAccess,
  LoginChap,
  LoginRefusedEvent,
  LunConfig,
  LunTableFactory,
  PortalConfig,
  SessionInfo,
  SessionLike,
  TargetAcl,
  TargetConfig,
  TargetEngineEvents,
  TargetEngineOptions,
  TargetNode,
} from './engine-types';
import { Portal, formatPortal } from './portal';
import { DEFAULT_SUPPORTED_TMFS } from './scsi/logical-unit';
import { ScsiTarget } from './scsi/target';
import { IoStats, type IoStatsSnapshot } from './stats';

export * from './engine-types';
export { PortalError, type PortalErrorCode } from './portal';

export type TargetConfigErrorCode =
  | 'PORTAL_MISSING'
  | 'QUEUE_DEPTH_INVALID'
  | 'TARGET_NAME_INVALID'
  | 'TARGET_EXISTS'
  | 'TARGET_NOT_FOUND'
  | 'LUN_INVALID'
  | 'LUN_EXISTS'
  | 'INITIATOR_NAME_INVALID'
  | 'ACL_OPEN'
  | 'CHAP_INVALID';

/**
 * A configuration the engine refuses. `code` is stable (for the service's
 * ApiError), `field` names the offending input where there is one (e.g.
 * 'iqn', 'luns[1].lun', 'acl.allow[0].chap', 'mutualChap'); the message says
 * what to do and never contains a CHAP secret.
 */
export class TargetConfigError extends Error {
  override readonly name = 'TargetConfigError';
  constructor(
    readonly code: TargetConfigErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** Credentials to add with allowInitiator (both optional; mutual needs one-way). */
export interface InitiatorCredentials {
  chap?: ChapSecret;
  mutualChap?: ChapSecret;
}

/** A target's ACL as acl() reports it: names and CHAP user names, never secrets. */
export type AclView = 'any' | Array<{ name: string; chapUser?: string; mutualChapUser?: string }>;

/** The default LUN tables: Spindle's SCSI emulation, told which TMFs the connection layer carries out. */
export const defaultLunTableFactory: LunTableFactory = () => new ScsiTarget({ supportedTmfs: { ...DEFAULT_SUPPORTED_TMFS } });

const MAX_LUN = 0x3fff;

export class TargetEngine extends EventEmitter<TargetEngineEvents> {
  private readonly targets = new Map<string, TargetNode>();
  private readonly sessionsByTsih = new Map<number, SessionLike>();
  private readonly connections = new Set<Connection>();
  private readonly portals: Portal[];
  private readonly factory: LunTableFactory;
  private readonly ctx: EngineContext;
  private nextTsih = 1;
  private closing = false;

  constructor(private readonly options: TargetEngineOptions) {
    super();
    if (options.portals.length === 0) throw new TargetConfigError('PORTAL_MISSING', 'at least one portal (host and port to listen on) is needed', 'portals');
    this.factory = options.lunTableFactory ?? defaultLunTableFactory;
    this.portals = options.portals.map((p) => new Portal(p, (socket) => this.accept(socket)));
    const queueDepth = options.queueDepth ?? 128;
    if (!Number.isInteger(queueDepth) || queueDepth < 1 || queueDepth > 4096) {
      throw new TargetConfigError('QUEUE_DEPTH_INVALID', `queue depth ${queueDepth} is outside 1..4096; choose a whole number in that range (default 128)`, 'queueDepth');
    }
    const engine = this;
    this.ctx = {
      queueDepth,
      nopInterval: options.nopInterval ?? 15_000,
      nopTimeout: options.nopTimeout ?? 15_000,
      loginTimeout: options.loginTimeout ?? 30_000,
      negotiation: options.negotiation ?? {},
      findTarget: (name) => {
        const t = engine.targets.get(normalizeIscsiName(name));
        return t !== undefined && !t.removed ? t : undefined;
      },
      visibleTargets: (initiatorName) => [...engine.targets.values()].filter((t) => !t.removed && engine.ctx.isAllowed(t, initiatorName)),
      hiddenTargets: (initiatorName) => [...engine.targets.values()].filter((t) => !t.removed && !engine.ctx.isAllowed(t, initiatorName)),
      discoveryFiltered: (initiatorName, address, hidden) => {
        if (hidden.length === 0 || initiatorName === '') return;
        engine.emitSafe('discovery-filtered', { initiatorName: wireName(initiatorName), address, hidden: hidden.map((t) => t.iqn) });
      },
      isAllowed: (target, initiatorName) => target.allow === null || target.allow.has(normalizeIscsiName(initiatorName)),
      loginChap: (target, initiatorName) => target.allow?.get(normalizeIscsiName(initiatorName))?.chap ?? target.chap,
      targetAddresses: (localAddress, localPort, tpgt) => engine.targetAddresses(localAddress, localPort, tpgt),
      allocateTsih: () => engine.allocateTsih(),
      sessionByTsih: (tsih) => engine.sessionsByTsih.get(tsih),
      sessionByNexus: (initiatorName, isid, targetName) => {
        for (const s of engine.sessionsByTsih.values()) {
          if (!s.closed && s.initiatorName === initiatorName && s.isid === isid && (s.target?.iqn ?? '') === targetName) return s;
        }
        return undefined;
      },
      addSession: (session) => {
        engine.sessionsByTsih.set(session.tsih, session);
        engine.emitSafe('session-opened', session.info());
      },
      removeSession: (session, reason) => {
        if (engine.sessionsByTsih.get(session.tsih) === session) engine.sessionsByTsih.delete(session.tsih);
        engine.emitSafe('session-closed', { ...session.info(), reason });
      },
      loginRefused: (event: LoginRefusedEvent) => {
        engine.log('info', `login refused: ${event.initiatorName || '(no initiator name)'} from ${event.address} to ${event.targetName || '(discovery)'}: ${event.reason}`);
        engine.emitSafe('login-refused', event);
      },
      log: (level, message) => engine.log(level, message),
      sessionsOf: (target) => [...engine.sessionsByTsih.values()].filter((s) => s.target === target && !s.closed),
    };
  }

  // -------------------------------------------------------------------------
  // Portals
  // -------------------------------------------------------------------------

  /** Start listening on every portal; resolves with the bound addresses. Throws PortalError. */
  async listen(): Promise<PortalConfig[]> {
    const bound: PortalConfig[] = [];
    try {
      for (const p of this.portals) bound.push(await p.listen());
    } catch (err) {
      await Promise.all(this.portals.map((p) => p.close()));
      throw err;
    }
    return bound;
  }

  /** Bound portal addresses (after listen). */
  addresses(): PortalConfig[] {
    return this.portals.map((p) => p.address);
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    try {
      const conn = new Connection(socket, this.ctx, (c) => this.connections.delete(c));
      this.connections.add(conn);
    } catch (err) {
      this.log('error', `could not set up a connection: ${(err as Error).message}`);
      socket.destroy();
    }
  }

  private targetAddresses(localAddress: string, localPort: number, tpgt: number): string[] {
    const out: string[] = [];
    const strip = (a: string): string => (a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a);
    for (const p of this.portals) {
      let bound: PortalConfig;
      try {
        bound = p.address;
      } catch {
        continue;
      }
      const wildcard = bound.host === '0.0.0.0' || bound.host === '::';
      if (wildcard) {
        // The address the initiator reached us on is the one it can use.
        if (bound.port === localPort && localAddress !== '') out.push(`${formatPortal(strip(localAddress), bound.port)},${tpgt}`);
        else out.push(...hostAddresses(bound.host === '::').map((a) => `${formatPortal(a, bound.port)},${tpgt}`));
      } else {
        out.push(`${formatPortal(strip(bound.host), bound.port)},${tpgt}`);
      }
    }
    return [...new Set(out)];
  }

  /** The next TSIH no live session uses (1..0xffff; 0 is reserved, RFC 7143 §11.12.6), or null when none is free. */
  private allocateTsih(): number | null {
    for (let i = 0; i < 0xffff; i++) {
      const tsih = this.nextTsih;
      this.nextTsih = tsih >= 0xffff ? 1 : tsih + 1;
      if (!this.sessionsByTsih.has(tsih)) return tsih;
    }
    return null;
  }

  // -------------------------------------------------------------------------
  // Targets, LUNs, ACLs
  // -------------------------------------------------------------------------

  addTarget(config: TargetConfig): void {
    const v = validateIscsiName(config.iqn);
    if (!v.ok) throw new TargetConfigError('TARGET_NAME_INVALID', `target name "${printable(config.iqn)}": ${v.reason}`, 'iqn');
    const iqn = v.name;
    if (this.targets.has(iqn) && !this.targets.get(iqn)!.removed) {
      throw new TargetConfigError('TARGET_EXISTS', `target ${iqn} already exists; choose another name or change the existing target`, 'iqn');
    }
    const chap = loginChap(config.chap, config.mutualChap, '');
    const allow = aclMap(config.acl.allow, 'acl.allow');
    const seen = new Set<number>();
    config.luns.forEach((l, i) => {
      checkLunNumber(l.lun, `luns[${i}].lun`);
      if (seen.has(l.lun)) throw new TargetConfigError('LUN_EXISTS', `LUN ${l.lun} is given twice; give each LUN its own number`, `luns[${i}].lun`);
      seen.add(l.lun);
    });
    const node: TargetNode = {
      iqn,
      alias: config.alias,
      lunTable: this.factory({ iqn }),
      allow,
      chap,
      tpgt: 1,
      lunStats: new Map(),
      backstores: new Map(),
      removed: false,
    };
    for (const l of config.luns) this.mapLun(node, l);
    this.targets.set(iqn, node);
  }

  /** Remove a target; its sessions are closed. Returns the backstores it used (for the caller to close). */
  removeTarget(iqn: string): LunConfig['backstore'][] {
    const node = this.requireTarget(iqn);
    node.removed = true;
    for (const s of this.ctx.sessionsOf(node)) s.close('target removed');
    this.targets.delete(node.iqn);
    return [...node.backstores.values()];
  }

  /** Change a target's TargetAlias (sent from the next login on). */
  setAlias(iqn: string, alias: string | undefined): void {
    this.requireTarget(iqn).alias = alias;
  }

  targetNames(): string[] {
    return [...this.targets.keys()];
  }

  addLun(iqn: string, lun: LunConfig): void {
    const node = this.requireTarget(iqn);
    checkLunNumber(lun.lun, 'lun');
    if (node.lunTable.has(lun.lun)) {
      throw new TargetConfigError('LUN_EXISTS', `${node.iqn} already has LUN ${lun.lun}; choose a free LUN number or remove that LUN first`, 'lun');
    }
    this.mapLun(node, lun);
  }

  /** Unmap a LUN; returns its backstore (the caller closes it once in-flight I/O is done). */
  removeLun(iqn: string, lun: number): LunConfig['backstore'] | undefined {
    const node = this.requireTarget(iqn);
    if (!node.lunTable.has(lun)) return undefined;
    node.lunTable.remove(lun);
    node.lunStats.delete(lun);
    const bs = node.backstores.get(lun);
    node.backstores.delete(lun);
    return bs;
  }

  /**
   * Replace the ACL: 'any', or the allowed initiators (names, or entries with
   * their own CHAP). Existing sessions stay; the next login uses the new ACL.
   */
  setAcl(iqn: string, allow: TargetAcl['allow']): void {
    const node = this.requireTarget(iqn);
    node.allow = aclMap(allow, 'allow');
  }

  /**
   * Add an initiator to the ACL, or replace its entry (and credentials).
   * With `creds.chap` (and optionally `creds.mutualChap`) this initiator
   * uses its own CHAP instead of the target's. Takes effect at its next
   * login; existing sessions are untouched. On an open ('any') ACL a name
   * alone changes nothing; per-initiator CHAP there is refused (ACL_OPEN).
   */
  allowInitiator(iqn: string, initiatorName: string, creds?: InitiatorCredentials): void {
    const node = this.requireTarget(iqn);
    const entry = aclEntry({ name: initiatorName, ...(creds?.chap !== undefined ? { chap: creds.chap } : {}), ...(creds?.mutualChap !== undefined ? { mutualChap: creds.mutualChap } : {}) }, '');
    if (node.allow === null) {
      if (entry.chap === undefined) return;
      throw new TargetConfigError(
        'ACL_OPEN',
        `${node.iqn} lets any initiator in with the target's CHAP; to give ${entry.name} its own CHAP, list the allowed initiators with setAcl([...]) first`,
        'initiatorName',
      );
    }
    node.allow.set(entry.name, entry);
  }

  /** Remove an initiator from the ACL; with `closeSessions` its sessions end too. */
  disallowInitiator(iqn: string, initiatorName: string, closeSessions = false): void {
    const node = this.requireTarget(iqn);
    const name = normalizeIscsiName(initiatorName);
    // Turning "anyone" into "everyone but X" would silently lock out every other initiator.
    if (node.allow === null) {
      throw new TargetConfigError(
        'ACL_OPEN',
        `${node.iqn} lets any initiator in; list the ones to allow with setAcl([...]) before removing one`,
        'initiatorName',
      );
    }
    node.allow.delete(name);
    if (closeSessions) for (const s of this.ctx.sessionsOf(node)) if (s.initiatorName === name) s.close('initiator removed from the ACL');
  }

  /** Set (or with undefined, clear) the target-level CHAP. The next login uses it. */
  setChap(iqn: string, chap: TargetConfig['chap'], mutualChap?: TargetConfig['mutualChap']): void {
    const node = this.requireTarget(iqn);
    node.chap = loginChap(chap, mutualChap, '');
  }

  /** The ACL of a target: 'any', or each allowed initiator with its CHAP user names (never secrets). */
  acl(iqn: string): AclView {
    const node = this.requireTarget(iqn);
    if (node.allow === null) return 'any';
    return [...node.allow.values()].map((e) => ({
      name: e.name,
      ...(e.chap !== undefined ? { chapUser: e.chap.initiator.name } : {}),
      ...(e.chap?.mutual !== undefined ? { mutualChapUser: e.chap.mutual.name } : {}),
    }));
  }

  private mapLun(node: TargetNode, l: LunConfig): void {
    node.lunTable.add(l.lun, {
      backstore: l.backstore,
      readOnly: l.readOnly ?? false,
      seed: l.seed ?? `${node.iqn}/${l.lun}`,
      ...(l.removable !== undefined ? { removable: l.removable } : {}),
      ...(l.physicalBlockExponent !== undefined ? { physicalBlockExponent: l.physicalBlockExponent } : {}),
    });
    node.lunStats.set(l.lun, new IoStats());
    node.backstores.set(l.lun, l.backstore);
  }

  private requireTarget(iqn: string): TargetNode {
    const node = this.targets.get(normalizeIscsiName(iqn));
    if (node === undefined || node.removed) throw new TargetConfigError('TARGET_NOT_FOUND', `no target named ${printable(iqn)}; check the name (see targetNames())`, 'iqn');
    return node;
  }

  // -------------------------------------------------------------------------
  // Observation
  // -------------------------------------------------------------------------

  sessions(): SessionInfo[] {
    return [...this.sessionsByTsih.values()].filter((s) => !s.closed).map((s) => s.info());
  }

  /**
   * Close one live session by its SessionInfo.id (e.g. "a user kicked it"); the
   * initiator may log in again. False when no live session has that id.
   */
  closeSession(id: string, reason = 'closed by the target'): boolean {
    for (const s of this.sessionsByTsih.values()) {
      if (!s.closed && s.info().id === id) {
        s.close(reason);
        return true;
      }
    }
    return false;
  }

  /** Counters of one LUN (cheap: a copy of a few numbers). */
  lunStats(iqn: string, lun: number): IoStatsSnapshot | undefined {
    return this.targets.get(normalizeIscsiName(iqn))?.lunStats.get(lun)?.snapshot();
  }

  /** Counters of every LUN of every target. */
  allLunStats(): Array<{ target: string; lun: number; stats: IoStatsSnapshot }> {
    const out: Array<{ target: string; lun: number; stats: IoStatsSnapshot }> = [];
    for (const t of this.targets.values()) for (const [lun, s] of t.lunStats) out.push({ target: t.iqn, lun, stats: s.snapshot() });
    return out;
  }

  private log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void {
    if (this.listenerCount('log') > 0) this.emitSafe('log', { level, message });
  }

  private emitSafe<K extends keyof TargetEngineEvents>(event: K, ...args: TargetEngineEvents[K]): void {
    try {
      (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
    } catch (err) {
      // A listener's bug must not take the engine (or a connection) down.
      if (event !== 'log') this.log('error', `a ${String(event)} listener threw: ${(err as Error).message}`);
    }
  }

  // -------------------------------------------------------------------------
  // Shutdown
  // -------------------------------------------------------------------------

  /**
   * Stop: no new connections; every session is asked to log out (Async
   * Message event 1) and gets `graceMs` to do so; then what is left is
   * dropped.
   */
  async close(graceMs = 2000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // Stop accepting now; a server's close callback waits for every connection, so await it last.
    const portalsClosed = Promise.all(this.portals.map((p) => p.close()));
    const live = [...this.sessionsByTsih.values()].filter((s) => !s.closed);
    for (const s of live) {
      try {
        s.requestLogout(Math.ceil(graceMs / 1000));
      } catch {
        /* a dying connection */
      }
    }
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && [...this.sessionsByTsih.values()].some((s) => !s.closed)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const conn of [...this.connections]) conn.destroy('target shutting down');
    this.connections.clear();
    await portalsClosed;
  }
}

function checkLunNumber(lun: number, field: string): void {
  if (!Number.isInteger(lun) || lun < 0 || lun > MAX_LUN) {
    throw new TargetConfigError('LUN_INVALID', `LUN ${String(lun)} must be a whole number from 0 to ${MAX_LUN}`, field);
  }
}

/** A name for a message: printable, at most 223 bytes (as login.ts reports names from the wire). */
function printable(s: unknown): string {
  return wireName(String(s));
}

function isChapSecret(c: unknown): c is ChapSecret {
  return typeof c === 'object' && c !== null && typeof (c as ChapSecret).user === 'string' && typeof (c as ChapSecret).secret === 'string';
}

/**
 * Check and seal one pair of CHAP credentials (RFC 7143 §12.1.3: secrets of
 * 12+ bytes, §9.2.1: the mutual secret differs). `at` prefixes the field
 * names ('' for the target level, 'acl.allow[2].' for an entry); `who`
 * names the initiator of an ACL entry in messages.
 */
function loginChap(chap: ChapSecret | undefined, mutualChap: ChapSecret | undefined, at: string, who?: string): LoginChap | undefined {
  const lead = who !== undefined ? `CHAP for initiator ${who}: ` : '';
  for (const [c, field] of [
    [chap, `${at}chap`],
    [mutualChap, `${at}mutualChap`],
  ] as const) {
    if (c !== undefined && !isChapSecret(c)) throw new TargetConfigError('CHAP_INVALID', `${lead}${field}: give a user name and a secret, both strings`, field);
  }
  const oneWay = chap !== undefined ? { name: chap.user, secret: chap.secret } : undefined;
  const mutual = mutualChap !== undefined ? { name: mutualChap.user, secret: mutualChap.secret } : undefined;
  // Check the one-way pair alone first, so `field` names the credential that is wrong.
  const first = checkChapConfig(oneWay);
  if (first !== null) throw new TargetConfigError('CHAP_INVALID', `${lead}${first.message}`, `${at}chap`);
  const both = checkChapConfig(oneWay, mutual);
  if (both !== null) throw new TargetConfigError('CHAP_INVALID', `${lead}${both.message}`, `${at}mutualChap`);
  if (oneWay === undefined) return undefined;
  return Object.freeze({ initiator: sealCredentials(oneWay), ...(mutual !== undefined ? { mutual: sealCredentials(mutual) } : {}) });
}

function aclEntry(item: string | InitiatorAccess, field: string): AclEntry {
  const at = field === '' ? '' : `${field}.`;
  const rawName: unknown = typeof item === 'string' ? item : typeof item === 'object' && item !== null ? item.name : undefined;
  if (typeof rawName !== 'string') {
    throw new TargetConfigError('INITIATOR_NAME_INVALID', `${field || 'initiator'}: give the initiator's iSCSI name (iqn.… or eui.…)`, `${at}name`);
  }
  // The login takes names as lenient as checkWireIscsiName (a Windows host name's '_'); so must the ACL, or an initiator the login lets through could never be allowed.
  const v = checkWireIscsiName(rawName);
  if (!v.ok) throw new TargetConfigError('INITIATOR_NAME_INVALID', `initiator name "${printable(rawName)}": ${v.reason}`, field === '' ? 'initiatorName' : `${at}name`);
  if (typeof item === 'string') return { name: v.name, chap: undefined };
  return { name: v.name, chap: loginChap(item.chap, item.mutualChap, at, v.name) };
}

/** The ACL as the engine keeps it: null for 'any'; a later entry for the same initiator replaces an earlier one. */
function aclMap(allow: TargetAcl['allow'], field: string): Map<string, AclEntry> | null {
  if (allow === 'any') return null;
  if (!Array.isArray(allow)) throw new TargetConfigError('INITIATOR_NAME_INVALID', `${field}: give 'any' or a list of initiators`, field);
  const map = new Map<string, AclEntry>();
  allow.forEach((item, i) => {
    const e = aclEntry(item, `${field}[${i}]`);
    map.set(e.name, e);
  });
  return map;
}

function hostAddresses(v6: boolean): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal) continue;
      if (a.family === 'IPv4' || (v6 && a.family === 'IPv6' && !a.address.startsWith('fe80'))) out.push(a.address);
    }
  }
  return out.length > 0 ? out : ['127.0.0.1'];
}
