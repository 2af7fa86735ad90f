// Access requests: initiators a target refused for lack of an ACL, one row
// per (initiator, target), counted, with the user's decision.
import { RepoError } from '../errors';
import type { Acl, AclOps } from './acls';
import { initiatorIqn, optionalText, requireId, requireObject, type ChapInput, type RepoContext } from './common';
import type { TargetLookup } from './target-lookup';

export type AccessDecision = 'allowed' | 'denied';

export interface AccessRequest {
  id: number;
  initiatorIqn: string;
  /** Where the last refused login came from ("192.168.1.20" or "192.168.1.20:51234"). */
  address: string;
  targetIqn: string;
  firstSeen: string;
  lastSeen: string;
  /** Refused logins so far. */
  count: number;
  /** null while pending. */
  decision: AccessDecision | null;
  decidedAt: string | null;
}

export interface AccessRequestInput {
  initiatorIqn: string;
  address: string;
  targetIqn: string;
  /** Default now. */
  at?: Date | string;
}

export interface AccessRequestsRepo {
  /**
   * Records a refused login: a new row, or the existing one for this
   * initiator and target with count + 1, last_seen and address updated and
   * its decision kept. `isNew` is true for the first refusal.
   */
  record(input: AccessRequestInput): AccessRequest & { isNew: boolean };
  /** Most recently seen first; `pending: true` only undecided ones, `false` only decided ones. */
  list(filter?: { pending?: boolean; target?: string }): AccessRequest[];
  get(id: number): AccessRequest | undefined;
  /** Requests of one initiator (any case), optionally for one target. */
  find(initiatorIqn: string, targetIqn?: string): AccessRequest[];
  decide(id: number, decision: AccessDecision): AccessRequest;
  /** In one transaction: adds the ACL (unless there is one) and marks the request allowed. */
  allow(id: number, options?: { chap?: ChapInput | null; mutualChap?: ChapInput | null }): { request: AccessRequest; acl: Acl };
  remove(id: number): boolean;
}

interface Row {
  id: number;
  initiator_iqn: string;
  address: string;
  target_iqn: string;
  first_seen: string;
  last_seen: string;
  count: number;
  decision: AccessDecision | null;
  decided_at: string | null;
}

const COLUMNS = 'id, initiator_iqn, address, target_iqn, first_seen, last_seen, count, decision, decided_at';

const toRequest = (r: Row): AccessRequest => ({
  id: r.id,
  initiatorIqn: r.initiator_iqn,
  address: r.address,
  targetIqn: r.target_iqn,
  firstSeen: r.first_seen,
  lastSeen: r.last_seen,
  count: r.count,
  decision: r.decision,
  decidedAt: r.decided_at,
});

export function createAccessRequestsRepo(ctx: RepoContext, acls: AclOps, targets: TargetLookup): AccessRequestsRepo {
  const { db } = ctx;
  const upsert = db.prepare<[string, string, string, string, string], Row & { inserted: number }>(
    `INSERT INTO access_requests (initiator_iqn, address, target_iqn, first_seen, last_seen, count)
     VALUES (?, ?, ?, ?, ?, 1)
     ON CONFLICT (initiator_iqn, target_iqn) DO UPDATE SET
       count = count + 1,
       address = excluded.address,
       last_seen = max(last_seen, excluded.last_seen),
       first_seen = min(first_seen, excluded.first_seen)
     RETURNING ${COLUMNS}, count = 1 AS inserted`,
  );
  const byId = db.prepare<[number], Row>(`SELECT ${COLUMNS} FROM access_requests WHERE id = ?`);
  const all = db.prepare<[], Row>(`SELECT ${COLUMNS} FROM access_requests ORDER BY last_seen DESC, id DESC`);
  const pending = db.prepare<[], Row>(`SELECT ${COLUMNS} FROM access_requests WHERE decision IS NULL ORDER BY last_seen DESC, id DESC`);
  const decided = db.prepare<[], Row>(`SELECT ${COLUMNS} FROM access_requests WHERE decision IS NOT NULL ORDER BY last_seen DESC, id DESC`);
  const byInitiator = db.prepare<[string], Row>(`SELECT ${COLUMNS} FROM access_requests WHERE initiator_iqn = ? ORDER BY last_seen DESC, id DESC`);
  const setDecision = db.prepare<[AccessDecision, string, number]>('UPDATE access_requests SET decision = ?, decided_at = ? WHERE id = ?');
  const del = db.prepare<[number]>('DELETE FROM access_requests WHERE id = ?');
  const aclExists = db.prepare<[number, string], number>('SELECT id FROM acls WHERE target_id = ? AND initiator_iqn = ?').pluck();
  const aclById = db.prepare<[number], { id: number; target_id: number; initiator_iqn: string; chap_user: string | null; mutual_user: string | null; created_at: string }>(
    'SELECT id, target_id, initiator_iqn, chap_user, mutual_user, created_at FROM acls WHERE id = ?',
  );

  const mustGet = (id: number): Row => {
    const r = byId.get(requireId(id, 'id'));
    if (r === undefined) throw new RepoError('REQUEST_NOT_FOUND', `there is no access request with id ${id}; see the request list`, 'id');
    return r;
  };
  const timestamp = (at: Date | string | undefined): string => {
    if (at === undefined) return ctx.now();
    const d = at instanceof Date ? at : new Date(at);
    if (Number.isNaN(d.getTime())) throw new RepoError('INVALID_INPUT', 'at: expected a date', 'at');
    return d.toISOString();
  };

  return {
    record: (input) =>
      ctx.tx(() => {
        const o = requireObject(input, 'request');
        const initiator = initiatorIqn(o.initiatorIqn, 'initiatorIqn');
        const target = initiatorIqn(o.targetIqn, 'targetIqn'); // the name the initiator asked for, as sent
        const address = optionalText(o.address, 'address', 255);
        if (address === null) throw new RepoError('INVALID_INPUT', 'address: say where the login came from', 'address');
        const at = timestamp(o.at as Date | string | undefined);
        const row = upsert.get(initiator, address, target, at, at) as Row & { inserted: number };
        const { inserted, ...rest } = row;
        return { ...toRequest(rest), isNew: inserted === 1 };
      }),
    list(filter = {}) {
      const rows = filter.pending === true ? pending.all() : filter.pending === false ? decided.all() : all.all();
      const target = filter.target === undefined ? undefined : initiatorIqn(filter.target, 'target');
      return rows.filter((r) => target === undefined || r.target_iqn === target).map(toRequest);
    },
    get(id) {
      const r = byId.get(id);
      return r === undefined ? undefined : toRequest(r);
    },
    find(initiator, targetIqn) {
      const name = initiatorIqn(initiator);
      const target = targetIqn === undefined ? undefined : initiatorIqn(targetIqn, 'targetIqn');
      return byInitiator
        .all(name)
        .filter((r) => target === undefined || r.target_iqn === target)
        .map(toRequest);
    },
    decide: (id, decision) =>
      ctx.tx(() => {
        const r = mustGet(id);
        if (decision !== 'allowed' && decision !== 'denied') {
          throw new RepoError('INVALID_INPUT', `decision: expected "allowed" or "denied", got ${JSON.stringify(decision)}`, 'decision');
        }
        setDecision.run(decision, ctx.now(), r.id);
        return toRequest(mustGet(r.id));
      }),
    allow: (id, options = {}) =>
      ctx.tx(() => {
        const r = mustGet(id);
        const t = targets.find(r.target_iqn);
        if (t === undefined) {
          throw new RepoError('TARGET_NOT_FOUND', `${r.target_iqn} no longer exists, so ${r.initiator_iqn} cannot be allowed on it; deny or remove the request`, 'id');
        }
        const existing = aclExists.get(t.id, r.initiator_iqn);
        const acl =
          existing === undefined
            ? acls.insert(t.id, t.iqn, { initiatorIqn: r.initiator_iqn, chap: options.chap ?? null, mutualChap: options.mutualChap ?? null }, 'acl')
            : (() => {
                const a = aclById.get(existing)!;
                return { id: a.id, targetId: a.target_id, initiatorIqn: a.initiator_iqn, chapUser: a.chap_user, mutualUser: a.mutual_user, createdAt: a.created_at };
              })();
        setDecision.run('allowed', ctx.now(), r.id);
        return { request: toRequest(mustGet(r.id)), acl };
      }),
    remove: (id) => ctx.tx(() => del.run(requireId(id, 'id')).changes > 0),
  };
}
