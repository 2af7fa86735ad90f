// How CLI commands reach the service for a data dir: through a running
// `spindle serve` (its API endpoint is in api.json beside spindle.db), or —
// when none runs — by opening the service on the DB directly without serving
// anything (the next `serve` then picks the changes up). Both paths run the
// same handlers, so validation and errors are the same.
import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import {
  ApiError,
  type ApiErrorBody,
  type EventName,
  type EventPayloads,
  type MethodName,
  type MethodParams,
  type MethodResult,
  type SpindleApi,
  type WireResponse,
} from '../service/api/schema';
import { createService } from '../service/service';
import { isStoreError } from '../store';

export const ENDPOINT_FILE_NAME = 'api.json';

interface Endpoint {
  pid: number;
  /** ws://HOST:PORT/api */
  url: string;
  token: string;
}

/** Written by `spindle serve` once its API listens (mode 0600: the token controls Spindle). */
export function writeEndpoint(dataDir: string, host: string, port: number, token: string): string {
  const reach = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const url = `ws://${reach.includes(':') ? `[${reach}]` : reach}:${port}/api`;
  const file = join(dataDir, ENDPOINT_FILE_NAME);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ pid: process.pid, url, token } satisfies Endpoint)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return file;
}

export function removeEndpoint(file: string): void {
  try {
    const e = JSON.parse(readFileSync(file, 'utf8')) as Partial<Endpoint>;
    if (e.pid === process.pid) rmSync(file, { force: true });
  } catch {
    /* already gone */
  }
}

function readEndpoint(dataDir: string): Endpoint | null {
  try {
    const e = JSON.parse(readFileSync(join(dataDir, ENDPOINT_FILE_NAME), 'utf8')) as Partial<Endpoint>;
    if (typeof e.pid !== 'number' || typeof e.url !== 'string' || typeof e.token !== 'string') return null;
    process.kill(e.pid, 0); // throws when that serve is gone
    return { pid: e.pid, url: e.url, token: e.token };
  } catch {
    return null;
  }
}

export interface ServiceConnection {
  api: SpindleApi;
  /** 'serve': through a running `spindle serve`; 'direct': on the DB, nothing served. */
  via: 'serve' | 'direct';
  close(): Promise<void>;
}

/** Connects to the running serve of `dataDir`, or opens the DB directly. */
export async function connectService(dataDir: string): Promise<ServiceConnection> {
  const endpoint = readEndpoint(dataDir);
  if (endpoint !== null) {
    const remote = await connectRemote(endpoint).catch(() => null);
    if (remote !== null) return remote;
  }
  try {
    const service = await createService({ dataDir, transport: 'cli', serveTargets: false });
    return { api: service, via: 'direct', close: () => service.close() };
  } catch (err) {
    if (isStoreError(err, 'STORE_LOCKED')) {
      throw new ApiError(
        'STORE_LOCKED',
        `${err.message} The running Spindle does not expose its API to the command line (only \`spindle serve\` does); change the configuration in its window, or stop it first.`,
      );
    }
    throw err;
  }
}

function connectRemote(endpoint: Endpoint): Promise<ServiceConnection> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(endpoint.url, { headers: { authorization: `Bearer ${endpoint.token}` } });
    const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
    const listeners = new Map<string, Set<(payload: unknown) => void>>();
    let nextId = 1;
    ws.once('error', reject);
    ws.on('close', () => {
      for (const p of pending.values()) p.reject(new ApiError('SERVICE_GONE', 'spindle serve stopped while the command was running.'));
      pending.clear();
    });
    ws.on('message', (raw) => {
      let msg: WireResponse | { event: string; data: unknown };
      try {
        msg = JSON.parse(raw.toString()) as typeof msg;
      } catch {
        return;
      }
      if ('event' in msg) {
        for (const l of listeners.get(msg.event) ?? []) l(msg.data);
        return;
      }
      const p = pending.get(msg.id);
      if (p === undefined) return;
      pending.delete(msg.id);
      if ('error' in msg) {
        const e: ApiErrorBody = msg.error;
        p.reject(new ApiError(e.code, e.message, e.fields));
      } else p.resolve(msg.result);
    });
    ws.once('open', () => {
      ws.off('error', reject);
      ws.on('error', () => undefined);
      const api: SpindleApi = {
        call<M extends MethodName>(method: M, params?: MethodParams<M>): Promise<MethodResult<M>> {
          return new Promise((res, rej) => {
            const id = nextId++;
            pending.set(id, { resolve: res as (v: unknown) => void, reject: rej });
            ws.send(JSON.stringify({ id, method, params }));
          });
        },
        on<E extends EventName>(event: E, listener: (payload: EventPayloads[E]) => void): () => void {
          const set = listeners.get(event) ?? new Set();
          listeners.set(event, set);
          const l = listener as (payload: unknown) => void;
          set.add(l);
          return () => set.delete(l);
        },
      };
      resolve({
        api,
        via: 'serve',
        close: () =>
          new Promise<void>((r) => {
            if (ws.readyState === WebSocket.CLOSED) return r();
            ws.once('close', () => r());
            ws.close();
          }),
      });
    });
  });
}
