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
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { checkChapConfig } from '../iscsi/chap';
import { validateIscsiName, normalizeIscsiName } from '../iscsi/names';
import { Connection } from './connection';
import type {
  EngineContext,
  LoginRefusedEvent,
  LunConfig,
  LunTableFactory,
  PortalConfig,
  SessionInfo,
  SessionLike,
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
export { PortalError } from './portal';

export class TargetConfigError extends Error {
  override readonly name = 'TargetConfigError';
}

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
    if (options.portals.length === 0) throw new TargetConfigError('at least one portal is needed');
    this.factory = options.lunTableFactory ?? defaultLunTableFactory;
    this.portals = options.portals.map((p) => new Portal(p, (socket) => this.accept(socket)));
    const queueDepth = options.queueDepth ?? 128;
    if (!Number.isInteger(queueDepth) || queueDepth < 1 || queueDepth > 4096) throw new TargetConfigError(`queue depth ${queueDepth} is outside 1..4096`);
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
      isAllowed: (target, initiatorName) => target.allow === null || target.allow.has(normalizeIscsiName(initiatorName)),
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

  private allocateTsih(): number {
    for (let i = 0; i < 0xffff; i++) {
      const tsih = this.nextTsih;
      this.nextTsih = tsih >= 0xffff ? 1 : tsih + 1;
      if (!this.sessionsByTsih.has(tsih)) return tsih;
    }
    throw new Error('no free TSIH');
  }

  // -------------------------------------------------------------------------
  // Targets, LUNs, ACLs
  // -------------------------------------------------------------------------

  addTarget(config: TargetConfig): void {
    const v = validateIscsiName(config.iqn);
    if (!v.ok) throw new TargetConfigError(`target name "${config.iqn}": ${v.reason}`);
    const iqn = v.name;
    if (this.targets.has(iqn) && !this.targets.get(iqn)!.removed) throw new TargetConfigError(`target ${iqn} already exists`);
    const chapProblem = checkChapConfig(
      config.chap !== undefined ? { name: config.chap.user, secret: config.chap.secret } : undefined,
      config.mutualChap !== undefined ? { name: config.mutualChap.user, secret: config.mutualChap.secret } : undefined,
    );
    if (chapProblem !== null) throw new TargetConfigError(chapProblem.message);
    const seen = new Set<number>();
    for (const l of config.luns) {
      checkLunNumber(l.lun);
      if (seen.has(l.lun)) throw new TargetConfigError(`LUN ${l.lun} is given twice`);
      seen.add(l.lun);
    }
    const node: TargetNode = {
      iqn,
      alias: config.alias,
      lunTable: this.factory({ iqn }),
      allow: aclSet(config.acl.allow),
      chap: config.chap,
      mutualChap: config.mutualChap,
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

  targetNames(): string[] {
    return [...this.targets.keys()];
  }

  addLun(iqn: string, lun: LunConfig): void {
    const node = this.requireTarget(iqn);
    checkLunNumber(lun.lun);
    if (node.lunTable.has(lun.lun)) throw new TargetConfigError(`${node.iqn} already has LUN ${lun.lun}`);
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

  /** Replace the ACL ('any' or a list of initiator names). Existing sessions stay. */
  setAcl(iqn: string, allow: 'any' | string[]): void {
    this.requireTarget(iqn).allow = aclSet(allow);
  }

  allowInitiator(iqn: string, initiatorName: string): void {
    const node = this.requireTarget(iqn);
    const v = validateIscsiName(initiatorName);
    if (!v.ok) throw new TargetConfigError(`initiator name "${initiatorName}": ${v.reason}`);
    if (node.allow === null) return;
    node.allow.add(v.name);
  }

  /** Remove an initiator from the ACL; with `closeSessions` its sessions end too. */
  disallowInitiator(iqn: string, initiatorName: string, closeSessions = false): void {
    const node = this.requireTarget(iqn);
    const name = normalizeIscsiName(initiatorName);
    // Turning "anyone" into "everyone but X" would silently lock out every other initiator.
    if (node.allow === null) {
      throw new TargetConfigError(`${iqn} lets any initiator in; list the ones to allow with setAcl([...]) before removing one`);
    }
    node.allow.delete(name);
    if (closeSessions) for (const s of this.ctx.sessionsOf(node)) if (s.initiatorName === name) s.close('initiator removed from the ACL');
  }

  setChap(iqn: string, chap: TargetConfig['chap'], mutualChap?: TargetConfig['mutualChap']): void {
    const node = this.requireTarget(iqn);
    const problem = checkChapConfig(
      chap !== undefined ? { name: chap.user, secret: chap.secret } : undefined,
      mutualChap !== undefined ? { name: mutualChap.user, secret: mutualChap.secret } : undefined,
    );
    if (problem !== null) throw new TargetConfigError(problem.message);
    node.chap = chap;
    node.mutualChap = mutualChap;
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
    if (node === undefined || node.removed) throw new TargetConfigError(`no target named ${iqn}`);
    return node;
  }

  // -------------------------------------------------------------------------
  // Observation
  // -------------------------------------------------------------------------

  sessions(): SessionInfo[] {
    return [...this.sessionsByTsih.values()].filter((s) => !s.closed).map((s) => s.info());
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

function checkLunNumber(lun: number): void {
  if (!Number.isInteger(lun) || lun < 0 || lun > MAX_LUN) throw new TargetConfigError(`LUN ${lun} must be a whole number from 0 to ${MAX_LUN}`);
}

function aclSet(allow: 'any' | string[]): Set<string> | null {
  if (allow === 'any') return null;
  const set = new Set<string>();
  for (const name of allow) {
    const v = validateIscsiName(name);
    if (!v.ok) throw new TargetConfigError(`initiator name "${name}": ${v.reason}`);
    set.add(v.name);
  }
  return set;
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
