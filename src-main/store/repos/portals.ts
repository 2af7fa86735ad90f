// Portals: where targets listen. A portal without a target is shared: every
// target listens there (the usual single 0.0.0.0:3260).
import { RepoError } from '../errors';
import { portNumber, portalHost, requireId, requireObject, type RepoContext } from './common';
import type { TargetLookup } from './target-lookup';

export const DEFAULT_ISCSI_PORT = 3260;

export interface Portal {
  id: number;
  /** null: shared by every target. */
  targetId: number | null;
  /** Address or host name; IPv6 without brackets. "0.0.0.0" / "::" mean all interfaces. */
  host: string;
  port: number;
  createdAt: string;
}

export interface PortalInput {
  host: string;
  /** Default 3260. */
  port?: number;
}

export interface PortalsRepo {
  /** All portals; `{ target: null }` only shared ones; `{ target }` only that target's own. */
  list(filter?: { target?: number | string | null }): Portal[];
  /** Where a target listens: the shared portals and its own. */
  effective(target: number | string): Portal[];
  add(input: PortalInput & { target?: number | string | null }): Portal;
  remove(id: number): boolean;
}

interface PortalRow {
  id: number;
  target_id: number | null;
  host: string;
  port: number;
  created_at: string;
}

const toPortal = (r: PortalRow): Portal => ({ id: r.id, targetId: r.target_id, host: r.host, port: r.port, createdAt: r.created_at });

export interface PortalOps {
  insert(targetId: number | null, input: PortalInput, field: string): Portal;
  listFor(targetId: number | null): Portal[];
  listAll(): Portal[];
}

export function createPortalOps(ctx: RepoContext): PortalOps {
  const { db } = ctx;
  const exists = db.prepare<[number, string, number], number>(
    'SELECT 1 FROM portals WHERE ifnull(target_id, 0) = ? AND host = ? AND port = ?',
  ).pluck();
  const insert = db.prepare<[number | null, string, number, string]>('INSERT INTO portals (target_id, host, port, created_at) VALUES (?, ?, ?, ?)');
  const byId = db.prepare<[number], PortalRow>('SELECT id, target_id, host, port, created_at FROM portals WHERE id = ?');
  const shared = db.prepare<[], PortalRow>('SELECT id, target_id, host, port, created_at FROM portals WHERE target_id IS NULL ORDER BY id');
  const own = db.prepare<[number], PortalRow>('SELECT id, target_id, host, port, created_at FROM portals WHERE target_id = ? ORDER BY id');
  const all = db.prepare<[], PortalRow>('SELECT id, target_id, host, port, created_at FROM portals ORDER BY ifnull(target_id, 0), id');
  return {
    insert(targetId, input, field) {
      const o = requireObject(input, field);
      const host = portalHost(o.host, `${field}.host`);
      const port = o.port === undefined ? DEFAULT_ISCSI_PORT : portNumber(o.port, `${field}.port`);
      if (exists.get(targetId ?? 0, host, port) !== undefined) {
        const where = targetId === null ? 'a shared portal' : 'a portal of this target';
        throw new RepoError('PORTAL_EXISTS', `${host.includes(':') ? `[${host}]` : host}:${port} is already ${where}`, field);
      }
      const { lastInsertRowid } = insert.run(targetId, host, port, ctx.now());
      return toPortal(byId.get(Number(lastInsertRowid)) as PortalRow);
    },
    listFor: (targetId) => (targetId === null ? shared.all() : own.all(targetId)).map(toPortal),
    listAll: () => all.all().map(toPortal),
  };
}

export function createPortalsRepo(ctx: RepoContext, ops: PortalOps, targets: TargetLookup): PortalsRepo {
  const del = ctx.db.prepare<[number]>('DELETE FROM portals WHERE id = ?');
  return {
    list(filter = {}) {
      if (!('target' in filter) || filter.target === undefined) return ops.listAll();
      if (filter.target === null) return ops.listFor(null);
      return ops.listFor(targets.require(filter.target).id);
    },
    effective(target) {
      const t = targets.require(target);
      return [...ops.listFor(null), ...ops.listFor(t.id)];
    },
    add: (input) =>
      ctx.tx(() => {
        const o = requireObject(input, 'portal');
        const targetId = o.target === undefined || o.target === null ? null : targets.require(o.target as number | string).id;
        return ops.insert(targetId, input, 'portal');
      }),
    remove: (id) => ctx.tx(() => del.run(requireId(id, 'id')).changes > 0),
  };
}
