// Between the store and a SpindleConfig: what `config.exportLio` reads and
// `config.importLio` writes. readConfig includes CHAP secrets (it has to, for
// LIO's file); applyConfig writes a config in one transaction.
import { isRepoError, type Store } from '../../store';
import { validateSpindleConfig, type ConfigBackstore, type ConfigTarget, type SpindleConfig } from './spindle-config';

/** The store's targets, backstores and shared portals as a SpindleConfig (with secrets). */
export function readConfig(store: Store): SpindleConfig {
  return store.transaction(() => {
    const backstores = store.backstores.list().map((b): ConfigBackstore => ({
      name: b.name,
      kind: b.kind,
      ...(b.path !== null ? { path: b.path } : {}),
      ...(b.sizeBytes !== null && b.kind !== 'block' ? { sizeBytes: b.sizeBytes } : {}),
      readOnly: b.readOnly,
      thin: b.thin,
      wwn: b.wwn,
    }));
    const targets = store.targets.list().map((t): ConfigTarget => ({
      iqn: t.iqn,
      ...(t.alias !== null ? { alias: t.alias } : {}),
      enabled: t.enabled,
      luns: t.luns.map((l) => ({ lun: l.lun, backstore: l.backstore.name, readOnly: l.readOnly })),
      acls: t.acls.map((a) => {
        const c = store.acls.credentials(a.id);
        return {
          initiatorIqn: a.initiatorIqn,
          ...(c.chap !== null ? { chap: c.chap } : {}),
          ...(c.mutualChap !== null ? { mutualChap: c.mutualChap } : {}),
        };
      }),
      portals: t.portals.map((p) => ({ host: p.host, port: p.port })),
    }));
    const portals = store.portals.list({ target: null }).map((p) => ({ host: p.host, port: p.port }));
    return { backstores, portals, targets };
  });
}

export interface ApplyConfigResult {
  /** IQNs of the targets created. */
  created: string[];
  /** What was not applied, with why (path into the config). */
  skipped: Array<{ path: string; reason: string }>;
}

/**
 * Writes `config` into the store in one transaction. By default it merges:
 * targets whose IQN exists are left alone (and reported), backstores whose
 * path is known are reused. With `replace` every existing target and shared
 * portal goes first. A target that cannot be created (say, its image is
 * already a read-write LUN elsewhere) is reported and the rest go on.
 */
export function applyConfig(store: Store, config: SpindleConfig, options: { replace?: boolean } = {}): ApplyConfigResult {
  validateSpindleConfig(config);
  const created: string[] = [];
  const skipped: ApplyConfigResult['skipped'] = [];
  const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));

  store.transaction(() => {
    if (options.replace === true) {
      for (const t of store.targets.list()) store.targets.remove(t.id);
      for (const p of store.portals.list({ target: null })) store.portals.remove(p.id);
      for (const b of store.backstores.list()) if (store.backstores.usedBy(b.id).length === 0) store.backstores.remove(b.id);
    }
    config.portals.forEach((p, i) => {
      try {
        store.portals.add({ host: p.host, port: p.port, target: null });
      } catch (err) {
        if (!isRepoError(err, 'PORTAL_EXISTS')) skipped.push({ path: `portals[${i}]`, reason: describe(err) });
      }
    });

    // Backstores the new targets use, and those no target uses (LIO keeps
    // unused storage objects; so does Spindle). An existing backstore with
    // the same path (or, for memory, the same wwn) is reused.
    const fresh = config.targets.filter((t) => store.targets.get(t.iqn) === undefined);
    const used = new Set(config.targets.flatMap((t) => t.luns.map((l) => l.backstore)));
    const needed = new Set([...fresh.flatMap((t) => t.luns.map((l) => l.backstore)), ...config.backstores.map((b) => b.name).filter((n) => !used.has(n))]);
    const ids = new Map<string, number>();
    config.backstores.forEach((b, i) => {
      if (!needed.has(b.name)) return;
      try {
        const known = store.backstores.list();
        const existing =
          (b.path !== undefined ? known.find((x) => x.path === b.path) : undefined) ??
          (b.wwn !== undefined ? known.find((x) => x.wwn === b.wwn && x.kind === b.kind && x.path === (b.path ?? null)) : undefined);
        if (existing !== undefined && existing.kind === b.kind) {
          ids.set(b.name, existing.id);
          return;
        }
        const nameFree = !known.some((x) => x.name === b.name);
        const wwnFree = b.wwn !== undefined && !known.some((x) => x.wwn === b.wwn);
        const made = store.backstores.create({
          kind: b.kind,
          ...(b.path !== undefined ? { path: b.path } : {}),
          ...(b.sizeBytes !== undefined ? { sizeBytes: b.sizeBytes } : {}),
          readOnly: b.readOnly,
          thin: b.thin,
          ...(nameFree ? { name: b.name } : {}),
          ...(wwnFree ? { wwn: b.wwn } : {}),
        });
        ids.set(b.name, made.id);
      } catch (err) {
        skipped.push({ path: `backstores[${i}]`, reason: describe(err) });
      }
    });

    config.targets.forEach((t, i) => {
      if (store.targets.get(t.iqn) !== undefined) {
        skipped.push({ path: `targets[${i}]`, reason: `a target named ${t.iqn} already exists; left as it is` });
        return;
      }
      const missing = t.luns.filter((l) => !ids.has(l.backstore));
      for (const l of missing) {
        skipped.push({ path: `targets[${i}].luns`, reason: `LUN ${l.lun}: its backstore "${l.backstore}" could not be created` });
      }
      try {
        store.targets.create({
          iqn: t.iqn,
          ...(t.alias !== undefined ? { alias: t.alias } : {}),
          enabled: t.enabled,
          luns: t.luns.filter((l) => ids.has(l.backstore)).map((l) => ({ lun: l.lun, readOnly: l.readOnly, backstore: { id: ids.get(l.backstore) as number } })),
          acls: t.acls.map((a) => ({ initiatorIqn: a.initiatorIqn, chap: a.chap ?? null, mutualChap: a.mutualChap ?? null })),
          portals: t.portals.map((p) => ({ host: p.host, port: p.port })),
        });
        created.push(t.iqn);
      } catch (err) {
        skipped.push({ path: `targets[${i}]`, reason: describe(err) });
      }
    });
  });
  return { created, skipped };
}
