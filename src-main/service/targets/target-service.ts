// The service's side of "share a drive": targets, LUNs, ACLs and access
// requests live in the store; this module keeps the target engine in step
// with it. Every change is written to the store first (one transaction) and
// then applied to the running engine, so what the engine serves is always
// something the store holds — and a restart serves the same.
//
// Without an engine (`serving: false`: the CLI working directly on the DB
// while no `spindle serve` runs) the same handlers only change the store;
// the next `serve` picks the changes up at restore.
import { realpath, rm, stat, statfs } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { openBackstore, type Backstore as OpenBackstore } from '../../backstore';
import { createImage } from '../../backstore/file';
import { BackstoreError, formatBytes } from '../../backstore/errors';
import { scanDisks, type DiskReport } from '../../disks';
import { normalizeIscsiName } from '../../iscsi/names';
import type { Backstore as StoredBackstore, BackstoreRef, ChapInput, Store, Target } from '../../store';
import { TargetEngine, type InitiatorAccess, type PortalConfig, type SessionInfo, type TargetEngineOptions } from '../../target/target-engine';
import {
  ApiError,
  type AccessRequestView,
  type AclView,
  type BackstoreRefParams,
  type EventName,
  type EventPayloads,
  type ImageView,
  type LioImportReport,
  type IoCounters,
  type LunStatsTick,
  type SessionStatsTick,
  type SessionView,
  type TargetView,
} from '../api/schema';
import { exportLio, importLio, type SpindleConfig } from '../config/lio';
import { applyConfig, readConfig } from '../config/store-config';
import { backstoreSpecOf, formatPortal, parsePortal, samePath } from './backstore-specs';

export interface TargetServiceOptions {
  store: Store;
  emit<E extends EventName>(event: E, payload: EventPayloads[E]): void;
  /** Event log (never given secrets). */
  log(level: 'info' | 'warn' | 'error', message: string): void;
  /** false: change the store only (no engine); targets show as 'stopped'. */
  serving: boolean;
  /** Where every target listens (`spindle serve --portal`); default: the store's shared portals, else `defaultPortal`. */
  portals?: PortalConfig[];
  /** HOST:PORT used when the store has no shared portal (settings.defaultPortal). */
  defaultPortal: string;
  /** Engine tuning (tests shorten timeouts). */
  engine?: Partial<Omit<TargetEngineOptions, 'portals'>>;
}

interface LiveTarget {
  state: 'serving' | 'failed';
  reason: string | null;
  /** LUN → store backstore id. */
  luns: Map<number, number>;
}

interface OpenedBackstore {
  backstore: OpenBackstore;
  refs: number;
  /** Set while unused and about to close; a new user cancels it (a block device is O_EXCL: a second open would fail). */
  closeTimer: NodeJS.Timeout | null;
}

export interface RestoreReport {
  served: number;
  disabled: Array<{ iqn: string; reason: string }>;
  failed: Array<{ iqn: string; reason: string }>;
  ms: number;
}

/** How often one initiator's refusals for one target are written to the store, at most. */
const REQUEST_RECORD_INTERVAL_MS = 1000;
/** New (initiator, target) access requests recorded per minute, at most; and pending ones kept. */
const NEW_REQUESTS_PER_MINUTE = 30;
const MAX_PENDING_REQUESTS = 200;
/** Backstores opened at once while restoring. */
const RESTORE_CONCURRENCY = 16;

export class TargetService {
  private engine: TargetEngine | null = null;
  private engineError: string | null = null;
  private listening: PortalConfig[] = [];
  private readonly live = new Map<string, LiveTarget>();
  private readonly opened = new Map<number, Promise<OpenedBackstore>>();
  private readonly lastRecorded = new Map<string, number>();
  private newRequestWindow = { start: 0, count: 0, warned: false };
  private readonly rates = new RateTracker();
  /** Store changes and engine changes happen one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly opts: TargetServiceOptions) {}

  private get store(): Store {
    return this.opts.store;
  }

  /** Runs `fn` after every earlier change has finished. */
  private serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  // -------------------------------------------------------------------------
  // Start and stop
  // -------------------------------------------------------------------------

  /** Listens on the portals and serves every enabled target. A target whose backing is gone comes up disabled, with the reason. */
  start(): Promise<RestoreReport> {
    return this.serial(async () => {
      const started = performance.now();
      const report: RestoreReport = { served: 0, disabled: [], failed: [], ms: 0 };
      if (!this.opts.serving) return report;
      const portals = this.portalsToListen();
      const engine = new TargetEngine({ ...this.opts.engine, portals });
      engine.on('login-refused', (ev) => this.onLoginRefused(ev));
      engine.on('discovery-filtered', (ev) => {
        // Only a newcomer (allowed nowhere) is announced from discovery: one that already uses a share
        // is not asking for the others just because SendTargets hid them.
        if (this.store.acls.list().some((a) => normalizeIscsiName(a.initiatorIqn) === normalizeIscsiName(ev.initiatorName))) return;
        for (const iqn of ev.hidden) this.recordRequest(ev.initiatorName, ev.address, iqn);
      });
      engine.on('session-opened', (s) => this.opts.emit('sessions.opened', sessionView(s)));
      engine.on('session-closed', (s) => this.opts.emit('sessions.closed', { ...sessionView(s), reason: s.reason }));
      engine.on('log', (l) => {
        if (l.level === 'warn' || l.level === 'error') this.opts.log(l.level, `target engine: ${l.message}`);
      });
      try {
        this.listening = await engine.listen();
        this.engine = engine;
      } catch (err) {
        this.engineError = `cannot listen on ${portals.map(formatPortal).join(', ')}: ${(err as Error).message}`;
        this.opts.log('error', this.engineError);
        this.opts.emit('service.error', { source: 'targets', message: this.engineError });
      }

      const targets = this.store.targets.list().filter((t) => t.enabled);
      // Backstores first (the slow part), a few at a time; then targets in order.
      const missing = new Map<number, string>();
      const ids = [...new Set(targets.flatMap((t) => t.luns.map((l) => l.backstore.id)))];
      const byId = new Map(targets.flatMap((t) => t.luns.map((l) => [l.backstore.id, l.backstore] as const)));
      for (let i = 0; i < ids.length; i += RESTORE_CONCURRENCY) {
        await Promise.all(
          ids.slice(i, i + RESTORE_CONCURRENCY).map(async (id) => {
            const problem = await backingProblem(byId.get(id)!);
            if (problem !== null) missing.set(id, problem);
          }),
        );
      }
      // Disks are judged again at every start: what was a spare disk may hold a mounted file system now.
      const blockLuns = targets.flatMap((t) => t.luns.filter((l) => l.backstore.kind === 'block' && !missing.has(l.backstore.id)).map((l) => ({ t, l })));
      const refused = new Map<number, string>();
      if (blockLuns.length > 0) {
        const report = await scanDisks().catch(() => null);
        for (const { t, l } of blockLuns) {
          const problem = report === null ? 'the disk list could not be read to check it' : diskProblem(report, await realPath(l.backstore.path ?? ''), l.readOnly);
          if (problem !== null) refused.set(t.id, `${l.backstore.path} ${problem}`);
        }
      }
      // Open what will be served, a few at a time (each target then finds its backstores open).
      const servable = new Set(targets.filter((t) => !refused.has(t.id)).flatMap((t) => t.luns.map((l) => l.backstore.id)));
      const toOpen = ids.filter((id) => !missing.has(id) && servable.has(id)).map((id) => byId.get(id)!);
      for (let i = 0; i < toOpen.length && this.engine !== null; i += RESTORE_CONCURRENCY) {
        await Promise.all(toOpen.slice(i, i + RESTORE_CONCURRENCY).map((b) => this.open(b).catch(() => undefined)));
      }
      for (const t of targets) {
        const gone = t.luns.map((l) => missing.get(l.backstore.id)).find((p) => p !== undefined) ?? refused.get(t.id);
        if (gone !== undefined) {
          this.store.targets.setEnabled(t.id, false, gone);
          this.opts.log('warn', `target ${t.iqn} is disabled: ${gone}`);
          report.disabled.push({ iqn: t.iqn, reason: gone });
          continue;
        }
        if (this.engine === null) {
          report.failed.push({ iqn: t.iqn, reason: this.engineError ?? 'not serving' });
          continue;
        }
        try {
          await this.activate(t);
          report.served++;
        } catch (err) {
          const reason = (err as Error).message;
          this.live.set(t.iqn, { state: 'failed', reason, luns: new Map() });
          this.opts.log('error', `target ${t.iqn} could not start: ${reason}`);
          report.failed.push({ iqn: t.iqn, reason });
        }
      }
      report.ms = Math.round(performance.now() - started);
      this.opts.log('info', `restored ${report.served} target(s) in ${report.ms} ms` + (report.disabled.length > 0 ? `; ${report.disabled.length} disabled (backing gone)` : ''));
      this.emitTargets();
      return report;
    });
  }

  /** Why the engine is not listening (a portal in use, say), or null. */
  listenError(): string | null {
    return this.engineError;
  }

  /** Bound portals (after start), as HOST:PORT. */
  portals(): string[] {
    return this.listening.map(formatPortal);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    const engine = this.engine;
    this.engine = null;
    if (engine !== null) await engine.close();
    await Promise.all(
      [...this.opened.values()].map((p) =>
        p.then(
          (o) => {
            if (o.closeTimer !== null) clearTimeout(o.closeTimer);
            return new Promise<void>((r) => o.backstore.close(() => r()));
          },
          () => undefined,
        ),
      ),
    );
    this.opened.clear();
    this.live.clear();
  }

  private portalsToListen(): PortalConfig[] {
    if (this.opts.portals !== undefined && this.opts.portals.length > 0) return this.opts.portals;
    const all = this.store.portals.list().map((p) => ({ host: p.host, port: p.port }));
    const unique = new Map(all.map((p) => [formatPortal(p), p]));
    if (unique.size > 0) return [...unique.values()];
    return [parsePortal(this.opts.defaultPortal)];
  }

  // -------------------------------------------------------------------------
  // The engine side of one target
  // -------------------------------------------------------------------------

  private async activate(t: Target): Promise<void> {
    const engine = this.engine;
    if (engine === null) throw new ApiError('NOT_SERVING', this.engineError ?? 'the target engine is not running');
    const luns = new Map<number, number>();
    const opened: Array<{ lun: number; id: number; backstore: OpenBackstore; readOnly: boolean; seed: string }> = [];
    try {
      for (const l of t.luns) {
        const o = await this.acquire(l.backstore);
        opened.push({ lun: l.lun, id: l.backstore.id, backstore: o, readOnly: l.readOnly, seed: l.backstore.wwn });
        luns.set(l.lun, l.backstore.id);
      }
      engine.addTarget({
        iqn: t.iqn,
        ...(t.alias !== null ? { alias: t.alias } : {}),
        luns: opened.map((o) => ({ lun: o.lun, backstore: o.backstore, readOnly: o.readOnly, seed: o.seed })),
        acl: { allow: this.accessList(t) },
      });
    } catch (err) {
      for (const o of opened) this.release(o.id);
      throw err;
    }
    this.live.set(t.iqn, { state: 'serving', reason: null, luns });
  }

  private deactivate(iqn: string): void {
    const live = this.live.get(iqn);
    this.live.delete(iqn);
    if (live === undefined || live.state !== 'serving' || this.engine === null) return;
    if (this.engine.targetNames().includes(iqn)) this.engine.removeTarget(iqn);
    for (const id of live.luns.values()) this.release(id);
  }

  /** The engine's ACL of a stored target: its ACL entries with their CHAP credentials. */
  private accessList(t: Target): InitiatorAccess[] {
    return t.acls.map((a) => {
      const c = this.store.acls.credentials(a.id);
      return {
        name: a.initiatorIqn,
        ...(c.chap !== null ? { chap: c.chap } : {}),
        ...(c.mutualChap !== null ? { mutualChap: c.mutualChap } : {}),
      };
    });
  }

  /** Opens a stored backstore once, however many LUNs use it (not counted: see acquire). */
  private open(b: StoredBackstore): Promise<OpenedBackstore> {
    let p = this.opened.get(b.id);
    if (p === undefined) {
      p = openBackstore(backstoreSpecOf(b)).then((backstore): OpenedBackstore => ({ backstore, refs: 0, closeTimer: null }));
      this.opened.set(b.id, p);
      p.catch(() => this.opened.delete(b.id));
    }
    return p;
  }

  /** Opens (or shares) a stored backstore for one more LUN. */
  private async acquire(b: StoredBackstore): Promise<OpenBackstore> {
    const o = await this.open(b);
    o.refs++;
    if (o.closeTimer !== null) {
      clearTimeout(o.closeTimer);
      o.closeTimer = null;
    }
    return o.backstore;
  }

  private release(id: number): void {
    const p = this.opened.get(id);
    if (p === undefined) return;
    void p.then((o) => {
      o.refs--;
      if (o.refs > 0 || o.closeTimer !== null) return;
      // In-flight commands of a removed LUN finish first; until it closes, a new LUN on it reuses it.
      o.closeTimer = setTimeout(() => {
        o.closeTimer = null;
        if (o.refs > 0 || this.opened.get(id) !== p) return;
        this.opened.delete(id);
        o.backstore.close(() => undefined);
      }, 1000);
      o.closeTimer.unref();
    });
  }

  // -------------------------------------------------------------------------
  // Access requests
  // -------------------------------------------------------------------------

  private onLoginRefused(ev: { initiatorName: string; address: string; targetName: string; statusClass: number; statusDetail: number }): void {
    // 0x0202 Authorization failure: the initiator is not in the target's ACL (RFC 7143 §11.13.5).
    if (ev.statusClass !== 2 || ev.statusDetail !== 2 || ev.targetName === '') return;
    this.recordRequest(ev.initiatorName, ev.address, ev.targetName);
  }

  /**
   * Records that an initiator wants a target it is not allowed on — it was
   * refused at login, or discovery (SendTargets) left the target out, which is
   * all a Windows or open-iscsi user sees before ever trying to log in.
   */
  private recordRequest(initiatorName: string, address: string, targetName: string): void {
    if (initiatorName === '') return;
    const key = `${normalizeIscsiName(initiatorName)}\u0000${normalizeIscsiName(targetName)}`;
    const now = Date.now();
    if (now - (this.lastRecorded.get(key) ?? 0) < REQUEST_RECORD_INTERVAL_MS) return;
    this.lastRecorded.set(key, now);
    if (this.lastRecorded.size > 10_000) this.lastRecorded.clear();
    try {
      if (this.store.targets.get(targetName) === undefined) return;
      // A flood of made-up names must not fill the DB: a few new requests a minute, and a cap on pending ones.
      const isNew = this.store.accessRequests.find(initiatorName, targetName).length === 0;
      if (isNew) {
        if (now - this.newRequestWindow.start > 60_000) this.newRequestWindow = { start: now, count: 0, warned: false };
        if (this.newRequestWindow.count >= NEW_REQUESTS_PER_MINUTE || this.store.accessRequests.list({ pending: true }).length >= MAX_PENDING_REQUESTS) {
          if (!this.newRequestWindow.warned) this.opts.log('warn', `too many new access requests; not recording ${initiatorName} (${address}) for now`);
          this.newRequestWindow.warned = true;
          return;
        }
        this.newRequestWindow.count++;
      }
      const r = this.store.accessRequests.record({ initiatorIqn: initiatorName, address, targetIqn: targetName });
      if (r.decision === null) {
        if (r.isNew) this.opts.log('info', `${r.initiatorIqn} (${r.address}) asked for ${r.targetIqn}: waiting for a decision`);
        this.opts.emit('requests.new', { ...requestView(r), isNew: r.isNew });
      }
    } catch (err) {
      // A name the store refuses (the engine accepts wire names the store's stricter check does not) is only logged.
      this.opts.log('warn', `could not record an access request: ${(err as Error).message}`);
    }
  }

  // -------------------------------------------------------------------------
  // Views
  // -------------------------------------------------------------------------

  view(t: Target): TargetView {
    const live = this.live.get(t.iqn);
    const sessions = this.engine === null ? 0 : this.engine.sessions().filter((s) => s.targetName === t.iqn && s.sessionType === 'Normal').length;
    let state: TargetView['state'];
    let reason: string | null = null;
    if (!t.enabled) {
      state = 'disabled';
      reason = t.disabledReason;
    } else if (!this.opts.serving) {
      state = 'stopped';
    } else if (live === undefined) {
      state = 'failed';
      reason = this.engineError ?? 'not started';
    } else {
      state = live.state;
      reason = live.reason;
    }
    const portals = this.opts.serving ? this.portals() : this.portalsToListen().map(formatPortal);
    return {
      id: t.id,
      iqn: t.iqn,
      alias: t.alias,
      enabled: t.enabled,
      state,
      reason,
      luns: t.luns.map((l) => ({
        lun: l.lun,
        readOnly: l.readOnly,
        backstore: {
          id: l.backstore.id,
          name: l.backstore.name,
          kind: l.backstore.kind,
          path: l.backstore.path,
          sizeBytes: l.backstore.sizeBytes,
          readOnly: l.backstore.readOnly,
          thin: l.backstore.thin,
        },
      })),
      acls: t.acls.map((a): AclView => ({ id: a.id, initiatorIqn: a.initiatorIqn, chapUser: a.chapUser, mutualUser: a.mutualUser })),
      portals,
      sessions,
    };
  }

  list(): TargetView[] {
    return this.store.targets.list().map((t) => this.view(t));
  }

  private requireTarget(ref: string | number): Target {
    const t = this.store.targets.get(ref);
    if (t === undefined) throw new ApiError('TARGET_NOT_FOUND', `There is no target ${ref} — see \`spindle targets list\`.`, { target: 'no such target' });
    return t;
  }

  get(ref: string | number): TargetView {
    return this.view(this.requireTarget(ref));
  }

  private emitTargets(): void {
    this.opts.emit('targets.changed', this.list());
  }

  // -------------------------------------------------------------------------
  // Changes
  // -------------------------------------------------------------------------

  create(p: {
    iqn: string;
    alias?: string | undefined;
    enabled?: boolean | undefined;
    luns?: Array<{ lun: number; backstore: BackstoreRefParams; readOnly?: boolean | undefined }> | undefined;
    acls?: Array<{ initiatorIqn: string; chap?: ChapInput | undefined; mutualChap?: ChapInput | undefined }> | undefined;
  }): Promise<TargetView> {
    return this.serial(async () => {
      const luns = p.luns ?? [];
      const createdImages: string[] = [];
      const refs: BackstoreRef[] = [];
      try {
        for (let i = 0; i < luns.length; i++) {
          refs.push(await this.prepareBackstore(luns[i]!.backstore, luns[i]!.readOnly ?? false, `luns.${i}.backstore`, createdImages));
        }
        const t = this.store.targets.create({
          iqn: p.iqn,
          ...(p.alias !== undefined ? { alias: p.alias } : {}),
          enabled: p.enabled ?? true,
          luns: luns.map((l, i) => ({ lun: l.lun, backstore: refs[i]!, ...(l.readOnly !== undefined ? { readOnly: l.readOnly } : {}) })),
          acls: (p.acls ?? []).map((a) => ({ initiatorIqn: a.initiatorIqn, chap: a.chap ?? null, mutualChap: a.mutualChap ?? null })),
        });
        this.opts.log('info', `target ${t.iqn} created with ${t.luns.length} LUN(s) and ${t.acls.length} allowed initiator(s)`);
        if (t.enabled && this.opts.serving) await this.tryActivate(t);
        this.emitTargets();
        return this.view(this.requireTarget(t.id));
      } catch (err) {
        await removeFiles(createdImages);
        throw err;
      }
    });
  }

  /** Activates a target that is enabled in the store; a failure leaves it 'failed' with the reason. */
  private async tryActivate(t: Target): Promise<void> {
    try {
      await this.activate(t);
    } catch (err) {
      const reason = (err as Error).message;
      this.live.set(t.iqn, { state: 'failed', reason, luns: new Map() });
      this.opts.log('error', `target ${t.iqn} could not start: ${reason}`);
      this.opts.emit('service.error', { source: 'targets', message: `${t.iqn}: ${reason}` });
    }
  }

  update(p: { target: string | number; alias?: string | null | undefined }): Promise<TargetView> {
    return this.serial(() => {
      const t = this.requireTarget(p.target);
      const updated = p.alias !== undefined ? this.store.targets.update(t.id, { alias: p.alias }) : t;
      if (this.live.get(t.iqn)?.state === 'serving' && this.engine !== null) this.engine.setAlias(t.iqn, updated.alias ?? undefined);
      this.emitTargets();
      return this.view(updated);
    });
  }

  remove(p: { target: string | number; keepBackstores?: boolean | undefined }): Promise<{ deleted: string }> {
    return this.serial(() => {
      const t = this.requireTarget(p.target);
      this.store.transaction(() => {
        this.store.targets.remove(t.id, { keepBackstores: p.keepBackstores ?? false });
        // Its requests go too: an old "allowed" one would swallow a refusal for a new target of the same name.
        for (const r of this.store.accessRequests.list({ target: t.iqn })) this.store.accessRequests.remove(r.id);
      });
      this.deactivate(t.iqn);
      this.opts.log('info', `target ${t.iqn} removed`);
      this.emitTargets();
      return { deleted: t.iqn };
    });
  }

  setEnabled(p: { target: string | number }, enabled: boolean): Promise<TargetView> {
    return this.serial(async () => {
      const t = this.requireTarget(p.target);
      if (!enabled) {
        this.store.targets.setEnabled(t.id, false);
        this.deactivate(t.iqn);
        this.opts.log('info', `target ${t.iqn} disabled`);
        this.emitTargets();
        return this.view(this.requireTarget(t.id));
      }
      for (const l of t.luns) {
        const problem = await backingProblem(l.backstore);
        if (problem !== null) {
          throw new ApiError('BACKSTORE_MISSING', `${t.iqn} cannot be enabled: ${problem}`, { target: problem });
        }
        // The disk may have become the system disk, or been mounted, since it was added.
        if (l.backstore.kind === 'block') await this.checkDisk(l.backstore.path ?? '', l.readOnly, 'target');
      }
      const now = this.store.targets.setEnabled(t.id, true);
      // A target that failed to start (a portal, a backstore) is tried again.
      if (this.live.get(now.iqn)?.state === 'failed') this.live.delete(now.iqn);
      if (this.opts.serving && !this.live.has(now.iqn)) await this.tryActivate(now);
      this.opts.log('info', `target ${t.iqn} enabled`);
      this.emitTargets();
      return this.view(this.requireTarget(t.id));
    });
  }

  addLun(p: { target: string | number; lun: number; backstore: BackstoreRefParams; readOnly?: boolean | undefined }): Promise<TargetView> {
    return this.serial(async () => {
      const t = this.requireTarget(p.target);
      const createdImages: string[] = [];
      try {
        const ref = await this.prepareBackstore(p.backstore, p.readOnly ?? false, 'backstore', createdImages);
        const lun = this.store.luns.add(t.id, { lun: p.lun, backstore: ref, ...(p.readOnly !== undefined ? { readOnly: p.readOnly } : {}) });
        const live = this.live.get(t.iqn);
        if (live?.state === 'serving' && this.engine !== null) {
          try {
            const bs = await this.acquire(lun.backstore);
            try {
              this.engine.addLun(t.iqn, { lun: lun.lun, backstore: bs, readOnly: lun.readOnly, seed: lun.backstore.wwn });
            } catch (err) {
              this.release(lun.backstore.id);
              throw err;
            }
            live.luns.set(lun.lun, lun.backstore.id);
          } catch (err) {
            // The store must not promise a LUN the engine does not serve.
            this.store.luns.remove(t.id, lun.lun);
            throw err;
          }
        }
        this.opts.log('info', `LUN ${lun.lun} of ${t.iqn} added (${lun.backstore.kind} ${lun.backstore.path ?? formatBytes(lun.backstore.sizeBytes ?? 0)})`);
        this.emitTargets();
        return this.view(this.requireTarget(t.id));
      } catch (err) {
        await removeFiles(createdImages);
        throw err;
      }
    });
  }

  removeLun(p: { target: string | number; lun: number }): Promise<TargetView> {
    return this.serial(() => {
      const t = this.requireTarget(p.target);
      if (!this.store.luns.remove(t.id, p.lun)) {
        throw new ApiError('LUN_NOT_FOUND', `${t.iqn} has no LUN ${p.lun}.`, { lun: 'no such LUN' });
      }
      const live = this.live.get(t.iqn);
      if (live?.state === 'serving' && this.engine !== null) {
        this.engine.removeLun(t.iqn, p.lun);
        const id = live.luns.get(p.lun);
        live.luns.delete(p.lun);
        if (id !== undefined) this.release(id);
      }
      this.opts.log('info', `LUN ${p.lun} of ${t.iqn} removed`);
      this.emitTargets();
      return this.view(this.requireTarget(t.id));
    });
  }

  addAcl(p: { target: string | number; initiatorIqn: string; chap?: ChapInput | undefined; mutualChap?: ChapInput | undefined }): Promise<TargetView> {
    return this.serial(() => {
      const t = this.requireTarget(p.target);
      // One transaction around both: an entry the engine refuses is not stored either.
      const acl = this.store.transaction(() => {
        const added = this.store.acls.add(t.id, { initiatorIqn: p.initiatorIqn, chap: p.chap ?? null, mutualChap: p.mutualChap ?? null });
        this.applyAccess(t.iqn, added.initiatorIqn, p.chap ?? null, p.mutualChap ?? null);
        return added;
      });
      this.opts.log('info', `${acl.initiatorIqn} may now log in to ${t.iqn}${acl.chapUser !== null ? ' (with CHAP)' : ''}`);
      this.emitTargets();
      return this.view(this.requireTarget(t.id));
    });
  }

  removeAcl(p: { target: string | number; initiatorIqn: string }): Promise<TargetView> {
    return this.serial(() => {
      const t = this.requireTarget(p.target);
      if (!this.store.acls.removeFor(t.id, p.initiatorIqn)) {
        throw new ApiError('ACL_NOT_FOUND', `${p.initiatorIqn} is not in the access list of ${t.iqn}.`, { initiatorIqn: 'not in the access list' });
      }
      if (this.live.get(t.iqn)?.state === 'serving' && this.engine !== null) this.engine.disallowInitiator(t.iqn, p.initiatorIqn, true);
      // An old "allowed" request would swallow the next refusal: forget it, so a new try asks again.
      for (const r of this.store.accessRequests.find(p.initiatorIqn, t.iqn)) this.store.accessRequests.remove(r.id);
      this.opts.log('info', `${p.initiatorIqn} removed from the access list of ${t.iqn}`);
      this.emitTargets();
      return this.view(this.requireTarget(t.id));
    });
  }

  private applyAccess(iqn: string, initiator: string, chap: ChapInput | null, mutualChap: ChapInput | null): void {
    if (this.live.get(iqn)?.state !== 'serving' || this.engine === null) return;
    this.engine.allowInitiator(iqn, initiator, {
      ...(chap !== null ? { chap } : {}),
      ...(mutualChap !== null ? { mutualChap } : {}),
    });
  }

  // ---- access requests ----------------------------------------------------

  requests(p: { pending?: boolean | undefined } | undefined): AccessRequestView[] {
    const filter = p?.pending !== undefined ? { pending: p.pending } : {};
    return this.store.accessRequests.list(filter).map(requestView);
  }

  private matchRequests(p: { id?: number | undefined; initiatorIqn?: string | undefined; target?: string | number | undefined }): number[] {
    if (p.id !== undefined) {
      if (this.store.accessRequests.get(p.id) === undefined) {
        throw new ApiError('REQUEST_NOT_FOUND', `There is no access request ${p.id} — see \`spindle requests list\`.`, { id: 'no such request' });
      }
      return [p.id];
    }
    const targetIqn = p.target !== undefined ? this.requireTarget(p.target).iqn : undefined;
    const found = this.store.accessRequests.find(p.initiatorIqn!, targetIqn);
    if (found.length === 0) {
      const where = targetIqn !== undefined ? ` for ${targetIqn}` : '';
      throw new ApiError('REQUEST_NOT_FOUND', `${p.initiatorIqn} has not asked for access${where} — see \`spindle requests list\`.`, {
        initiatorIqn: 'no request from this initiator',
      });
    }
    const pending = found.filter((r) => r.decision === null);
    const chosen = pending.length > 0 ? pending : found;
    // One name, several targets: letting it into all of them at once is too easy a mistake (two writers corrupt a file system).
    if (targetIqn === undefined && chosen.length > 1) {
      throw new ApiError(
        'REQUEST_AMBIGUOUS',
        `${p.initiatorIqn} asked for ${chosen.length} targets (${chosen.map((r) => r.targetIqn).join(', ')}) — say which one (--target IQN), or use the request id.`,
        { target: 'say which target' },
      );
    }
    return chosen.map((r) => r.id);
  }

  allowRequests(p: { id?: number | undefined; initiatorIqn?: string | undefined; target?: string | number | undefined }): Promise<AccessRequestView[]> {
    return this.serial(() => {
      const out: AccessRequestView[] = [];
      for (const id of this.matchRequests(p)) {
        // One transaction around both: if the engine refuses the entry, the store keeps neither the ACL nor the decision.
        const { request, acl } = this.store.transaction(() => {
          const done = this.store.accessRequests.allow(id);
          const creds = this.store.acls.credentials(done.acl.id);
          this.applyAccess(normalizeIscsiName(done.request.targetIqn), done.acl.initiatorIqn, creds.chap, creds.mutualChap);
          return done;
        });
        this.opts.log('info', `access request ${id}: ${request.initiatorIqn} allowed on ${request.targetIqn}`);
        out.push(requestView(request));
      }
      this.emitTargets();
      this.opts.emit('requests.decided', out);
      return out;
    });
  }

  denyRequests(p: { id?: number | undefined; initiatorIqn?: string | undefined; target?: string | number | undefined }): Promise<AccessRequestView[]> {
    return this.serial(() => {
      const out = this.matchRequests(p).map((id) => {
        const r = this.store.accessRequests.decide(id, 'denied');
        // Denying one that was allowed takes the access away again, sessions included.
        const target = this.store.targets.get(r.targetIqn);
        if (target !== undefined && this.store.acls.removeFor(target.id, r.initiatorIqn)) {
          if (this.live.get(target.iqn)?.state === 'serving' && this.engine !== null) this.engine.disallowInitiator(target.iqn, r.initiatorIqn, true);
          this.opts.log('info', `${r.initiatorIqn} removed from the access list of ${target.iqn}`);
        }
        this.opts.log('info', `access request ${id}: ${r.initiatorIqn} denied on ${r.targetIqn}`);
        return requestView(r);
      });
      this.emitTargets();
      this.opts.emit('requests.decided', out);
      return out;
    });
  }

  // ---- targetcli interop ------------------------------------------------------

  /** LIO's saveconfig.json of the whole configuration (with CHAP secrets, as LIO's own file has them). */
  exportLio(): { json: string } {
    return { json: `${JSON.stringify(exportLio(readConfig(this.store)), null, 2)}\n` };
  }

  /** Maps a saveconfig.json into the store (one transaction) and serves what it created. */
  importLio(p: { json: string; replace?: boolean | undefined }): Promise<LioImportReport> {
    return this.serial(async () => {
      const { config, unmapped } = importLio(p.json);
      await this.screenImportedDisks(config, unmapped);
      const applied = applyConfig(this.store, config, { replace: p.replace === true });
      // Only once the store took it: the old targets stop (a replaced one starts again below with its new config).
      if (p.replace === true) for (const iqn of [...this.live.keys()]) this.deactivate(iqn);
      if (this.opts.serving) {
        for (const t of this.store.targets.list()) {
          if (this.live.get(t.iqn)?.state === 'failed') this.live.delete(t.iqn);
          if (!t.enabled || this.live.has(t.iqn)) continue;
          const gone = (await Promise.all(t.luns.map((l) => backingProblem(l.backstore)))).find((x) => x !== null);
          if (gone !== undefined && gone !== null) {
            this.store.targets.setEnabled(t.id, false, gone);
            continue;
          }
          await this.tryActivate(t);
        }
      }
      this.opts.log('info', `imported a targetcli configuration: ${applied.created.length} target(s) created, ${unmapped.length} item(s) not mapped, ${applied.skipped.length} skipped`);
      this.emitTargets();
      return { created: applied.created, unmapped, skipped: applied.skipped };
    });
  }

  /**
   * The disk classifier applies to imported block backstores as to new ones:
   * a LUN on a disk it refuses (the system disk, a mounted one) is left out
   * and reported; a device that does not exist now is reported and stored
   * (its target comes up disabled until it appears).
   */
  private async screenImportedDisks(config: SpindleConfig, unmapped: Array<{ path: string; reason: string }>): Promise<void> {
    const blocks = config.backstores.filter((b) => b.kind === 'block' && b.path !== undefined);
    if (blocks.length === 0) return;
    const report = await scanDisks().catch(() => null);
    for (const b of blocks) {
      const path = await realPath(b.path!);
      // A block storage object no LUN uses is still a stored backstore a LUN could name later: judge it (read-only at best) too.
      if (!config.targets.some((t) => t.luns.some((l) => l.backstore === b.name))) {
        const problem = report === null ? 'the disk list could not be read to check it' : diskProblem(report, path, true);
        if (problem !== null) {
          config.backstores.splice(config.backstores.indexOf(b), 1);
          unmapped.push({ path: `storage object ${b.name}`, reason: `left out: ${b.path} ${problem}` });
        }
        continue;
      }
      const exists = (await stat(path).catch(() => null))?.isBlockDevice() === true;
      for (const t of config.targets) {
        for (const l of [...t.luns]) {
          if (l.backstore !== b.name) continue;
          if (!exists) {
            unmapped.push({ path: `${t.iqn} LUN ${l.lun}`, reason: `device ${b.path} does not exist now; the LUN is kept and its target stays disabled until it does` });
            continue;
          }
          const problem = report === null ? 'the disk list could not be read to check it' : diskProblem(report, path, l.readOnly || b.readOnly);
          if (problem === null) continue;
          t.luns.splice(t.luns.indexOf(l), 1);
          unmapped.push({ path: `${t.iqn} LUN ${l.lun}`, reason: `left out: ${b.path} ${problem}` });
        }
      }
    }
  }

  // ---- sessions -------------------------------------------------------------

  sessions(): SessionView[] {
    return this.engine === null ? [] : this.engine.sessions().map(sessionView);
  }

  kick(id: string): { kicked: string } {
    if (this.engine === null || !this.engine.closeSession(id, 'closed by the user')) {
      throw new ApiError('SESSION_NOT_FOUND', `There is no session ${id} — see the sessions list.`, { id: 'no such session' });
    }
    return { kicked: id };
  }

  // ---- statistics -----------------------------------------------------------

  /** Totals and per-second rates of every served LUN and live session since the last call (the 1 Hz tick). */
  ioTick(now = Date.now()): { luns: LunStatsTick[]; sessions: SessionStatsTick[] } {
    if (this.engine === null) return { luns: [], sessions: [] };
    const luns = this.engine.allLunStats().map(({ target, lun, stats }) => ({ target, lun, ...this.rates.update(`lun ${target}/${lun}`, stats, now) }));
    const sessions = this.engine
      .sessions()
      .filter((s) => s.sessionType === 'Normal')
      .map((s) => ({ id: s.id, target: s.targetName, initiator: s.initiatorName, ...this.rates.update(`session ${s.id}`, s.stats, now) }));
    this.rates.sweep(now);
    return { luns, sessions };
  }

  /** Device paths of block backstores (for the disk list's "in use by Spindle"). */
  blockPaths(): Set<string> {
    return new Set(
      this.store.backstores
        .list()
        .filter((b) => b.kind === 'block' && b.path !== null)
        .map((b) => b.path!),
    );
  }

  // ---- images ---------------------------------------------------------------

  async createImage(p: { path: string; sizeBytes: number; thin?: boolean | undefined }, field = 'path'): Promise<ImageView & { warning: string | null }> {
    const path = resolve(p.path);
    const free = await statfs(dirname(path)).then(
      (s) => s.bavail * s.bsize,
      () => null,
    );
    if (free !== null && p.sizeBytes > free) {
      throw new ApiError(
        'IMAGE_NO_SPACE',
        `Cannot create ${path}: only ${formatBytes(free)} free on its volume, the image needs ${formatBytes(p.sizeBytes)} — choose a smaller size or another volume.`,
        { sizeBytes: `only ${formatBytes(free)} free` },
      );
    }
    try {
      const img = await createImage(path, p.sizeBytes, { thin: p.thin ?? true });
      this.opts.log('info', `image ${img.path} created (${formatBytes(img.sizeBytes)}, ${img.thin ? 'thin' : 'thick'})`);
      return { path: img.path, sizeBytes: img.sizeBytes, thin: img.thin, warning: img.warning };
    } catch (err) {
      if (err instanceof BackstoreError) throw new ApiError(err.code, err.message, { [field]: err.message });
      throw err;
    }
  }

  /**
   * Checks one LUN's backstore before anything is stored: an image file must
   * exist (or be created now, when asked), a device must be a disk the
   * classifier lets us share.
   */
  private async prepareBackstore(ref: BackstoreRefParams, lunReadOnly: boolean, field: string, created: string[]): Promise<BackstoreRef> {
    if (!('kind' in ref)) {
      // An existing backstore: a disk under it is judged now, like a new one.
      const known = this.store.backstores.get('id' in ref ? ref.id : ref.name);
      if (known !== undefined && known.kind === 'block') await this.checkDisk(known.path ?? '', lunReadOnly || known.readOnly, field);
      return ref;
    }
    if (ref.kind === 'memory') {
      // Memory LUNs fill as initiators write: one larger than half of RAM could take the machine down.
      const limit = Math.floor(totalmem() / 2);
      if (ref.sizeBytes > limit) {
        throw new ApiError('MEMORY_LUN_TOO_BIG', `A memory LUN of ${formatBytes(ref.sizeBytes)} is more than half of this machine's memory (${formatBytes(limit)}); use an image file.`, {
          [`${field}.sizeBytes`]: `at most ${formatBytes(limit)}`,
        });
      }
      return { kind: 'memory', sizeBytes: ref.sizeBytes, ...(ref.name !== undefined ? { name: ref.name } : {}) };
    }
    const path = resolve(ref.path);
    const known = this.store.backstores.findByPath(path);
    if (ref.kind === 'file') {
      const st = await stat(path).catch(() => null);
      if (st === null) {
        if (ref.create !== true) {
          throw new ApiError('BACKSTORE_MISSING', `${path} does not exist — give its size to create it (file:PATH:SIZE), or check the path.`, {
            [`${field}.path`]: 'no such file',
          });
        }
        if (ref.sizeBytes === undefined) {
          throw new ApiError('INVALID_PARAMS', `${path} does not exist; give a size to create it.`, { [`${field}.sizeBytes`]: 'needed to create the image' });
        }
        const img = await this.createImage({ path, sizeBytes: ref.sizeBytes, thin: ref.thin ?? true }, `${field}.path`);
        created.push(img.path);
      } else if (!st.isFile()) {
        const hint = st.isBlockDevice() ? ` — it is a block device: use block:${path}` : '';
        throw new ApiError('BACKSTORE_WRONG_KIND', `${path} is not an image file${hint}.`, { [`${field}.path`]: 'not a regular file' });
      } else if (ref.sizeBytes !== undefined && known === undefined && st.size !== ref.sizeBytes) {
        throw new ApiError(
          'BACKSTORE_SIZE_MISMATCH',
          `${path} already exists with a size of ${formatBytes(st.size)}, not ${formatBytes(ref.sizeBytes)} — leave the size out to use it as it is.`,
          { [`${field}.sizeBytes`]: 'differs from the existing file' },
        );
      }
      const size = st?.size ?? ref.sizeBytes;
      return {
        kind: 'file',
        path,
        ...(size !== undefined ? { sizeBytes: size } : {}),
        ...(ref.readOnly !== undefined ? { readOnly: ref.readOnly } : {}),
        ...(ref.thin !== undefined ? { thin: ref.thin } : {}),
        ...(ref.name !== undefined ? { name: ref.name } : {}),
      };
    }
    await this.checkDisk(path, lunReadOnly || ref.readOnly === true, `${field}.path`);
    return { kind: 'block', path, ...(ref.readOnly !== undefined ? { readOnly: ref.readOnly } : {}), ...(ref.name !== undefined ? { name: ref.name } : {}) };
  }

  /** A whole disk or partition the classifier allows (read-write, or read-only for a read-only LUN). */
  private async checkDisk(path: string, readOnly: boolean, field: string): Promise<void> {
    const st = await stat(path).catch(() => null);
    if (st === null) throw new ApiError('BACKSTORE_MISSING', `${path} does not exist — check the device path (see \`spindle disks\`).`, { [field]: 'no such device' });
    if (!st.isBlockDevice()) throw new ApiError('BACKSTORE_WRONG_KIND', `${path} is not a block device — use file:${path} for an image file.`, { [field]: 'not a block device' });
    const problem = diskProblem(await scanDisks(), await realPath(path), readOnly);
    if (problem !== null) throw new ApiError('DISK_REFUSED', `${path} ${problem}.`, { [field]: problem });
  }
}

/**
 * Why the disk classifier does not let `path` (a whole disk or one of its
 * partitions) be exported, or null. Read-only exports only need a disk that
 * allows read-only.
 */
export function diskProblem(report: DiskReport, path: string, readOnly: boolean): string | null {
  for (const d of report.disks) {
    const part = d.partitions.find((p) => samePath(p.path, path));
    if (!samePath(d.path, path) && part === undefined) continue;
    const blocking = d.constraints.filter((c) => c.allows === 'no' || (!readOnly && c.allows === 'read-only'));
    if (blocking.length === 0) return null;
    const why = blocking.map((c) => c.message).join('; ');
    return `${blocking.some((c) => c.allows === 'no') ? 'cannot be shared' : 'can only be shared read-only'}: ${why}`;
  }
  return 'is not a disk Spindle can see (see `spindle disks`)';
}

/** Why a stored backstore cannot be opened now (its file or device is gone), or null. */
async function backingProblem(b: StoredBackstore): Promise<string | null> {
  if (b.kind === 'memory' || b.path === null) return null;
  const st = await stat(b.path).catch((err: NodeJS.ErrnoException) => err);
  if (st instanceof Error) {
    return st.code === 'ENOENT' ? `${b.kind === 'file' ? 'image file' : 'device'} ${b.path} is gone` : `${b.path}: ${st.message}`;
  }
  if (b.kind === 'file' && !st.isFile()) return `${b.path} is no longer a regular file`;
  if (b.kind === 'block' && !st.isBlockDevice()) return `${b.path} is no longer a block device`;
  return null;
}

/** The device a path names (a /dev/disk/by-id link resolves to /dev/sdX, as lsblk reports it). */
async function realPath(path: string): Promise<string> {
  return realpath(path).catch(() => path);
}

async function removeFiles(paths: string[]): Promise<void> {
  await Promise.all(paths.map((p) => rm(p, { force: true }).catch(() => undefined)));
}

function requestView(r: {
  id: number;
  initiatorIqn: string;
  address: string;
  targetIqn: string;
  firstSeen: string;
  lastSeen: string;
  count: number;
  decision: 'allowed' | 'denied' | null;
}): AccessRequestView {
  return {
    id: r.id,
    initiatorIqn: r.initiatorIqn,
    address: r.address,
    targetIqn: r.targetIqn,
    firstSeen: r.firstSeen,
    lastSeen: r.lastSeen,
    count: r.count,
    decision: r.decision,
  };
}

export function sessionView(s: SessionInfo): SessionView {
  return {
    id: s.id,
    targetIqn: s.targetName,
    initiatorIqn: s.initiatorName,
    initiatorAlias: s.initiatorAlias ?? null,
    address: s.address,
    type: s.sessionType,
    since: s.since.toISOString(),
    headerDigest: s.headerDigest,
    dataDigest: s.dataDigest,
    io: { readBytes: s.stats.readBytes, writeBytes: s.stats.writeBytes, readOps: s.stats.readOps, writeOps: s.stats.writeOps },
  };
}

/** Per-second rates from running totals, per series; series not updated in a tick are forgotten. */
class RateTracker {
  private last = new Map<string, { at: number; total: IoCounters }>();
  private seen = new Set<string>();

  update(key: string, s: IoCounters, now: number): { total: IoCounters; rate: IoCounters } {
    const total = { readBytes: s.readBytes, writeBytes: s.writeBytes, readOps: s.readOps, writeOps: s.writeOps };
    const prev = this.last.get(key);
    const secs = prev !== undefined ? Math.max(0.001, (now - prev.at) / 1000) : 1;
    const rate = (k: keyof IoCounters) => (prev === undefined ? 0 : Math.max(0, Math.round((total[k] - prev.total[k]) / secs)));
    this.last.set(key, { at: now, total });
    this.seen.add(key);
    return { total, rate: { readBytes: rate('readBytes'), writeBytes: rate('writeBytes'), readOps: rate('readOps'), writeOps: rate('writeOps') } };
  }

  sweep(_now: number): void {
    for (const k of this.last.keys()) if (!this.seen.has(k)) this.last.delete(k);
    this.seen.clear();
  }
}
