// LUNs: a target's numbered logical units, each on a backstore.
import { RepoError } from '../errors';
import { type Backstore, type BackstoreOps, type BackstoreRef, type BackstoreRow, BACKSTORE_COLUMNS, toBackstore } from './backstores';
import { bit, bool, lunNumber, optionalBool, requireObject, type RepoContext } from './common';
import type { TargetLookup } from './target-lookup';

export interface Lun {
  id: number;
  targetId: number;
  lun: number;
  /** Effective: true when the LUN or its backstore is read-only. */
  readOnly: boolean;
  backstore: Backstore;
}

export interface LunInput {
  lun: number;
  backstore: BackstoreRef;
  /** Default false. Always true on a read-only backstore. */
  readOnly?: boolean;
}

export interface LunsRepo {
  list(target: number | string): Lun[];
  get(target: number | string, lun: number): Lun | undefined;
  add(target: number | string, input: LunInput): Lun;
  /** Removes the LUN; its backstore goes too once no LUN uses it, unless keepBackstore. */
  remove(target: number | string, lun: number, options?: { keepBackstore?: boolean }): boolean;
  setReadOnly(target: number | string, lun: number, readOnly: boolean): Lun;
}

interface LunJoinRow {
  lun_id: number;
  target_id: number;
  lun: number;
  lun_read_only: number;
}

type LunRow = LunJoinRow & BackstoreRow;

const LUN_SELECT = `SELECT l.id AS lun_id, l.target_id, l.lun, l.read_only AS lun_read_only,
  ${BACKSTORE_COLUMNS.split(', ').map((c) => `b.${c}`).join(', ')}
  FROM luns l JOIN backstores b ON b.id = l.backstore_id`;

export function toLun(r: LunRow): Lun {
  return { id: r.lun_id, targetId: r.target_id, lun: r.lun, readOnly: bool(r.lun_read_only), backstore: toBackstore(r) };
}

export interface LunOps {
  insert(targetId: number, input: LunInput, field: string): Lun;
  listFor(targetId: number): Lun[];
  listAll(): Lun[];
}

export function createLunOps(ctx: RepoContext, backstores: BackstoreOps): LunOps {
  const { db } = ctx;
  const exists = db.prepare<[number, number], number>('SELECT 1 FROM luns WHERE target_id = ? AND lun = ?').pluck();
  const insert = db.prepare<[number, number, number, number, string]>(
    'INSERT INTO luns (target_id, lun, backstore_id, read_only, created_at) VALUES (?, ?, ?, ?, ?)',
  );
  const byId = db.prepare<[number], LunRow>(`${LUN_SELECT} WHERE l.id = ?`);
  const forTarget = db.prepare<[number], LunRow>(`${LUN_SELECT} WHERE l.target_id = ? ORDER BY l.lun`);
  const all = db.prepare<[], LunRow>(`${LUN_SELECT} ORDER BY l.target_id, l.lun`);
  return {
    insert(targetId, input, field) {
      const o = requireObject(input, field);
      const lun = lunNumber(o.lun, `${field}.lun`);
      if (exists.get(targetId, lun) !== undefined) {
        throw new RepoError('LUN_EXISTS', `${field}.lun: LUN ${lun} already exists in this target; choose another number`, `${field}.lun`);
      }
      if (o.backstore === undefined) throw new RepoError('BACKSTORE_INVALID', `${field}.backstore: say what the LUN is stored on`, `${field}.backstore`);
      const backstore = backstores.resolve(o.backstore as BackstoreRef, `${field}.backstore`);
      const readOnly = optionalBool(o.readOnly, `${field}.readOnly`, false) || backstore.readOnly;
      if (!readOnly) backstores.assertNoOtherWriter(backstore, `${field}.backstore`);
      const { lastInsertRowid } = insert.run(targetId, lun, backstore.id, bit(readOnly), ctx.now());
      return toLun(byId.get(Number(lastInsertRowid)) as LunRow);
    },
    listFor: (targetId) => forTarget.all(targetId).map(toLun),
    listAll: () => all.all().map(toLun),
  };
}

export function createLunsRepo(ctx: RepoContext, ops: LunOps, backstores: BackstoreOps, targets: TargetLookup): LunsRepo {
  const { db } = ctx;
  const one = db.prepare<[number, number], LunRow>(`${LUN_SELECT} WHERE l.target_id = ? AND l.lun = ?`);
  const del = db.prepare<[number]>('DELETE FROM luns WHERE id = ?');
  const setRo = db.prepare<[number, number]>('UPDATE luns SET read_only = ? WHERE id = ?');
  const touch = db.prepare<[string, number]>('UPDATE targets SET updated_at = ? WHERE id = ?');

  const mustGet = (targetId: number, lun: number): Lun => {
    const r = one.get(targetId, lunNumber(lun));
    if (r === undefined) throw new RepoError('LUN_NOT_FOUND', `there is no LUN ${lun} in this target`, 'lun');
    return toLun(r);
  };

  return {
    list: (target) => ops.listFor(targets.require(target).id),
    get(target, lun) {
      const t = targets.find(target);
      if (t === undefined) return undefined;
      const r = one.get(t.id, lun);
      return r === undefined ? undefined : toLun(r);
    },
    add: (target, input) =>
      ctx.tx(() => {
        const t = targets.require(target);
        const lun = ops.insert(t.id, input, 'lun');
        touch.run(ctx.now(), t.id);
        return lun;
      }),
    remove: (target, lun, options = {}) =>
      ctx.tx(() => {
        const t = targets.require(target);
        const r = one.get(t.id, lunNumber(lun));
        if (r === undefined) return false;
        del.run(r.lun_id);
        if (options.keepBackstore !== true) backstores.dropIfUnused([r.id]);
        touch.run(ctx.now(), t.id);
        return true;
      }),
    setReadOnly: (target, lun, readOnly) =>
      ctx.tx(() => {
        const t = targets.require(target);
        const l = mustGet(t.id, lun);
        const ro = optionalBool(readOnly, 'readOnly', l.readOnly);
        if (!ro) {
          if (l.backstore.readOnly) {
            throw new RepoError('BACKSTORE_IN_USE', `${l.backstore.path ?? l.backstore.name} is a read-only backstore, so its LUNs are read-only`, 'readOnly');
          }
          backstores.assertNoOtherWriter(l.backstore, 'readOnly', l.id);
        }
        setRo.run(bit(ro), l.id);
        touch.run(ctx.now(), t.id);
        return mustGet(t.id, lun);
      }),
  };
}
