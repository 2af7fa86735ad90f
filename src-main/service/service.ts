// The app's core: owns the store and the disk scanner, implements every
// method of the typed API and emits its events. Transports (Electron IPC, the
// headless WebSocket server, the CLI) only carry calls to `call` and events
// from `on`; none of them knows what a method does.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { scanDisks } from '../disks';
import { openStore, type Store } from '../store';
import {
  ApiError,
  parseParams,
  type AppInfo,
  type EventName,
  type EventPayloads,
  type MethodName,
  type MethodParams,
  type MethodResult,
  type LunStatsTick,
  type RemoteView,
  type SessionStatsTick,
  type SpindleApi,
  type StatsTick,
} from './api/schema';
import { EventBus } from './events';
import { mergeSettings } from './settings';
import { TargetService, type RestoreReport } from './targets/target-service';
import { ISCSI_PORT, discoverTargets } from '../initiator/discovery';
import { defaultInitiatorName } from '../initiator/identity';
import { isRepoError } from '../store';
import type { PortalConfig, TargetEngineOptions } from '../target/target-engine';
import type { DiskReport } from '../disks/types';
import type { RemoteTarget, SecretCipher, StatsSample } from '../store';
import type { z } from 'zod';
import type { methodParams } from './api/schema';

export interface ServiceOptions {
  dataDir: string;
  transport: AppInfo['transport'];
  /** Path of a better-sqlite3 binary built for this runtime's ABI (Electron). */
  nativeBinding?: string;
  version?: string;
  /**
   * Serve the stored targets (default true). false: the CLI changing the
   * store while no `spindle serve` runs — nothing listens, nothing polls.
   */
  serveTargets?: boolean;
  /** Encrypts CHAP secrets at rest (the desktop shell passes Electron's safeStorage). */
  secretCipher?: SecretCipher;
  /** Every target listens here instead of the stored portals (`spindle serve --portal`). */
  portals?: PortalConfig[];
  /** Target engine tuning (tests). */
  engine?: Partial<Omit<TargetEngineOptions, 'portals'>>;
}

export interface Service extends SpindleApi {
  /** What restoring the stored targets found (after createService resolves). */
  readonly restore: RestoreReport;
  /** Where the target engine listens, HOST:PORT (empty when not serving). */
  portals(): string[];
  /** Why the target engine could not listen, or null. */
  listenError(): string | null;
  close(): Promise<void>;
}

type Handlers = {
  [M in MethodName]: (params: z.output<(typeof methodParams)[M]>) => MethodResult<M> | Promise<MethodResult<M>>;
};

const STATS_INTERVAL_MS = 1000;

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export async function createService(opts: ServiceOptions): Promise<Service> {
  const store: Store = openStore({
    dataDir: opts.dataDir,
    ...(opts.nativeBinding ? { nativeBinding: opts.nativeBinding } : {}),
    ...(opts.secretCipher ? { secretCipher: opts.secretCipher } : {}),
  });
  const bus = new EventBus();
  const startedAt = new Date();
  const info: AppInfo = {
    name: 'Spindle',
    version: opts.version ?? packageVersion(),
    transport: opts.transport,
    platform: `${process.platform}-${process.arch}`,
    node: process.versions.node,
    dataDir: opts.dataDir,
    dbPath: store.path,
    schemaVersion: store.schemaVersion,
    startedAt: startedAt.toISOString(),
  };
  const serving = opts.serveTargets ?? true;
  if (serving) store.events.append('info', 'service', `started (${opts.transport})`);

  const settings = () => mergeSettings(store.settings.getAll());
  const targets = new TargetService({
    store,
    emit: (event, payload) => bus.emit(event, payload),
    log: (level, message) => {
      try {
        store.events.append(level, 'targets', message);
      } catch {
        /* the log is best effort */
      }
    },
    serving,
    ...(opts.portals !== undefined ? { portals: opts.portals } : {}),
    defaultPortal: settings().defaultPortal,
    ...(opts.engine !== undefined ? { engine: opts.engine } : {}),
  });
  let restore: RestoreReport;
  try {
    restore = await targets.start();
  } catch (err) {
    await targets.close();
    store.close();
    throw err;
  }

  // Disks: rescanned on a timer only while someone listens for changes.
  let lastDiskKey = '';
  let diskScan: Promise<DiskReport> | null = null;
  const scan = (): Promise<DiskReport> => {
    // Coalesce concurrent scans: lsblk is cheap but not free.
    diskScan ??= scanDisks({ inUseBySpindle: targets.blockPaths() }).finally(() => (diskScan = null));
    return diskScan;
  };
  const diskKey = (r: DiskReport) => JSON.stringify([r.disks, r.volumes]);

  let diskTimer: NodeJS.Timeout | null = null;
  const scheduleDiskPoll = () => {
    diskTimer = setTimeout(async () => {
      if (bus.listenerCount('disks.changed') > 0) {
        try {
          const report = await scan();
          const key = diskKey(report);
          if (key !== lastDiskKey) {
            const first = lastDiskKey === '';
            lastDiskKey = key;
            if (!first) bus.emit('disks.changed', report);
          }
        } catch (err) {
          store.events.append('warn', 'disks', (err as Error).message);
        }
      }
      if (diskTimer) scheduleDiskPoll();
    }, settings().diskPollSeconds * 1000);
    diskTimer.unref();
  };
  if (serving) scheduleDiskPoll();

  // Stats: a 1 Hz tick with process figures; engines add theirs as they land.
  let lastCpu = process.cpuUsage();
  let lastTick = process.hrtime.bigint();
  let lastPrune = 0;
  const statsTimer = setInterval(() => {
    const { luns, sessions } = targets.ioTick();
    recordSamples(luns, sessions);
    const now = process.hrtime.bigint();
    const cpu = process.cpuUsage(lastCpu);
    const elapsedUs = Number(now - lastTick) / 1000;
    lastCpu = process.cpuUsage();
    lastTick = now;
    if (bus.listenerCount('stats') === 0) return;
    const mem = process.memoryUsage();
    const tick: StatsTick = {
      at: new Date().toISOString(),
      uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      cpuPercent: Math.min(cpus().length * 100, Math.round(((cpu.user + cpu.system) / elapsedUs) * 1000) / 10),
      luns,
      sessions,
    };
    bus.emit('stats', tick);
  }, STATS_INTERVAL_MS);
  statsTimer.unref();
  if (!serving) clearInterval(statsTimer);

  /** 1 s samples per LUN, target and session into the store (only intervals with I/O); roll-ups and pruning once a minute. */
  function recordSamples(luns: LunStatsTick[], sessions: SessionStatsTick[]): void {
    const at = Math.floor(Date.now() / 1000) * 1000 - 1000;
    const samples: StatsSample[] = [];
    const perTarget = new Map<string, StatsSample>();
    for (const l of luns) {
      const r = l.rate;
      if (r.readOps + r.writeOps === 0) continue;
      const s: StatsSample = { scope: 'lun', scopeId: `${l.target}/${l.lun}`, resolution: '1s', at, ...r, latencyUsP50: null, latencyUsP99: null };
      samples.push(s);
      const t = perTarget.get(l.target) ?? { ...s, scope: 'target', scopeId: l.target, readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 };
      t.readBytes += r.readBytes;
      t.writeBytes += r.writeBytes;
      t.readOps += r.readOps;
      t.writeOps += r.writeOps;
      perTarget.set(l.target, t);
    }
    for (const x of sessions) {
      const r = x.rate;
      if (r.readOps + r.writeOps === 0) continue;
      samples.push({ scope: 'session', scopeId: x.id, resolution: '1s', at, ...r, latencyUsP50: null, latencyUsP99: null });
    }
    try {
      if (samples.length > 0) store.stats.append([...samples, ...perTarget.values()]);
      if (Date.now() - lastPrune >= 60_000) {
        lastPrune = Date.now();
        store.stats.rollup();
        store.stats.prune();
      }
    } catch (err) {
      store.events.append('warn', 'stats', (err as Error).message);
    }
  }

  const handlers: Handlers = {
    'app.info': () => info,
    'disks.list': async () => {
      const report = await scan();
      lastDiskKey = diskKey(report);
      return report;
    },
    'settings.get': () => settings(),
    'settings.set': (patch) => {
      store.settings.setMany(patch);
      return settings();
    },
    'targets.list': () => targets.list(),
    'targets.get': (p) => targets.get(p.target),
    'targets.create': (p) => targets.create(p),
    'targets.update': (p) => targets.update(p),
    'targets.delete': (p) => targets.remove(p),
    'targets.enable': (p) => targets.setEnabled(p, true),
    'targets.disable': (p) => targets.setEnabled(p, false),
    'luns.add': (p) => targets.addLun(p),
    'luns.remove': (p) => targets.removeLun(p),
    'acls.add': (p) => targets.addAcl(p),
    'acls.remove': (p) => targets.removeAcl(p),
    'requests.list': (p) => targets.requests(p),
    'requests.allow': (p) => targets.allowRequests(p),
    'requests.deny': (p) => targets.denyRequests(p),
    'sessions.list': () => targets.sessions(),
    'sessions.kick': (p) => targets.kick(p.id),
    'images.create': (p) => targets.createImage(p),
    'remotes.list': () => store.remotes.list().map(remoteView),
    'remotes.save': (p) => {
      const r = store.remotes.save({
        host: p.host,
        iqn: p.iqn,
        ...(p.port !== undefined ? { port: p.port } : {}),
        ...(p.chap !== undefined ? { chap: p.chap } : {}),
        ...(p.mutualChap !== undefined ? { mutualChap: p.mutualChap } : {}),
        ...(p.autoConnect !== undefined ? { autoConnect: p.autoConnect } : {}),
        ...(p.mountLun !== undefined ? { mountLun: p.mountLun } : {}),
        ...(p.mountPoint !== undefined ? { mountPoint: p.mountPoint } : {}),
      });
      store.events.append('info', 'remotes', `saved remote target ${r.iqn} at ${r.host}:${r.port}`);
      bus.emit('remotes.changed', store.remotes.list().map(remoteView));
      return remoteView(r);
    },
    'remotes.remove': (p) => {
      if (!store.remotes.remove(p.id)) throw new ApiError('REMOTE_NOT_FOUND', `There is no saved remote target ${p.id}.`, { id: 'no such remote target' });
      bus.emit('remotes.changed', store.remotes.list().map(remoteView));
      return { removed: p.id };
    },
    'remotes.discover': async (p) => {
      const initiatorName = p.initiatorName?.trim() ?? defaultInitiatorName();
      const port = p.port ?? ISCSI_PORT;
      const found = await discoverTargets({
        host: p.host,
        port,
        initiatorName,
        ...(p.chap !== undefined
          ? { chap: { credentials: { name: p.chap.user, secret: p.chap.secret }, ...(p.mutualChap !== undefined ? { mutual: { name: p.mutualChap.user, secret: p.mutualChap.secret } } : {}) } }
          : {}),
      });
      const saved = new Set(
        store.remotes
          .list()
          .filter((r) => r.host.toLowerCase() === p.host.toLowerCase() && r.port === port)
          .map((r) => r.iqn.toLowerCase()),
      );
      return {
        portal: p.host.includes(':') ? `[${p.host}]:${port}` : `${p.host}:${port}`,
        initiatorName,
        targets: found.map((t) => ({
          iqn: t.name,
          portals: t.portals.map((x) => ({ host: x.host, port: x.port, portalGroupTag: x.portalGroupTag ?? null })),
          saved: saved.has(t.name.toLowerCase()),
        })),
      };
    },
    'config.exportLio': () => targets.exportLio(),
    'config.importLio': (p) => targets.importLio(p),
  };

  let closed = false;
  return {
    restore,
    portals: () => targets.portals(),
    listenError: () => targets.listenError(),
    async call<M extends MethodName>(method: M, params?: MethodParams<M>): Promise<MethodResult<M>> {
      if (closed) throw new ApiError('SERVICE_CLOSED', 'Spindle is shutting down.');
      const parsed = parseParams(method, params);
      const handler = handlers[method] as (p: typeof parsed) => MethodResult<M> | Promise<MethodResult<M>>;
      try {
        return await handler(parsed);
      } catch (err) {
        throw toApiError(err);
      }
    },
    on<E extends EventName>(event: E, listener: (payload: EventPayloads[E]) => void) {
      return bus.on(event, listener);
    },
    async close() {
      if (closed) return;
      closed = true;
      if (diskTimer) clearTimeout(diskTimer);
      diskTimer = null;
      clearInterval(statsTimer);
      await targets.close();
      if (serving) store.events.append('info', 'service', 'stopped');
      store.close();
    },
  };
}

function remoteView(r: RemoteTarget): RemoteView {
  return {
    id: r.id,
    host: r.host,
    port: r.port,
    iqn: r.iqn,
    chapUser: r.chapUser,
    mutualUser: r.mutualUser,
    autoConnect: r.autoConnect,
    mountLun: r.mountLun,
    mountPoint: r.mountPoint,
  };
}

/** Anything thrown inside a handler leaves as an ApiError with a stable code. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  // Store validation names the field it is about: forms can show it in place.
  // Field paths in the schema's dotted form ("luns.1.lun"), whichever layer found the problem.
  if (isRepoError(err) && err.field !== undefined) return new ApiError(err.code, err.message, { [err.field.replace(/\[(\d+)\]/g, '.$1')]: err.message });
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'INTERNAL';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return new ApiError(code, message);
}
