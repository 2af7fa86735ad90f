// The one declaration of Spindle's API: every method (params schema + result
// type) and every event. Main, preload, renderer, the WebSocket server and the
// CLI all derive from this file; nothing else lists method or event names.
// Pure: no Node or Electron imports, so the renderer bundles it too.
import { z } from 'zod';
import type { DiskReport } from '../../disks/types';
import { EVENT_NAMES, METHOD_NAMES } from './names';

// ---- value schemas -------------------------------------------------------

export const settingsSchema = z.object({
  /** Ask before exporting a disk read-write. */
  confirmWrites: z.boolean(),
  /** UI theme. */
  theme: z.enum(['system', 'light', 'dark']),
  /** Default portal for new targets, HOST:PORT. */
  defaultPortal: z.string().regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, 'expected HOST:PORT, e.g. 0.0.0.0:3260'),
  /** Seconds between disk rescans. */
  diskPollSeconds: z.number().int().min(1).max(3600),
});
export type Settings = z.infer<typeof settingsSchema>;
export const defaultSettings: Settings = {
  confirmWrites: true,
  theme: 'system',
  defaultPortal: '0.0.0.0:3260',
  diskPollSeconds: 5,
};

export interface AppInfo {
  name: 'Spindle';
  version: string;
  /** 'electron' or 'headless' */
  transport: 'electron' | 'headless';
  platform: string;
  node: string;
  dataDir: string;
  dbPath: string;
  schemaVersion: number;
  startedAt: string;
}

export interface StatsTick {
  at: string;
  uptimeSeconds: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** Process CPU use over the last tick, 0..(cores*100). */
  cpuPercent: number;
}

// ---- methods ---------------------------------------------------------------

const none = z.undefined().or(z.object({}).strict()).optional();

/** Method name → params schema. The result types are in `MethodResults`. */
export const methodParams = {
  'app.info': none,
  'disks.list': none,
  'settings.get': none,
  'settings.set': settingsSchema.partial().strict(),
} as const;

export interface MethodResults {
  'app.info': AppInfo;
  'disks.list': DiskReport;
  'settings.get': Settings;
  'settings.set': Settings;
}

export type MethodName = keyof typeof methodParams;
export type MethodParams<M extends MethodName> = z.input<(typeof methodParams)[M]>;
export type MethodResult<M extends MethodName> = MethodResults[M];
export const methodNames: readonly MethodName[] = METHOD_NAMES;

// ---- events ----------------------------------------------------------------

export interface EventPayloads {
  'disks.changed': DiskReport;
  stats: StatsTick;
}
export type EventName = keyof EventPayloads;
export const eventNames: readonly EventName[] = EVENT_NAMES;

// Compile-time check: every MethodResults key has params and vice versa.
type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _methodsComplete: Exact<MethodName, keyof MethodResults> = true;
const _methodNamesMatch: Exact<MethodName, (typeof METHOD_NAMES)[number]> = true;
const _eventNamesMatch: Exact<EventName, (typeof EVENT_NAMES)[number]> = true;
void [_methodsComplete, _methodNamesMatch, _eventNamesMatch];

// ---- errors ----------------------------------------------------------------

/** An error as it crosses any transport. `code` is stable; `message` is for people. */
export interface ApiErrorBody {
  code: string;
  message: string;
  /** Per-field problems for form validation: path → message. */
  fields?: Record<string, string>;
}

export class ApiError extends Error implements ApiErrorBody {
  readonly code: string;
  readonly fields?: Record<string, string>;
  constructor(code: string, message: string, fields?: Record<string, string>) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    if (fields) this.fields = fields;
  }
  toJSON(): ApiErrorBody {
    return this.fields ? { code: this.code, message: this.message, fields: this.fields } : { code: this.code, message: this.message };
  }
}

/** Validate `params` for `method`; throws ApiError('INVALID_PARAMS') naming each bad field. */
export function parseParams<M extends MethodName>(method: M, params: unknown): z.output<(typeof methodParams)[M]> {
  const schema = methodParams[method];
  if (!schema) throw new ApiError('UNKNOWN_METHOD', `Unknown method "${String(method)}".`);
  const r = schema.safeParse(params);
  if (r.success) return r.data as z.output<(typeof methodParams)[M]>;
  const fields: Record<string, string> = {};
  for (const issue of r.error.issues) {
    const path = issue.path.join('.') || '(params)';
    fields[path] ??= issue.message;
  }
  const summary = Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join('; ');
  throw new ApiError('INVALID_PARAMS', `Invalid parameters for ${method} — ${summary}`, fields);
}

export function isMethodName(s: unknown): s is MethodName {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(methodParams, s);
}

// ---- the client surface every front end sees ------------------------------

export interface SpindleApi {
  call<M extends MethodName>(method: M, params?: MethodParams<M>): Promise<MethodResult<M>>;
  on<E extends EventName>(event: E, listener: (payload: EventPayloads[E]) => void): () => void;
}

// ---- wire format (WebSocket; Electron IPC carries the same objects) --------

export type WireRequest = { id: number; method: MethodName; params?: unknown };
export type WireResponse = { id: number; result: unknown } | { id: number; error: ApiErrorBody };
export type WireEvent = { event: EventName; data: unknown };
