// Backstores: what LUNs are stored on. One row per backing file or device
// (path is unique), so several LUNs — in one target or several — can share
// it; the rule "at most one read-write LUN per backing store" lives here and,
// as a backstop, in triggers. `wwn` is the backstore's stable identity (LIO's
// unit serial; the engine's identity seed), kept across restarts.
import { randomUUID } from 'node:crypto';
import { basename, isAbsolute } from 'node:path';
import { RepoError } from '../errors';
import { BLOCK_SIZE, bit, bool, invalid, optionalBool, requireId, requireObject, type RepoContext } from './common';

export type BackstoreKind = 'file' | 'block' | 'memory';

export interface Backstore {
  id: number;
  /** Unique label (LIO's storage object name), e.g. "disk1". */
  name: string;
  kind: BackstoreKind;
  /** Image file or device path; null for memory. */
  path: string | null;
  /** Size in bytes when known (always for memory); block devices report their own. */
  sizeBytes: number | null;
  /** The backing is opened read-only; every LUN on it is read-only. */
  readOnly: boolean;
  /** Sparse image / thin provisioning: UNMAP punches holes. */
  thin: boolean;
  /** Stable identity: T10 unit serial in LIO, the seed of the engine's VPD identifiers. */
  wwn: string;
  createdAt: string;
}

export interface BackstoreInput {
  kind: BackstoreKind;
  path?: string;
  sizeBytes?: number;
  readOnly?: boolean;
  thin?: boolean;
  /** Default: derived from the path (file name without extension, device name) or "memory". */
  name?: string;
  /** Default: a new UUID. */
  wwn?: string;
}

/** An existing backstore by id or name, or the description of one (reused when its path is already known). */
export type BackstoreRef = { id: number } | { name: string } | BackstoreInput;

export interface BackstoresRepo {
  list(): Backstore[];
  get(idOrName: number | string): Backstore | undefined;
  findByPath(path: string): Backstore | undefined;
  /** Creates a backstore, or returns the existing one with the same path (same kind and size, else BACKSTORE_CONFLICT). */
  create(input: BackstoreInput): Backstore;
  /** Records a new size (after a resize) or thin/read-only changes. Making it read-only makes its LUNs read-only. */
  update(id: number, patch: { sizeBytes?: number | null; thin?: boolean; readOnly?: boolean; name?: string }): Backstore;
  /** Removes an unused backstore; BACKSTORE_IN_USE while a LUN uses it. */
  remove(id: number): boolean;
  /** LUNs using the backstore, as "LUN n of IQN" facts. */
  usedBy(id: number): Array<{ targetId: number; targetIqn: string; lun: number; readOnly: boolean }>;
}

export interface BackstoreRow {
  id: number;
  name: string;
  kind: BackstoreKind;
  path: string | null;
  size_bytes: number | null;
  read_only: number;
  thin: number;
  wwn: string;
  created_at: string;
}

export const BACKSTORE_COLUMNS = 'id, name, kind, path, size_bytes, read_only, thin, wwn, created_at';

export function toBackstore(r: BackstoreRow): Backstore {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    path: r.path,
    sizeBytes: r.size_bytes,
    readOnly: bool(r.read_only),
    thin: bool(r.thin),
    wwn: r.wwn,
    createdAt: r.created_at,
  };
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$/;
const KINDS: readonly string[] = ['file', 'block', 'memory'];

/** Internal operations shared with the LUN and target repositories (no transaction of their own). */
export interface BackstoreOps {
  /** The id of the referenced backstore, creating it when it is a description of a new one. */
  resolve(ref: BackstoreRef, field: string): Backstore;
  /** Throws BACKSTORE_IN_USE when `backstore` already has a read-write LUN (other than `exceptLunId`). */
  assertNoOtherWriter(backstore: Backstore, field: string, exceptLunId?: number): void;
  /** Deletes the given backstores if no LUN uses them any more. */
  dropIfUnused(ids: Iterable<number>): void;
  byId(id: number): Backstore | undefined;
}

export function createBackstoreOps(ctx: RepoContext): BackstoreOps {
  const { db } = ctx;
  const selectById = db.prepare<[number], BackstoreRow>(`SELECT ${BACKSTORE_COLUMNS} FROM backstores WHERE id = ?`);
  const selectByName = db.prepare<[string], BackstoreRow>(`SELECT ${BACKSTORE_COLUMNS} FROM backstores WHERE name = ?`);
  const selectByPath = db.prepare<[string], BackstoreRow>(`SELECT ${BACKSTORE_COLUMNS} FROM backstores WHERE path = ?`);
  const nameTaken = db.prepare<[string], number>('SELECT 1 FROM backstores WHERE name = ?').pluck();
  const insert = db.prepare<[string, string, string | null, number | null, number, number, string, string]>(
    `INSERT INTO backstores (name, kind, path, size_bytes, read_only, thin, wwn, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const writer = db.prepare<[number, number], { lun: number; iqn: string }>(
    `SELECT l.lun, t.iqn FROM luns l JOIN targets t ON t.id = l.target_id
     WHERE l.backstore_id = ? AND l.read_only = 0 AND l.id <> ? ORDER BY l.id LIMIT 1`,
  );
  const deleteUnused = db.prepare<[number, number]>(
    'DELETE FROM backstores WHERE id = ? AND NOT EXISTS (SELECT 1 FROM luns WHERE backstore_id = ?)',
  );

  const byId = (id: number) => {
    const r = selectById.get(id);
    return r === undefined ? undefined : toBackstore(r);
  };

  const uniqueName = (base: string): string => {
    const clean = base.replace(/[^A-Za-z0-9_.:+-]/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 56) || 'disk';
    if (nameTaken.get(clean) === undefined) return clean;
    for (let i = 2; ; i++) {
      const candidate = `${clean}-${i}`;
      if (nameTaken.get(candidate) === undefined) return candidate;
    }
  };

  const create = (input: BackstoreInput, field: string): Backstore => {
    const kind = input.kind;
    if (!KINDS.includes(kind)) {
      throw new RepoError('BACKSTORE_INVALID', `${field}.kind: a backstore is a file, a block device or memory, got ${JSON.stringify(kind)}`, `${field}.kind`);
    }
    let path: string | null = null;
    if (kind === 'memory') {
      if (input.path !== undefined) throw new RepoError('BACKSTORE_INVALID', `${field}.path: a memory backstore has no path`, `${field}.path`);
    } else {
      if (typeof input.path !== 'string' || input.path.trim() === '') {
        throw new RepoError('BACKSTORE_INVALID', `${field}.path: give the ${kind === 'file' ? 'image file' : 'device'} path`, `${field}.path`);
      }
      if (!isAbsolute(input.path)) {
        throw new RepoError('BACKSTORE_INVALID', `${field}.path: "${input.path}" is not an absolute path; give the full path`, `${field}.path`);
      }
      path = input.path;
    }
    let size: number | null = null;
    if (input.sizeBytes !== undefined) {
      const s = input.sizeBytes;
      if (!Number.isSafeInteger(s) || s <= 0 || s % BLOCK_SIZE !== 0) {
        throw new RepoError('BACKSTORE_INVALID', `${field}.sizeBytes: the size must be a positive whole number of ${BLOCK_SIZE}-byte blocks, got ${String(s)}`, `${field}.sizeBytes`);
      }
      size = s;
    } else if (kind === 'memory') {
      throw new RepoError('BACKSTORE_INVALID', `${field}.sizeBytes: give the size of the memory backstore`, `${field}.sizeBytes`);
    }
    const readOnly = optionalBool(input.readOnly, `${field}.readOnly`, false);
    const thin = optionalBool(input.thin, `${field}.thin`, kind === 'file');
    let name: string;
    if (input.name !== undefined) {
      if (typeof input.name !== 'string' || !NAME_RE.test(input.name)) {
        throw new RepoError('BACKSTORE_INVALID', `${field}.name: use 1 to 64 letters, digits, '_', '.', ':', '+' or '-', starting with a letter or digit`, `${field}.name`);
      }
      if (nameTaken.get(input.name) !== undefined) {
        throw new RepoError('BACKSTORE_NAME_TAKEN', `${field}.name: a backstore named "${input.name}" already exists; choose another name`, `${field}.name`);
      }
      name = input.name;
    } else {
      name = uniqueName(path === null ? 'memory' : basename(path).replace(/\.[^.]*$/, ''));
    }
    let wwn: string;
    if (input.wwn !== undefined) {
      if (typeof input.wwn !== 'string' || input.wwn.length === 0 || input.wwn.length > 128 || /\p{Cc}/u.test(input.wwn)) {
        throw new RepoError('BACKSTORE_INVALID', `${field}.wwn: expected 1 to 128 printable characters (e.g. a UUID)`, `${field}.wwn`);
      }
      wwn = input.wwn;
    } else {
      wwn = randomUUID();
    }
    const { lastInsertRowid } = insert.run(name, kind, path, size, bit(readOnly), bit(thin), wwn, ctx.now());
    return byId(Number(lastInsertRowid)) as Backstore;
  };

  return {
    byId,
    resolve(ref, field) {
      const o = requireObject(ref, field);
      if ('id' in o) {
        const found = byId(requireId(o.id, `${field}.id`));
        if (found === undefined) throw new RepoError('BACKSTORE_NOT_FOUND', `${field}: there is no backstore with id ${String(o.id)}`, field);
        return found;
      }
      if (!('kind' in o) && 'name' in o) {
        const r = typeof o.name === 'string' ? selectByName.get(o.name) : undefined;
        if (r === undefined) throw new RepoError('BACKSTORE_NOT_FOUND', `${field}: there is no backstore named ${JSON.stringify(o.name)}`, field);
        return toBackstore(r);
      }
      const input = o as unknown as BackstoreInput;
      if (input.kind !== 'memory' && typeof input.path === 'string') {
        const existing = selectByPath.get(input.path);
        if (existing !== undefined) {
          const b = toBackstore(existing);
          if (b.kind !== input.kind) {
            throw new RepoError(
              'BACKSTORE_CONFLICT',
              `${field}: ${b.path} is already a ${b.kind} backstore ("${b.name}"), not a ${String(input.kind)}; use kind "${b.kind}"`,
              field,
            );
          }
          if (input.sizeBytes !== undefined && b.sizeBytes !== null && input.sizeBytes !== b.sizeBytes) {
            throw new RepoError(
              'BACKSTORE_CONFLICT',
              `${field}: ${b.path} is already a backstore of ${b.sizeBytes} bytes, not ${input.sizeBytes}; leave the size out to use it as it is`,
              field,
            );
          }
          return b;
        }
      }
      return create(input, field);
    },
    assertNoOtherWriter(backstore, field, exceptLunId = 0) {
      const w = writer.get(backstore.id, exceptLunId);
      if (w === undefined) return;
      const what = backstore.path ?? `memory backstore "${backstore.name}"`;
      throw new RepoError(
        'BACKSTORE_IN_USE',
        `${what} is already LUN ${w.lun} of ${w.iqn}; share it read-only or remove that LUN first`,
        field,
      );
    },
    dropIfUnused(ids) {
      for (const id of new Set(ids)) deleteUnused.run(id, id);
    },
  };
}

export function createBackstoresRepo(ctx: RepoContext, ops: BackstoreOps): BackstoresRepo {
  const { db } = ctx;
  const selectAll = db.prepare<[], BackstoreRow>(`SELECT ${BACKSTORE_COLUMNS} FROM backstores ORDER BY id`);
  const selectByName = db.prepare<[string], BackstoreRow>(`SELECT ${BACKSTORE_COLUMNS} FROM backstores WHERE name = ?`);
  const selectByPath = db.prepare<[string], BackstoreRow>(`SELECT ${BACKSTORE_COLUMNS} FROM backstores WHERE path = ?`);
  const usedBy = db.prepare<[number], { target_id: number; iqn: string; lun: number; read_only: number }>(
    `SELECT l.target_id, t.iqn, l.lun, l.read_only FROM luns l JOIN targets t ON t.id = l.target_id
     WHERE l.backstore_id = ? ORDER BY t.iqn, l.lun`,
  );
  const setSize = db.prepare<[number | null, number]>('UPDATE backstores SET size_bytes = ? WHERE id = ?');
  const setThin = db.prepare<[number, number]>('UPDATE backstores SET thin = ? WHERE id = ?');
  const setReadOnly = db.prepare<[number, number]>('UPDATE backstores SET read_only = ? WHERE id = ?');
  const setName = db.prepare<[string, number]>('UPDATE backstores SET name = ? WHERE id = ?');
  const lunsReadOnly = db.prepare<[number]>('UPDATE luns SET read_only = 1 WHERE backstore_id = ?');
  const del = db.prepare<[number]>('DELETE FROM backstores WHERE id = ?');

  const mustGet = (id: number): Backstore => {
    const b = ops.byId(requireId(id, 'id'));
    if (b === undefined) throw new RepoError('BACKSTORE_NOT_FOUND', `there is no backstore with id ${id}`, 'id');
    return b;
  };

  return {
    list: () => selectAll.all().map(toBackstore),
    get(idOrName) {
      if (typeof idOrName === 'number') return ops.byId(idOrName);
      const r = selectByName.get(idOrName);
      return r === undefined ? undefined : toBackstore(r);
    },
    findByPath(path) {
      const r = selectByPath.get(path);
      return r === undefined ? undefined : toBackstore(r);
    },
    create: (input) => ctx.tx(() => ops.resolve(input, 'backstore')),
    update: (id, patch) =>
      ctx.tx(() => {
        const b = mustGet(id);
        const p = requireObject(patch, 'patch');
        if (p.sizeBytes !== undefined) {
          const s = p.sizeBytes;
          if (s === null ? b.kind === 'memory' : !Number.isSafeInteger(s) || (s as number) <= 0 || (s as number) % BLOCK_SIZE !== 0) {
            throw new RepoError('BACKSTORE_INVALID', `sizeBytes: the size must be a positive whole number of ${BLOCK_SIZE}-byte blocks`, 'sizeBytes');
          }
          setSize.run(s as number | null, b.id);
        }
        if (p.thin !== undefined) setThin.run(bit(optionalBool(p.thin, 'thin', b.thin)), b.id);
        if (p.readOnly !== undefined) {
          const ro = optionalBool(p.readOnly, 'readOnly', b.readOnly);
          if (ro) lunsReadOnly.run(b.id);
          setReadOnly.run(bit(ro), b.id);
        }
        if (p.name !== undefined && p.name !== b.name) {
          if (typeof p.name !== 'string' || !NAME_RE.test(p.name)) throw invalid('name', 'use 1 to 64 letters, digits, _ . : + -');
          if (selectByName.get(p.name) !== undefined) {
            throw new RepoError('BACKSTORE_NAME_TAKEN', `a backstore named "${p.name}" already exists; choose another name`, 'name');
          }
          setName.run(p.name, b.id);
        }
        return mustGet(b.id);
      }),
    remove: (id) =>
      ctx.tx(() => {
        const b = ops.byId(id);
        if (b === undefined) return false;
        const users = usedBy.all(b.id);
        if (users.length > 0) {
          const u = users[0]!;
          throw new RepoError(
            'BACKSTORE_IN_USE',
            `${b.path ?? `memory backstore "${b.name}"`} is LUN ${u.lun} of ${u.iqn}; remove that LUN first`,
            'id',
          );
        }
        del.run(b.id);
        return true;
      }),
    usedBy: (id) => usedBy.all(id).map((r) => ({ targetId: r.target_id, targetIqn: r.iqn, lun: r.lun, readOnly: bool(r.read_only) })),
  };
}
