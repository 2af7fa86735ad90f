// ACLs: which initiators may log in to a target, each optionally with CHAP
// (one-way: the initiator proves chap; mutual: the target proves mutualChap).
// Secrets go to the SecretStore; rows keep references. Nothing here but
// `credentials` ever returns a secret.
import { RepoError } from '../errors';
import { chapPair, initiatorIqn, requireId, requireObject, type ChapInput, type RepoContext } from './common';
import type { TargetLookup } from './target-lookup';

export interface Acl {
  id: number;
  targetId: number;
  initiatorIqn: string;
  /** CHAP user name the initiator must present, or null (no CHAP). */
  chapUser: string | null;
  /** CHAP user name the target answers mutual CHAP with, or null. */
  mutualUser: string | null;
  createdAt: string;
}

export interface AclInput {
  initiatorIqn: string;
  chap?: ChapInput | null;
  mutualChap?: ChapInput | null;
}

export interface AclCredentials {
  initiatorIqn: string;
  chap: ChapInput | null;
  mutualChap: ChapInput | null;
}

export interface AclsRepo {
  /** Every ACL, or a target's. */
  list(target?: number | string): Acl[];
  get(id: number): Acl | undefined;
  find(target: number | string, initiatorIqn: string): Acl | undefined;
  /** Adds an ACL; a pending access request of that initiator for that target becomes "allowed". */
  add(target: number | string, input: AclInput): Acl;
  remove(id: number): boolean;
  removeFor(target: number | string, initiatorIqn: string): boolean;
  /** Replaces the ACL's CHAP settings (null: none). */
  setChap(id: number, chap: ChapInput | null, mutualChap?: ChapInput | null): Acl;
  /** The only way to read CHAP secrets back. */
  credentials(id: number): AclCredentials;
}

export interface AclRow {
  id: number;
  target_id: number;
  initiator_iqn: string;
  chap_user: string | null;
  chap_secret_ref: string | null;
  mutual_user: string | null;
  mutual_secret_ref: string | null;
  created_at: string;
}

const ACL_COLUMNS = 'id, target_id, initiator_iqn, chap_user, chap_secret_ref, mutual_user, mutual_secret_ref, created_at';

export function toAcl(r: AclRow): Acl {
  return { id: r.id, targetId: r.target_id, initiatorIqn: r.initiator_iqn, chapUser: r.chap_user, mutualUser: r.mutual_user, createdAt: r.created_at };
}

export interface AclOps {
  insert(targetId: number, targetIqn: string, input: AclInput, field: string): Acl;
  listFor(targetId: number): Acl[];
  listAll(): Acl[];
  /** Secret references held by a target's ACLs (to drop when it goes). */
  secretRefsOf(targetId: number): string[];
}

export function createAclOps(ctx: RepoContext): AclOps {
  const { db } = ctx;
  const exists = db.prepare<[number, string], number>('SELECT 1 FROM acls WHERE target_id = ? AND initiator_iqn = ?').pluck();
  const insert = db.prepare<[number, string, string | null, string | null, string | null, string | null, string]>(
    `INSERT INTO acls (target_id, initiator_iqn, chap_user, chap_secret_ref, mutual_user, mutual_secret_ref, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const byId = db.prepare<[number], AclRow>(`SELECT ${ACL_COLUMNS} FROM acls WHERE id = ?`);
  const forTarget = db.prepare<[number], AclRow>(`SELECT ${ACL_COLUMNS} FROM acls WHERE target_id = ? ORDER BY id`);
  const all = db.prepare<[], AclRow>(`SELECT ${ACL_COLUMNS} FROM acls ORDER BY target_id, id`);
  const markAllowed = db.prepare<[string, string, string]>(
    `UPDATE access_requests SET decision = 'allowed', decided_at = ?
     WHERE initiator_iqn = ? AND target_iqn = ? AND decision IS NULL`,
  );
  return {
    insert(targetId, targetIqn, input, field) {
      const o = requireObject(input, field);
      const name = initiatorIqn(o.initiatorIqn, `${field}.initiatorIqn`);
      if (exists.get(targetId, name) !== undefined) {
        throw new RepoError('ACL_EXISTS', `${name} is already allowed on ${targetIqn}`, `${field}.initiatorIqn`);
      }
      const { chap, mutual } = chapPair(o.chap, o.mutualChap, field);
      const chapRef = chap === null ? null : ctx.putSecret(chap.secret);
      const mutualRef = mutual === null ? null : ctx.putSecret(mutual.secret);
      const now = ctx.now();
      const { lastInsertRowid } = insert.run(targetId, name, chap?.user ?? null, chapRef, mutual?.user ?? null, mutualRef, now);
      markAllowed.run(now, name, targetIqn);
      return toAcl(byId.get(Number(lastInsertRowid)) as AclRow);
    },
    listFor: (targetId) => forTarget.all(targetId).map(toAcl),
    listAll: () => all.all().map(toAcl),
    secretRefsOf: (targetId) =>
      forTarget.all(targetId).flatMap((r) => [r.chap_secret_ref, r.mutual_secret_ref].filter((x): x is string => x !== null)),
  };
}

export function createAclsRepo(ctx: RepoContext, ops: AclOps, targets: TargetLookup): AclsRepo {
  const { db } = ctx;
  const byId = db.prepare<[number], AclRow>(`SELECT ${ACL_COLUMNS} FROM acls WHERE id = ?`);
  const byName = db.prepare<[number, string], AclRow>(`SELECT ${ACL_COLUMNS} FROM acls WHERE target_id = ? AND initiator_iqn = ?`);
  const del = db.prepare<[number]>('DELETE FROM acls WHERE id = ?');
  const setChap = db.prepare<[string | null, string | null, string | null, string | null, number]>(
    'UPDATE acls SET chap_user = ?, chap_secret_ref = ?, mutual_user = ?, mutual_secret_ref = ? WHERE id = ?',
  );
  const touch = db.prepare<[string, number]>('UPDATE targets SET updated_at = ? WHERE id = ?');

  const mustGet = (id: number): AclRow => {
    const r = byId.get(requireId(id, 'id'));
    if (r === undefined) throw new RepoError('ACL_NOT_FOUND', `there is no ACL with id ${id}`, 'id');
    return r;
  };
  const removeRow = (r: AclRow): void => {
    del.run(r.id);
    ctx.dropSecret(r.chap_secret_ref);
    ctx.dropSecret(r.mutual_secret_ref);
    touch.run(ctx.now(), r.target_id);
  };

  return {
    list: (target) => (target === undefined ? ops.listAll() : ops.listFor(targets.require(target).id)),
    get(id) {
      const r = byId.get(id);
      return r === undefined ? undefined : toAcl(r);
    },
    find(target, name) {
      const t = targets.find(target);
      if (t === undefined) return undefined;
      const r = byName.get(t.id, initiatorIqn(name));
      return r === undefined ? undefined : toAcl(r);
    },
    add: (target, input) =>
      ctx.tx(() => {
        const t = targets.require(target);
        const acl = ops.insert(t.id, t.iqn, input, 'acl');
        touch.run(ctx.now(), t.id);
        return acl;
      }),
    remove: (id) =>
      ctx.tx(() => {
        const r = byId.get(id);
        if (r === undefined) return false;
        removeRow(r);
        return true;
      }),
    removeFor: (target, name) =>
      ctx.tx(() => {
        const t = targets.require(target);
        const r = byName.get(t.id, initiatorIqn(name));
        if (r === undefined) return false;
        removeRow(r);
        return true;
      }),
    setChap: (id, chapIn, mutualIn = null) =>
      ctx.tx(() => {
        const r = mustGet(id);
        const { chap, mutual } = chapPair(chapIn, mutualIn, 'acl');
        const chapRef = chap === null ? null : ctx.putSecret(chap.secret);
        const mutualRef = mutual === null ? null : ctx.putSecret(mutual.secret);
        setChap.run(chap?.user ?? null, chapRef, mutual?.user ?? null, mutualRef, r.id);
        ctx.dropSecret(r.chap_secret_ref);
        ctx.dropSecret(r.mutual_secret_ref);
        touch.run(ctx.now(), r.target_id);
        return toAcl(mustGet(r.id));
      }),
    credentials(id) {
      const r = mustGet(id);
      return {
        initiatorIqn: r.initiator_iqn,
        chap: r.chap_user === null || r.chap_secret_ref === null ? null : { user: r.chap_user, secret: ctx.secrets.get(r.chap_secret_ref) },
        mutualChap:
          r.mutual_user === null || r.mutual_secret_ref === null ? null : { user: r.mutual_user, secret: ctx.secrets.get(r.mutual_secret_ref) },
      };
    },
  };
}
