// Targets, with their LUNs, ACLs and own portals. Every change is one
// transaction: create makes backstores, target, LUNs, ACLs and portals
// together or not at all.
import { RepoError } from '../errors';
import type { AclInput, AclOps, Acl } from './acls';
import type { BackstoreOps } from './backstores';
import { bit, bool, optionalBool, optionalText, requireObject, targetIqn, type RepoContext } from './common';
import type { Lun, LunInput, LunOps } from './luns';
import type { Portal, PortalInput, PortalOps } from './portals';
import { TARGET_COLUMNS, type TargetLookup, type TargetRow } from './target-lookup';

export interface Target {
  id: number;
  /** Normalized (lowercase) iSCSI name. */
  iqn: string;
  alias: string | null;
  enabled: boolean;
  /** Why the target is disabled (e.g. its image file is gone); null when enabled or disabled by the user without one. */
  disabledReason: string | null;
  createdAt: string;
  updatedAt: string;
  luns: Lun[];
  acls: Acl[];
  /** The target's own portals; it also listens on the shared ones (store.portals.list({ target: null })). */
  portals: Portal[];
}

export interface TargetInput {
  iqn: string;
  alias?: string | null;
  /** Default true. */
  enabled?: boolean;
  luns?: LunInput[];
  acls?: AclInput[];
  portals?: PortalInput[];
}

export interface TargetsRepo {
  list(): Target[];
  /** By id (or a string of digits) or IQN in any case. */
  get(iqnOrId: number | string): Target | undefined;
  create(input: TargetInput): Target;
  /** Renames (iqn) or re-labels (alias; null or '' clears it). */
  update(target: number | string, patch: { iqn?: string; alias?: string | null }): Target;
  /** Removes the target with its LUNs, ACLs (and their secrets) and own portals; backstores no LUN uses any more go too unless keepBackstores. */
  remove(target: number | string, options?: { keepBackstores?: boolean }): boolean;
  /** Enables (clearing any reason) or disables, optionally saying why. */
  setEnabled(target: number | string, enabled: boolean, reason?: string): Target;
}

export function createTargetsRepo(
  ctx: RepoContext,
  lookup: TargetLookup,
  ops: { backstores: BackstoreOps; luns: LunOps; acls: AclOps; portals: PortalOps },
): TargetsRepo {
  const { db } = ctx;
  const all = db.prepare<[], TargetRow>(`SELECT ${TARGET_COLUMNS} FROM targets ORDER BY iqn`);
  const exists = db.prepare<[string], number>('SELECT 1 FROM targets WHERE iqn = ?').pluck();
  const insert = db.prepare<[string, string | null, number, string, string]>(
    'INSERT INTO targets (iqn, alias, enabled, disabled_reason, created_at, updated_at) VALUES (?, ?, ?, NULL, ?, ?)',
  );
  const setIqn = db.prepare<[string, string, number]>('UPDATE targets SET iqn = ?, updated_at = ? WHERE id = ?');
  const setAlias = db.prepare<[string | null, string, number]>('UPDATE targets SET alias = ?, updated_at = ? WHERE id = ?');
  const setEnabled = db.prepare<[number, string | null, string, number]>(
    'UPDATE targets SET enabled = ?, disabled_reason = ?, updated_at = ? WHERE id = ?',
  );
  const backstoreIdsOf = db.prepare<[number], number>('SELECT DISTINCT backstore_id FROM luns WHERE target_id = ?').pluck();
  const del = db.prepare<[number]>('DELETE FROM targets WHERE id = ?');

  const assemble = (row: TargetRow, luns: Lun[], acls: Acl[], portals: Portal[]): Target => ({
    id: row.id,
    iqn: row.iqn,
    alias: row.alias,
    enabled: bool(row.enabled),
    disabledReason: row.disabled_reason,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    luns,
    acls,
    portals,
  });
  const load = (row: TargetRow): Target =>
    assemble(row, ops.luns.listFor(row.id), ops.acls.listFor(row.id), ops.portals.listFor(row.id));

  const assertFree = (iqn: string, field: string): void => {
    if (exists.get(iqn) !== undefined) {
      throw new RepoError('TARGET_EXISTS', `a target named ${iqn} already exists; choose another IQN or edit that target`, field);
    }
  };

  return {
    list() {
      // Four queries for any number of targets, grouped here.
      const group = <T extends { targetId: number | null }>(items: T[]): Map<number, T[]> => {
        const m = new Map<number, T[]>();
        for (const it of items) {
          if (it.targetId === null) continue;
          const list = m.get(it.targetId);
          if (list === undefined) m.set(it.targetId, [it]);
          else list.push(it);
        }
        return m;
      };
      const luns = group(ops.luns.listAll());
      const acls = group(ops.acls.listAll());
      const portals = group(ops.portals.listAll());
      return all.all().map((row) => assemble(row, luns.get(row.id) ?? [], acls.get(row.id) ?? [], portals.get(row.id) ?? []));
    },
    get(key) {
      const row = lookup.find(key);
      return row === undefined ? undefined : load(row);
    },
    create: (input) =>
      ctx.tx(() => {
        const o = requireObject(input, 'target');
        const iqn = targetIqn(o.iqn, 'iqn');
        assertFree(iqn, 'iqn');
        const alias = optionalText(o.alias, 'alias', 255);
        const enabled = optionalBool(o.enabled, 'enabled', true);
        const now = ctx.now();
        const id = Number(insert.run(iqn, alias, bit(enabled), now, now).lastInsertRowid);
        const list = (v: unknown, field: string): unknown[] => {
          if (v === undefined) return [];
          if (!Array.isArray(v)) throw new RepoError('INVALID_INPUT', `${field}: expected a list`, field);
          return v;
        };
        list(o.luns, 'luns').forEach((l, i) => ops.luns.insert(id, l as LunInput, `luns[${i}]`));
        list(o.acls, 'acls').forEach((a, i) => ops.acls.insert(id, iqn, a as AclInput, `acls[${i}]`));
        list(o.portals, 'portals').forEach((p, i) => ops.portals.insert(id, p as PortalInput, `portals[${i}]`));
        return load(lookup.require(id));
      }),
    update: (target, patch) =>
      ctx.tx(() => {
        const row = lookup.require(target);
        const p = requireObject(patch, 'patch');
        const now = ctx.now();
        if (p.iqn !== undefined) {
          const iqn = targetIqn(p.iqn, 'iqn');
          if (iqn !== row.iqn) {
            assertFree(iqn, 'iqn');
            setIqn.run(iqn, now, row.id);
          }
        }
        if ('alias' in p) setAlias.run(optionalText(p.alias, 'alias', 255), now, row.id);
        return load(lookup.require(row.id));
      }),
    remove: (target, options = {}) =>
      ctx.tx(() => {
        const row = lookup.find(target);
        if (row === undefined) return false;
        const backstoreIds = backstoreIdsOf.all(row.id);
        for (const ref of ops.acls.secretRefsOf(row.id)) ctx.dropSecret(ref);
        del.run(row.id); // cascades to luns, acls, own portals
        if (options.keepBackstores !== true) ops.backstores.dropIfUnused(backstoreIds);
        return true;
      }),
    setEnabled: (target, enabled, reason) =>
      ctx.tx(() => {
        const row = lookup.require(target);
        const on = optionalBool(enabled, 'enabled', true);
        const why = on ? null : optionalText(reason, 'reason', 1000);
        setEnabled.run(bit(on), why, ctx.now(), row.id);
        return load(lookup.require(row.id));
      }),
  };
}
