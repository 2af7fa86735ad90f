// What every repository shares: the connection, the secret store, one
// transaction wrapper that keeps secrets.json consistent with spindle.db, and
// the checks that turn bad input into a RepoError with a clear message.
import type Database from 'better-sqlite3';
import { isIPv6 } from 'node:net';
import { checkChapConfig } from '../../iscsi/chap';
import { checkWireIscsiName, validateIscsiName, EXAMPLE_IQN } from '../../iscsi/names';
import { RepoError, StoreError, type RepoErrorCode } from '../errors';
import type { SecretStore } from '../secrets';

export const MAX_LUN = 16383;
export const BLOCK_SIZE = 512;

export interface ChapInput {
  user: string;
  secret: string;
}

export interface RepoContext {
  readonly db: Database.Database;
  readonly secrets: SecretStore;
  /** ISO 8601 UTC timestamp for created_at & co. */
  now(): string;
  /**
   * Runs `fn` in a transaction (a savepoint when nested). Secrets put during a
   * transaction that rolls back are deleted again; secrets dropped during it
   * are deleted only after the outermost transaction commits, so a row never
   * names a secret that is gone. SQLite constraint errors leave as RepoError.
   */
  tx<T>(fn: () => T): T;
  /** secrets.put, remembered for rollback. */
  putSecret(plain: string): string;
  /** Deletes `ref` once the outermost transaction has committed. */
  dropSecret(ref: string | null): void;
}

export function createRepoContext(db: Database.Database, secrets: SecretStore): RepoContext {
  const frames: Array<{ puts: string[]; drops: string[] }> = [];
  const forget = (refs: string[]): void => {
    for (const ref of refs) {
      try {
        secrets.delete(ref);
      } catch {
        // left in secrets.json; the store drops unreferenced secrets on open
      }
    }
  };
  return {
    db,
    secrets,
    now: () => new Date().toISOString(),
    tx<T>(fn: () => T): T {
      const frame = { puts: [] as string[], drops: [] as string[] };
      frames.push(frame);
      let result: T;
      try {
        result = db.transaction(fn)();
      } catch (err) {
        frames.pop();
        forget(frame.puts);
        throw translateSqliteError(err);
      }
      frames.pop();
      const parent = frames[frames.length - 1];
      if (parent !== undefined && db.inTransaction) {
        parent.puts.push(...frame.puts);
        parent.drops.push(...frame.drops);
      } else {
        forget(frame.drops);
      }
      return result;
    },
    putSecret(plain) {
      const ref = secrets.put(plain);
      frames[frames.length - 1]?.puts.push(ref);
      return ref;
    },
    dropSecret(ref) {
      if (ref === null) return;
      const frame = frames[frames.length - 1];
      if (frame !== undefined) frame.drops.push(ref);
      else forget([ref]);
    },
  };
}

// ---- SQLite constraint errors -> RepoError ---------------------------------

const UNIQUE_CODES: Array<[RegExp, RepoErrorCode, string]> = [
  [/targets\.iqn/, 'TARGET_EXISTS', 'a target with that IQN already exists'],
  [/luns\.target_id, luns\.lun/, 'LUN_EXISTS', 'that LUN number is already used in this target'],
  [/acls\.target_id, acls\.initiator_iqn/, 'ACL_EXISTS', 'that initiator is already allowed on this target'],
  [/portals_unique/, 'PORTAL_EXISTS', 'that portal already exists'],
  [/remote_targets\.host/, 'REMOTE_EXISTS', 'that remote target is already saved'],
  [/remote_targets_mount_point/, 'MOUNT_POINT_IN_USE', 'another saved remote target already mounts there'],
  [/backstores\.path/, 'BACKSTORE_CONFLICT', 'that path is already a backstore'],
  [/backstores\.name/, 'BACKSTORE_NAME_TAKEN', 'that backstore name is taken'],
  [/access_requests/, 'INVALID_INPUT', 'that access request already exists'],
];

const KNOWN_CODES = new Set<string>([
  'INVALID_INPUT', 'INVALID_IQN', 'INVALID_INITIATOR_NAME', 'TARGET_EXISTS', 'TARGET_NOT_FOUND', 'LUN_OUT_OF_RANGE',
  'LUN_EXISTS', 'LUN_NOT_FOUND', 'BACKSTORE_INVALID', 'BACKSTORE_IN_USE', 'BACKSTORE_CONFLICT', 'BACKSTORE_NOT_FOUND',
  'BACKSTORE_NAME_TAKEN', 'ACL_EXISTS', 'ACL_NOT_FOUND', 'INVALID_CHAP', 'PORTAL_INVALID', 'PORTAL_EXISTS',
  'PORTAL_NOT_FOUND', 'REQUEST_NOT_FOUND', 'REMOTE_EXISTS', 'REMOTE_NOT_FOUND', 'MOUNT_POINT_IN_USE', 'STATS_INVALID',
  'SECRET_MISSING',
] satisfies RepoErrorCode[]);

/**
 * The schema backs every rule the repositories check (CHECK constraints are
 * named after RepoError codes; triggers RAISE "CODE: message"), so a bug in a
 * repository still cannot store a bad state. This turns those errors into
 * RepoErrors; the repositories' own checks normally fire first.
 */
export function translateSqliteError(err: unknown): unknown {
  if (err instanceof RepoError || err instanceof StoreError) return err;
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof code !== 'string' || !code.startsWith('SQLITE_CONSTRAINT')) return err;
  if (code === 'SQLITE_CONSTRAINT_TRIGGER') {
    const m = /^([A-Z_]+): (.*)$/s.exec(message);
    if (m && KNOWN_CODES.has(m[1] as string)) return new RepoError(m[1] as RepoErrorCode, m[2] as string, undefined, err);
  }
  if (code === 'SQLITE_CONSTRAINT_CHECK') {
    const name = /CHECK constraint failed: ([A-Z_]+)/.exec(message)?.[1];
    if (name !== undefined && KNOWN_CODES.has(name)) {
      return new RepoError(name as RepoErrorCode, `the database refused the change (${name})`, undefined, err);
    }
  }
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    for (const [re, repoCode, text] of UNIQUE_CODES) if (re.test(message)) return new RepoError(repoCode, text, undefined, err);
  }
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || /FOREIGN KEY constraint failed/.test(message)) {
    return new RepoError('INVALID_INPUT', 'the change refers to something that does not exist, or removes something still in use', undefined, err);
  }
  return new RepoError('INVALID_INPUT', `the database refused the change: ${message}`, undefined, err);
}

// ---- input checks -----------------------------------------------------------

export function invalid(field: string, message: string): RepoError {
  return new RepoError('INVALID_INPUT', `${field}: ${message}`, field);
}

export function requireObject(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(field, 'expected an object');
  return value as Record<string, unknown>;
}

export function optionalBool(value: unknown, field: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalid(field, 'expected true or false');
  return value;
}

export function requireId(value: unknown, field: string): number {
  if (!Number.isSafeInteger(value) || (value as number) <= 0) throw invalid(field, 'expected a positive integer id');
  return value as number;
}

/** Optional free text (alias, reason): trimmed, at most `max` characters, no control characters; '' counts as none. */
export function optionalText(value: unknown, field: string, max: number): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw invalid(field, 'expected a string');
  const text = value.trim();
  if (text === '') return null;
  if (text.length > max) throw invalid(field, `must be at most ${max} characters`);
  if (/\p{Cc}/u.test(text)) throw invalid(field, 'must not contain control characters');
  return text;
}

/** A target name: strictly RFC 3720 §3.2.6, stored normalized (lowercase). */
export function targetIqn(value: unknown, field = 'iqn'): string {
  if (typeof value !== 'string') throw new RepoError('INVALID_IQN', `${field}: give the target's iSCSI name, e.g. ${EXAMPLE_IQN}`, field);
  const r = validateIscsiName(value);
  if (!r.ok) throw new RepoError('INVALID_IQN', `"${value}" is not a valid target name: ${r.reason}`, field);
  return r.name;
}

/**
 * An initiator name. Lenient, like the login (names from the field break the
 * iqn. grammar, e.g. an '_' from a Windows host name), so "allow" from an
 * access request always works; stored normalized.
 */
export function initiatorIqn(value: unknown, field = 'initiatorIqn'): string {
  if (typeof value !== 'string') {
    throw new RepoError('INVALID_INITIATOR_NAME', `${field}: give the initiator's iSCSI name, e.g. iqn.1991-05.com.microsoft:desktop-1`, field);
  }
  const r = checkWireIscsiName(value.trim());
  if (!r.ok) throw new RepoError('INVALID_INITIATOR_NAME', `"${value}" is not an initiator name: ${r.reason}`, field);
  return r.name;
}

/** A remote target's name as discovery reported it: lenient like initiatorIqn, stored normalized. */
export function remoteTargetIqn(value: unknown, field = 'iqn'): string {
  if (typeof value !== 'string') throw new RepoError('INVALID_IQN', `${field}: give the target's iSCSI name`, field);
  const r = checkWireIscsiName(value.trim());
  if (!r.ok) throw new RepoError('INVALID_IQN', `"${value}" is not a target name: ${r.reason}`, field);
  return r.name;
}

export function lunNumber(value: unknown, field = 'lun'): number {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > MAX_LUN) {
    throw new RepoError('LUN_OUT_OF_RANGE', `${field}: LUN numbers are whole numbers from 0 to ${MAX_LUN}, got ${String(value)}`, field);
  }
  return value as number;
}

export function portNumber(value: unknown, field = 'port'): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 65535) {
    throw new RepoError('PORTAL_INVALID', `${field}: a TCP port is 1 to 65535 (iSCSI uses 3260), got ${String(value)}`, field);
  }
  return value as number;
}

/** A host name or address; IPv6 without brackets in canonical form, names lowercase. */
export function portalHost(value: unknown, field = 'host'): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new RepoError('PORTAL_INVALID', `${field}: give an address or host name, e.g. 0.0.0.0 (all interfaces) or 192.168.1.10`, field);
  }
  let host = value.trim();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (isIPv6(host)) return canonicalIPv6(host);
  if (host.length > 253 || !/^[A-Za-z0-9._-]+$/.test(host)) {
    throw new RepoError('PORTAL_INVALID', `${field}: "${value}" is not an IP address or host name`, field);
  }
  return host.toLowerCase();
}

export function canonicalIPv6(host: string): string {
  const zone = host.indexOf('%');
  if (zone >= 0) return host.toLowerCase(); // URL cannot parse zone ids; keep as given
  return new URL(`http://[${host}]/`).hostname.slice(1, -1);
}

/** Validates a CHAP pair (and its mutual partner) with the login's own rules. */
export function chapPair(
  oneWay: unknown,
  mutual: unknown,
  field: string,
): { chap: ChapInput | null; mutual: ChapInput | null } {
  const a = oneWay === undefined || oneWay === null ? null : chapShape(oneWay, `${field}.chap`);
  const b = mutual === undefined || mutual === null ? null : chapShape(mutual, `${field}.mutualChap`);
  const problem = checkChapConfig(
    a === null ? undefined : { name: a.user, secret: a.secret },
    b === null ? undefined : { name: b.user, secret: b.secret },
  );
  if (problem !== null) throw new RepoError('INVALID_CHAP', `${field}: ${problem.message}`, field);
  return { chap: a, mutual: b };
}

function chapShape(value: unknown, field: string): ChapInput {
  const o = requireObject(value, field);
  if (typeof o.user !== 'string' || typeof o.secret !== 'string') {
    throw new RepoError('INVALID_CHAP', `${field}: give a user name and a secret`, field);
  }
  return { user: o.user, secret: o.secret };
}

export const bool = (v: number): boolean => v === 1;
export const bit = (v: boolean): 0 | 1 => (v ? 1 : 0);

/** Accepts a numeric id, a string of digits (an id from the CLI), or anything else as a name. */
export function idOrName(value: number | string): { id: number } | { name: string } {
  if (typeof value === 'number') return { id: value };
  return /^\d+$/.test(value) ? { id: Number(value) } : { name: value };
}
