// Saved remote targets: what the initiator connects to (and mounts) on start.
// CHAP here is the initiator's side: `chap` is what Spindle presents to the
// remote target, `mutualChap` what the remote target must present back.
import { RepoError } from '../errors';
import {
  bit,
  bool,
  chapPair,
  lunNumber,
  optionalBool,
  optionalText,
  portNumber,
  portalHost,
  requireId,
  requireObject,
  remoteTargetIqn,
  type ChapInput,
  type RepoContext,
} from './common';
import { DEFAULT_ISCSI_PORT } from './portals';

export interface RemoteTarget {
  id: number;
  host: string;
  port: number;
  iqn: string;
  chapUser: string | null;
  mutualUser: string | null;
  autoConnect: boolean;
  /** Which LUN is attached/mounted. */
  mountLun: number;
  /** Directory to mount the LUN's file system on, or null (attach only / not at all). */
  mountPoint: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface RemoteTargetInput {
  host: string;
  port?: number;
  iqn: string;
  chap?: ChapInput | null;
  mutualChap?: ChapInput | null;
  autoConnect?: boolean;
  mountLun?: number;
  mountPoint?: string | null;
}

export interface RemoteCredentials {
  chap: ChapInput | null;
  mutualChap: ChapInput | null;
}

export interface RemotesRepo {
  list(): RemoteTarget[];
  get(id: number): RemoteTarget | undefined;
  find(host: string, port: number, iqn: string): RemoteTarget | undefined;
  /** Saves a new remote target, or updates the one with the same host, port and IQN. */
  save(input: RemoteTargetInput): RemoteTarget;
  /** Changes some fields; `chap`/`mutualChap`: undefined keeps, null clears, a pair replaces (both are replaced together). */
  update(id: number, patch: Partial<Omit<RemoteTargetInput, 'host' | 'port' | 'iqn'>>): RemoteTarget;
  remove(id: number): boolean;
  /** The only way to read the secrets back. */
  credentials(id: number): RemoteCredentials;
}

interface Row {
  id: number;
  host: string;
  port: number;
  iqn: string;
  chap_user: string | null;
  chap_secret_ref: string | null;
  mutual_user: string | null;
  mutual_secret_ref: string | null;
  auto_connect: number;
  mount_lun: number;
  mount_point: string | null;
  created_at: string;
  updated_at: string;
}

const COLUMNS =
  'id, host, port, iqn, chap_user, chap_secret_ref, mutual_user, mutual_secret_ref, auto_connect, mount_lun, mount_point, created_at, updated_at';

const toRemote = (r: Row): RemoteTarget => ({
  id: r.id,
  host: r.host,
  port: r.port,
  iqn: r.iqn,
  chapUser: r.chap_user,
  mutualUser: r.mutual_user,
  autoConnect: bool(r.auto_connect),
  mountLun: r.mount_lun,
  mountPoint: r.mount_point,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export function createRemotesRepo(ctx: RepoContext): RemotesRepo {
  const { db } = ctx;
  const all = db.prepare<[], Row>(`SELECT ${COLUMNS} FROM remote_targets ORDER BY host, port, iqn`);
  const byId = db.prepare<[number], Row>(`SELECT ${COLUMNS} FROM remote_targets WHERE id = ?`);
  const byKey = db.prepare<[string, number, string], Row>(`SELECT ${COLUMNS} FROM remote_targets WHERE host = ? AND port = ? AND iqn = ?`);
  const byMount = db.prepare<[string, number], Row>(`SELECT ${COLUMNS} FROM remote_targets WHERE mount_point = ? AND id <> ?`);
  const insert = db.prepare<[string, number, string, number, number, string | null, string, string]>(
    `INSERT INTO remote_targets (host, port, iqn, auto_connect, mount_lun, mount_point, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const setChap = db.prepare<[string | null, string | null, string | null, string | null, string, number]>(
    'UPDATE remote_targets SET chap_user = ?, chap_secret_ref = ?, mutual_user = ?, mutual_secret_ref = ?, updated_at = ? WHERE id = ?',
  );
  const setOptions = db.prepare<[number, number, string | null, string, number]>(
    'UPDATE remote_targets SET auto_connect = ?, mount_lun = ?, mount_point = ?, updated_at = ? WHERE id = ?',
  );
  const del = db.prepare<[number]>('DELETE FROM remote_targets WHERE id = ?');

  const mustGet = (id: number): Row => {
    const r = byId.get(requireId(id, 'id'));
    if (r === undefined) throw new RepoError('REMOTE_NOT_FOUND', `there is no saved remote target with id ${id}`, 'id');
    return r;
  };

  /** Applies options and CHAP from `o` onto row `r` (fields absent from `o` are kept). */
  const apply = (r: Row, o: Record<string, unknown>): void => {
    const autoConnect = optionalBool(o.autoConnect, 'autoConnect', bool(r.auto_connect));
    const mountLun = o.mountLun === undefined ? r.mount_lun : lunNumber(o.mountLun, 'mountLun');
    let mountPoint = r.mount_point;
    if ('mountPoint' in o && o.mountPoint !== undefined) {
      mountPoint = optionalText(o.mountPoint, 'mountPoint', 4096);
      if (mountPoint !== null) {
        const other = byMount.get(mountPoint, r.id);
        if (other !== undefined) {
          throw new RepoError('MOUNT_POINT_IN_USE', `${mountPoint} is already the mount point of ${other.iqn} on ${other.host}; choose another directory`, 'mountPoint');
        }
      }
    }
    setOptions.run(bit(autoConnect), mountLun, mountPoint, ctx.now(), r.id);
    if (o.chap !== undefined || o.mutualChap !== undefined) {
      const { chap, mutual } = chapPair(o.chap ?? null, o.mutualChap ?? null, 'remote');
      const chapRef = chap === null ? null : ctx.putSecret(chap.secret);
      const mutualRef = mutual === null ? null : ctx.putSecret(mutual.secret);
      setChap.run(chap?.user ?? null, chapRef, mutual?.user ?? null, mutualRef, ctx.now(), r.id);
      ctx.dropSecret(r.chap_secret_ref);
      ctx.dropSecret(r.mutual_secret_ref);
    }
  };

  return {
    list: () => all.all().map(toRemote),
    get(id) {
      const r = byId.get(id);
      return r === undefined ? undefined : toRemote(r);
    },
    find(host, port, iqn) {
      const r = byKey.get(portalHost(host), portNumber(port), remoteTargetIqn(iqn));
      return r === undefined ? undefined : toRemote(r);
    },
    save: (input) =>
      ctx.tx(() => {
        const o = requireObject(input, 'remote');
        const host = portalHost(o.host, 'host');
        const port = o.port === undefined ? DEFAULT_ISCSI_PORT : portNumber(o.port, 'port');
        const iqn = remoteTargetIqn(o.iqn, 'iqn');
        let row = byKey.get(host, port, iqn);
        if (row === undefined) {
          const now = ctx.now();
          row = byId.get(Number(insert.run(host, port, iqn, 0, 0, null, now, now).lastInsertRowid)) as Row;
        }
        apply(row, o);
        return toRemote(mustGet(row.id));
      }),
    update: (id, patch) =>
      ctx.tx(() => {
        const r = mustGet(id);
        apply(r, requireObject(patch, 'patch'));
        return toRemote(mustGet(r.id));
      }),
    remove: (id) =>
      ctx.tx(() => {
        const r = byId.get(id);
        if (r === undefined) return false;
        del.run(r.id);
        ctx.dropSecret(r.chap_secret_ref);
        ctx.dropSecret(r.mutual_secret_ref);
        return true;
      }),
    credentials(id) {
      const r = mustGet(id);
      return {
        chap: r.chap_user === null || r.chap_secret_ref === null ? null : { user: r.chap_user, secret: ctx.secrets.get(r.chap_secret_ref) },
        mutualChap:
          r.mutual_user === null || r.mutual_secret_ref === null ? null : { user: r.mutual_user, secret: ctx.secrets.get(r.mutual_secret_ref) },
      };
    },
  };
}
