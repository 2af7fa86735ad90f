// The one declaration of Spindle's API: every method (params schema + result
// type) and every event. Main, preload, renderer, the WebSocket server and the
// CLI all derive from this file; nothing else lists method or event names.
// Pure: no Node or Electron imports, so the renderer bundles it too.
import { z } from 'zod';
import type { DiskReport } from '../../disks/types';
import { checkWireIscsiName, validateIscsiName } from '../../iscsi/names';
import { parsePortalInput } from '../../iscsi/portal-address';
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
  transport: 'electron' | 'headless' | 'cli';
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
  /** Per served LUN: totals since it started serving and the rate over the last tick. */
  luns: LunStatsTick[];
  /** Per live (normal) session, the same. */
  sessions: SessionStatsTick[];
}

export interface SessionStatsTick {
  id: string;
  target: string;
  initiator: string;
  total: IoCounters;
  rate: IoCounters;
}

export interface IoCounters {
  readBytes: number;
  writeBytes: number;
  readOps: number;
  writeOps: number;
}

export interface LunStatsTick {
  target: string;
  lun: number;
  total: IoCounters;
  /** Per second over the last tick. */
  rate: IoCounters;
}

// ---- targets -------------------------------------------------------------

/** serving: on its portals; disabled: by the user or at start (see reason); failed: could not start (see reason); stopped: no `spindle serve` is running. */
export type TargetState = 'serving' | 'disabled' | 'failed' | 'stopped';

export interface BackstoreView {
  id: number;
  name: string;
  kind: 'file' | 'block' | 'memory';
  path: string | null;
  sizeBytes: number | null;
  readOnly: boolean;
  thin: boolean;
}

export interface LunView {
  lun: number;
  readOnly: boolean;
  backstore: BackstoreView;
}

/** An ACL entry as lists show it: CHAP user names, never secrets. */
export interface AclView {
  id: number;
  initiatorIqn: string;
  chapUser: string | null;
  mutualUser: string | null;
}

export interface TargetView {
  id: number;
  iqn: string;
  alias: string | null;
  enabled: boolean;
  state: TargetState;
  /** Why it is disabled or failed; null otherwise. */
  reason: string | null;
  luns: LunView[];
  acls: AclView[];
  /** HOST:PORT where it can be reached. */
  portals: string[];
  sessions: number;
}

export interface AccessRequestView {
  id: number;
  initiatorIqn: string;
  address: string;
  targetIqn: string;
  firstSeen: string;
  lastSeen: string;
  count: number;
  decision: 'allowed' | 'denied' | null;
}

export interface SessionView {
  id: string;
  targetIqn: string;
  initiatorIqn: string;
  initiatorAlias: string | null;
  address: string;
  type: 'Normal' | 'Discovery';
  since: string;
  headerDigest: boolean;
  dataDigest: boolean;
  io: IoCounters;
}

export interface ImageView {
  path: string;
  sizeBytes: number;
  thin: boolean;
}

export interface LioImportReport {
  /** IQNs of the targets created. */
  created: string[];
  /** What in the file Spindle could not map, each with where (a path into saveconfig.json) and why. */
  unmapped: Array<{ path: string; reason: string }>;
  /** What mapped but was not applied (e.g. a target that already exists), with why. */
  skipped: Array<{ path: string; reason: string }>;
}

/** A saved remote target (the initiator side); CHAP user names only. */
export interface RemoteView {
  id: number;
  host: string;
  port: number;
  iqn: string;
  chapUser: string | null;
  mutualUser: string | null;
  autoConnect: boolean;
  mountLun: number;
  mountPoint: string | null;
}

/** What a portal offered in SendTargets discovery. */
export interface DiscoveryView {
  /** HOST:PORT asked. */
  portal: string;
  /** The initiator name the target saw (its ACLs decide what it lists). */
  initiatorName: string;
  targets: Array<{
    iqn: string;
    portals: Array<{ host: string; port: number; portalGroupTag: number | null }>;
    /** Already among the saved remote targets (at the asked host and port). */
    saved: boolean;
  }>;
}

// ---- value schemas for targets ---------------------------------------------

const iscsiName = (what: string) =>
  z.string().superRefine((s, ctx) => {
    const r = validateIscsiName(s);
    if (!r.ok) ctx.addIssue({ code: 'custom', message: `not a valid ${what}: ${r.reason}` });
  });

/**
 * Initiator names as leniently as the login takes them (checkWireIscsiName):
 * initiators in the field send names with, say, a Windows host name's '_',
 * and Spindle must be able to allow what it records.
 */
const initiatorName = z.string().superRefine((s, ctx) => {
  const r = checkWireIscsiName(s.trim());
  if (!r.ok) ctx.addIssue({ code: 'custom', message: `not a usable initiator name: ${r.reason}` });
  else if (!/^(iqn|eui|naa)\./i.test(s.trim())) {
    ctx.addIssue({ code: 'custom', message: 'an initiator name starts with iqn., eui. or naa. (see the initiator\'s settings, e.g. /etc/iscsi/initiatorname.iscsi)' });
  }
});

/** An absolute path (POSIX, or a Windows drive/UNC path): a relative one would resolve in the service's folder, not the caller's. */
const absolutePath = (what: string) =>
  z
    .string()
    .min(1, `give the ${what}`)
    .max(4096)
    .refine((p) => /^(\/|[A-Za-z]:[\\/]|\\\\)/.test(p), `give the full path of the ${what} (starting with /)`);

/** A target by IQN (any case) or id. */
const targetRef = z.union([z.string().min(1).max(223), z.number().int().positive()]);

const chapSchema = z
  .object({
    user: z.string().min(1, 'give a CHAP user name').max(255),
    secret: z.string().refine((s) => {
      const n = new TextEncoder().encode(s).length;
      return n >= 12 && n <= 16;
    }, 'a CHAP secret must be 12 to 16 bytes long'),
  })
  .strict();

/** A host name or IP address, alone (the port has its own field). */
const hostSchema = z
  .string()
  .trim()
  .min(1, 'give the host name or address')
  .max(253)
  .superRefine((h, ctx) => {
    const r = parsePortalInput(h);
    if (!r.ok) ctx.addIssue({ code: 'custom', message: r.message });
    else if (r.port !== undefined || r.host !== h) ctx.addIssue({ code: 'custom', message: 'give the host alone, e.g. 192.168.1.10; the port goes in its own field' });
  });

const sizeBytes = z.number().int().positive().max(2 ** 53 - 1);

export const backstoreRefSchema = z.union([
  z.object({ id: z.number().int().positive() }).strict(),
  z.object({ name: z.string().min(1).max(64) }).strict(),
  z
    .object({
      kind: z.literal('file'),
      path: absolutePath('image file'),
      /** Create the image (sparse) when it does not exist. */
      create: z.boolean().optional(),
      sizeBytes: sizeBytes.optional(),
      readOnly: z.boolean().optional(),
      thin: z.boolean().optional(),
      name: z.string().min(1).max(64).optional(),
    })
    .strict(),
  z.object({ kind: z.literal('block'), path: absolutePath('device, e.g. /dev/sdb'), readOnly: z.boolean().optional(), name: z.string().min(1).max(64).optional() }).strict(),
  z.object({ kind: z.literal('memory'), sizeBytes, name: z.string().min(1).max(64).optional() }).strict(),
]);
export type BackstoreRefParams = z.infer<typeof backstoreRefSchema>;

const lunNumber = z.number().int().min(0).max(16383);
export const lunSchema = z.object({ lun: lunNumber, backstore: backstoreRefSchema, readOnly: z.boolean().optional() }).strict();
export const aclSchema = z
  .object({ initiatorIqn: initiatorName, chap: chapSchema.optional(), mutualChap: chapSchema.optional() })
  .strict();

// ---- methods ---------------------------------------------------------------

const none = z.undefined().or(z.object({}).strict()).optional();

/** Method name → params schema. The result types are in `MethodResults`. */
export const methodParams = {
  'app.info': none,
  'disks.list': none,
  'settings.get': none,
  'settings.set': settingsSchema.partial().strict(),
  'targets.list': none,
  'targets.get': z.object({ target: targetRef }).strict(),
  'targets.create': z
    .object({
      iqn: iscsiName('target name'),
      alias: z.string().max(255).optional(),
      enabled: z.boolean().optional(),
      luns: z.array(lunSchema).max(256).optional(),
      acls: z.array(aclSchema).max(1024).optional(),
    })
    .strict(),
  'targets.update': z.object({ target: targetRef, alias: z.string().max(255).nullable().optional() }).strict(),
  'targets.delete': z.object({ target: targetRef, keepBackstores: z.boolean().optional() }).strict(),
  'targets.enable': z.object({ target: targetRef }).strict(),
  'targets.disable': z.object({ target: targetRef }).strict(),
  'luns.add': z.object({ target: targetRef, lun: lunNumber, backstore: backstoreRefSchema, readOnly: z.boolean().optional() }).strict(),
  'luns.remove': z.object({ target: targetRef, lun: lunNumber }).strict(),
  'acls.add': z
    .object({ target: targetRef, initiatorIqn: initiatorName, chap: chapSchema.optional(), mutualChap: chapSchema.optional() })
    .strict(),
  'acls.remove': z.object({ target: targetRef, initiatorIqn: z.string().min(1).max(223) }).strict(),
  'requests.list': z.object({ pending: z.boolean().optional() }).strict().optional(),
  /** By request id, or by initiator name (every pending request of it, or the one for `target`). */
  'requests.allow': z
    .object({ id: z.number().int().positive().optional(), initiatorIqn: z.string().min(1).max(223).optional(), target: targetRef.optional() })
    .strict()
    .refine((p) => (p.id === undefined) !== (p.initiatorIqn === undefined), 'give either id or initiatorIqn'),
  'requests.deny': z
    .object({ id: z.number().int().positive().optional(), initiatorIqn: z.string().min(1).max(223).optional(), target: targetRef.optional() })
    .strict()
    .refine((p) => (p.id === undefined) !== (p.initiatorIqn === undefined), 'give either id or initiatorIqn'),
  'sessions.list': none,
  'sessions.kick': z.object({ id: z.string().min(1).max(128) }).strict(),
  'images.create': z.object({ path: absolutePath('image file'), sizeBytes, thin: z.boolean().optional() }).strict(),
  'remotes.list': none,
  /** Saves (or updates, by host + port + IQN) a remote target to connect to. */
  'remotes.save': z
    .object({
      host: hostSchema,
      port: z.number().int().min(1).max(65535).optional(),
      iqn: iscsiName('target name'),
      chap: chapSchema.nullable().optional(),
      mutualChap: chapSchema.nullable().optional(),
      autoConnect: z.boolean().optional(),
      mountLun: lunNumber.optional(),
      mountPoint: z.string().min(1).max(4096).nullable().optional(),
    })
    .strict(),
  'remotes.remove': z.object({ id: z.number().int().positive() }).strict(),
  /** SendTargets discovery at a portal: the targets it offers this initiator. */
  'remotes.discover': z
    .object({
      host: hostSchema,
      port: z.number().int().min(1).max(65535).optional(),
      chap: chapSchema.optional(),
      mutualChap: chapSchema.optional(),
      /** The initiator name to introduce ourselves with (default: Spindle's, from the host name). */
      initiatorName: initiatorName.optional(),
    })
    .strict()
    .refine((p) => p.mutualChap === undefined || p.chap !== undefined, { message: 'mutual CHAP needs CHAP too', path: ['mutualChap'] }),
  'config.exportLio': none,
  'config.importLio': z.object({ json: z.string().min(1).max(16 * 1024 * 1024), replace: z.boolean().optional() }).strict(),
} as const;

export interface MethodResults {
  'app.info': AppInfo;
  'disks.list': DiskReport;
  'settings.get': Settings;
  'settings.set': Settings;
  'targets.list': TargetView[];
  'targets.get': TargetView;
  'targets.create': TargetView;
  'targets.update': TargetView;
  'targets.delete': { deleted: string };
  'targets.enable': TargetView;
  'targets.disable': TargetView;
  'luns.add': TargetView;
  'luns.remove': TargetView;
  'acls.add': TargetView;
  'acls.remove': TargetView;
  'requests.list': AccessRequestView[];
  'requests.allow': AccessRequestView[];
  'requests.deny': AccessRequestView[];
  'sessions.list': SessionView[];
  'sessions.kick': { kicked: string };
  'images.create': ImageView & { warning: string | null };
  'remotes.list': RemoteView[];
  'remotes.save': RemoteView;
  'remotes.remove': { removed: number };
  'remotes.discover': DiscoveryView;
  /** LIO's saveconfig.json text (it holds CHAP secrets, as LIO's file does). */
  'config.exportLio': { json: string };
  'config.importLio': LioImportReport;
}

export type MethodName = keyof typeof methodParams;
export type MethodParams<M extends MethodName> = z.input<(typeof methodParams)[M]>;
export type MethodResult<M extends MethodName> = MethodResults[M];
export const methodNames: readonly MethodName[] = METHOD_NAMES;

// ---- events ----------------------------------------------------------------

export interface EventPayloads {
  'disks.changed': DiskReport;
  stats: StatsTick;
  /** A target was created, changed, removed, started or stopped: the whole list. */
  'targets.changed': TargetView[];
  'sessions.opened': SessionView;
  'sessions.closed': SessionView & { reason: string };
  /** An initiator was refused for lack of an ACL, or discovery hid a target from it (first time: isNew). */
  'requests.new': AccessRequestView & { isNew: boolean };
  /** Requests were allowed or denied (by any window, or the CLI). */
  'requests.decided': AccessRequestView[];
  /** A remote target was saved or removed: the whole list. */
  'remotes.changed': RemoteView[];
  /** Something went wrong that no call is waiting for (a portal could not listen, a backstore failed). */
  'service.error': { source: string; message: string };
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
  for (const issue of bestIssues(r.error.issues)) {
    const path = issue.path.join('.') || '(params)';
    fields[path] ??= issue.message;
  }
  const summary = Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join('; ');
  throw new ApiError('INVALID_PARAMS', `Invalid parameters for ${method} — ${summary}`, fields);
}

type Issue = { code: string; path: PropertyKey[]; message: string; errors?: Issue[][] };

/**
 * A union that fails reports every alternative's problems; the alternative
 * with the fewest is the one the caller meant (a file backstore missing its
 * path, not "this is not an {id}"). Paths are made absolute again.
 */
function bestIssues(issues: readonly Issue[], prefix: PropertyKey[] = []): Issue[] {
  const out: Issue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union' && issue.errors !== undefined && issue.errors.length > 0) {
      const branches = issue.errors.map((branch) => bestIssues(branch, path));
      out.push(...branches.reduce((a, b) => (b.length < a.length ? b : a)));
    } else out.push({ ...issue, path });
  }
  return out;
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
