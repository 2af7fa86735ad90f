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
  type SpindleApi,
  type StatsTick,
} from './api/schema';
import { EventBus } from './events';
import { mergeSettings } from './settings';
import type { DiskReport } from '../disks/types';
import type { z } from 'zod';
import type { methodParams } from './api/schema';

export interface ServiceOptions {
  dataDir: string;
  transport: AppInfo['transport'];
  /** Path of a better-sqlite3 binary built for this runtime's ABI (Electron). */
  nativeBinding?: string;
  version?: string;
}

export interface Service extends SpindleApi {
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
  const store: Store = openStore({ dataDir: opts.dataDir, ...(opts.nativeBinding ? { nativeBinding: opts.nativeBinding } : {}) });
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
  store.events.append('info', 'service', `started (${opts.transport})`);

  const settings = () => mergeSettings(store.settings.getAll());

  // Disks: rescanned on a timer only while someone listens for changes.
  let lastDiskKey = '';
  let diskScan: Promise<DiskReport> | null = null;
  const scan = (): Promise<DiskReport> => {
    // Coalesce concurrent scans: lsblk is cheap but not free.
    diskScan ??= scanDisks().finally(() => (diskScan = null));
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
  scheduleDiskPoll();

  // Stats: a 1 Hz tick with process figures; engines add theirs as they land.
  let lastCpu = process.cpuUsage();
  let lastTick = process.hrtime.bigint();
  const statsTimer = setInterval(() => {
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
    };
    bus.emit('stats', tick);
  }, STATS_INTERVAL_MS);
  statsTimer.unref();

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
  };

  let closed = false;
  return {
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
      store.events.append('info', 'service', 'stopped');
      store.close();
    },
  };
}

/** Anything thrown inside a handler leaves as an ApiError with a stable code. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'INTERNAL';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return new ApiError(code, message);
}
