// Finding a target row by id or IQN, for every repository that hangs off targets.
import { normalizeIscsiName } from '../../iscsi/names';
import { RepoError } from '../errors';
import type { RepoContext } from './common';

export interface TargetRow {
  id: number;
  iqn: string;
  alias: string | null;
  enabled: number;
  disabled_reason: string | null;
  created_at: string;
  updated_at: string;
}

export const TARGET_COLUMNS = 'id, iqn, alias, enabled, disabled_reason, created_at, updated_at';

export interface TargetLookup {
  /** By id (number or string of digits) or IQN (any case). */
  find(key: number | string): TargetRow | undefined;
  /** As find, else RepoError TARGET_NOT_FOUND. */
  require(key: number | string): TargetRow;
}

export function createTargetLookup(ctx: RepoContext): TargetLookup {
  const byId = ctx.db.prepare<[number], TargetRow>(`SELECT ${TARGET_COLUMNS} FROM targets WHERE id = ?`);
  const byIqn = ctx.db.prepare<[string], TargetRow>(`SELECT ${TARGET_COLUMNS} FROM targets WHERE iqn = ?`);
  const find = (key: number | string): TargetRow | undefined => {
    if (typeof key === 'number') return Number.isSafeInteger(key) ? byId.get(key) : undefined;
    if (typeof key !== 'string') return undefined;
    if (/^\d+$/.test(key)) return byId.get(Number(key));
    return byIqn.get(normalizeIscsiName(key.trim()));
  };
  return {
    find,
    require(key) {
      const row = find(key);
      if (row === undefined) {
        throw new RepoError('TARGET_NOT_FOUND', `there is no target ${typeof key === 'number' ? `with id ${key}` : `"${String(key)}"`}; see the target list`, 'target');
      }
      return row;
    },
  };
}
