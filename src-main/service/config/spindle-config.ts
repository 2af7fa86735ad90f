// Spindle's configuration as one plain, JSON-safe value: what the store holds
// about targets, in the shape import/export (LIO's saveconfig.json, backups)
// works with. CHAP secrets are in it in the clear — treat a SpindleConfig
// like a secrets file (never log it, write it 0600).
import { checkWireIscsiName, validateIscsiName } from '../../iscsi/names';

export type ConfigBackstoreKind = 'file' | 'block' | 'memory';

export interface ConfigBackstore {
  /** Unique among backstores; LIO's storage object name. 1–64 of [A-Za-z0-9_.:+-], starting with a letter or digit. */
  name: string;
  kind: ConfigBackstoreKind;
  /** Image file (file) or device (block); absent for memory. */
  path?: string;
  /** Bytes; required for memory, optional for file (LIO needs it to create a missing file), ignored for block. */
  sizeBytes?: number;
  /** The backing is read-only; LUNs on it are read-only too. */
  readOnly: boolean;
  /** Thin provisioning / sparse image (UNMAP deallocates). */
  thin: boolean;
  /** Stable identity (LIO's unit serial, a UUID); kept so initiators see the same disk. */
  wwn?: string;
}

export interface ConfigPortal {
  /** IP address or host name; IPv6 without brackets; 0.0.0.0 / :: = all interfaces. */
  host: string;
  port: number;
}

export interface ConfigChap {
  user: string;
  secret: string;
}

export interface ConfigLun {
  lun: number;
  /** ConfigBackstore.name */
  backstore: string;
  /** Effective: true whenever the backstore is read-only. */
  readOnly: boolean;
}

export interface ConfigAcl {
  initiatorIqn: string;
  /** One-way CHAP: what the initiator must present. */
  chap?: ConfigChap;
  /** Mutual CHAP: what the target presents back (needs chap). */
  mutualChap?: ConfigChap;
}

export interface ConfigTarget {
  iqn: string;
  alias?: string;
  enabled: boolean;
  luns: ConfigLun[];
  acls: ConfigAcl[];
  /** Portals of this target only, in addition to SpindleConfig.portals. */
  portals: ConfigPortal[];
}

export interface SpindleConfig {
  backstores: ConfigBackstore[];
  /** Portals every target listens on. */
  portals: ConfigPortal[];
  targets: ConfigTarget[];
}

export type ConfigErrorCode = 'CONFIG_INVALID' | 'LIO_CONFIG_INVALID';

/** A config (or saveconfig.json) that cannot be read at all; `path` says where, e.g. "targets[1].tpgs[0].luns[2].index". */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly code: ConfigErrorCode,
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

export const BACKSTORE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$/;
export const MAX_CONFIG_LUN = 16383;

/** Structural and referential checks; throws ConfigError('CONFIG_INVALID') naming the first problem. */
export function validateSpindleConfig(value: unknown): asserts value is SpindleConfig {
  const fail = (path: string, msg: string): never => {
    throw new ConfigError('CONFIG_INVALID', path, msg);
  };
  const obj = (v: unknown, path: string): Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(path, 'expected an object');
  const arr = (v: unknown, path: string): unknown[] => (Array.isArray(v) ? v : fail(path, 'expected a list'));
  const bool = (v: unknown, path: string): boolean => (typeof v === 'boolean' ? v : fail(path, 'expected true or false'));
  const str = (v: unknown, path: string): string => (typeof v === 'string' && v.length > 0 ? v : fail(path, 'expected a non-empty string'));
  const int = (v: unknown, path: string, min: number, max: number): number =>
    Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max ? (v as number) : fail(path, `expected a whole number from ${min} to ${max}`);
  const portal = (v: unknown, path: string): void => {
    const p = obj(v, path);
    str(p.host, `${path}.host`);
    int(p.port, `${path}.port`, 1, 65535);
  };
  const chap = (v: unknown, path: string): void => {
    const c = obj(v, path);
    str(c.user, `${path}.user`);
    str(c.secret, `${path}.secret`);
  };

  const root = obj(value, 'config');
  const backstores = new Map<string, ConfigBackstoreKind>();
  arr(root.backstores, 'backstores').forEach((v, i) => {
    const path = `backstores[${i}]`;
    const b = obj(v, path);
    const name = str(b.name, `${path}.name`);
    if (!BACKSTORE_NAME_RE.test(name)) fail(`${path}.name`, 'use 1 to 64 letters, digits, _ . : + -, starting with a letter or digit');
    if (backstores.has(name)) fail(`${path}.name`, `another backstore is also named "${name}"`);
    const kind = b.kind;
    if (kind !== 'file' && kind !== 'block' && kind !== 'memory') fail(`${path}.kind`, 'expected "file", "block" or "memory"');
    if (kind === 'memory') {
      if (b.path !== undefined) fail(`${path}.path`, 'a memory backstore has no path');
      int(b.sizeBytes, `${path}.sizeBytes`, 1, Number.MAX_SAFE_INTEGER);
    } else {
      str(b.path, `${path}.path`);
      if (b.sizeBytes !== undefined) int(b.sizeBytes, `${path}.sizeBytes`, 1, Number.MAX_SAFE_INTEGER);
    }
    bool(b.readOnly, `${path}.readOnly`);
    bool(b.thin, `${path}.thin`);
    if (b.wwn !== undefined) str(b.wwn, `${path}.wwn`);
    backstores.set(name, kind as ConfigBackstoreKind);
  });
  arr(root.portals, 'portals').forEach((p, i) => portal(p, `portals[${i}]`));
  const iqns = new Set<string>();
  arr(root.targets, 'targets').forEach((v, i) => {
    const path = `targets[${i}]`;
    const t = obj(v, path);
    const iqn = str(t.iqn, `${path}.iqn`);
    const r = validateIscsiName(iqn);
    if (!r.ok) fail(`${path}.iqn`, r.reason);
    else if (iqns.has(r.name)) fail(`${path}.iqn`, `another target is also named ${iqn}`);
    else iqns.add(r.name);
    if (t.alias !== undefined) str(t.alias, `${path}.alias`);
    bool(t.enabled, `${path}.enabled`);
    const luns = new Set<number>();
    arr(t.luns, `${path}.luns`).forEach((lv, j) => {
      const lp = `${path}.luns[${j}]`;
      const l = obj(lv, lp);
      const n = int(l.lun, `${lp}.lun`, 0, MAX_CONFIG_LUN);
      if (luns.has(n)) fail(`${lp}.lun`, `LUN ${n} appears twice`);
      luns.add(n);
      const bs = str(l.backstore, `${lp}.backstore`);
      if (!backstores.has(bs)) fail(`${lp}.backstore`, `there is no backstore named "${bs}"`);
      bool(l.readOnly, `${lp}.readOnly`);
    });
    const initiators = new Set<string>();
    arr(t.acls, `${path}.acls`).forEach((av, j) => {
      const ap = `${path}.acls[${j}]`;
      const a = obj(av, ap);
      const name = str(a.initiatorIqn, `${ap}.initiatorIqn`);
      const w = checkWireIscsiName(name);
      if (!w.ok) fail(`${ap}.initiatorIqn`, w.reason);
      else if (initiators.has(w.name)) fail(`${ap}.initiatorIqn`, `${name} is listed twice`);
      else initiators.add(w.name);
      if (a.chap !== undefined) chap(a.chap, `${ap}.chap`);
      if (a.mutualChap !== undefined) {
        if (a.chap === undefined) fail(`${ap}.mutualChap`, 'mutual CHAP needs one-way CHAP as well');
        chap(a.mutualChap, `${ap}.mutualChap`);
      }
    });
    arr(t.portals, `${path}.portals`).forEach((p, j) => portal(p, `${path}.portals[${j}]`));
  });
}
