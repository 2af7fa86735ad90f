// Spindle <-> LIO: a pure mapping between SpindleConfig and targetcli's
// saveconfig.json (rtslib-fb's RTSRoot.dump() format, /etc/target/saveconfig.json).
//
// What LIO writes (rtslib-fb rtslib/root.py dump(), target.py, tcm.py, fabric.py):
//   { "fabric_modules": [ { "name": "iscsi", "discovery_enable_auth": bool, "discovery_userid": ..., ... } ],
//     "storage_objects": [
//        { "plugin": "fileio",  "name", "dev", "size", "write_back", "wwn", "aio", "attributes": {...}, "alua_tpgs": [...] },
//        { "plugin": "block",   "name", "dev", "readonly", "write_back", "wwn", "exclusive", "attributes", ... },
//        { "plugin": "ramdisk", "name", "size", "wwn", "nullio"?, "attributes", ... },
//        { "plugin": "pscsi" | "user", ... } ],
//     "targets": [ { "wwn": "iqn...", "fabric": "iscsi",
//        "tpgs": [ { "tag": 1, "enable": true, "attributes": {...}, "parameters": {...},
//                    "chap_userid"?..., (TPG-level auth, used by demo mode)
//                    "portals":   [ { "ip_address": "0.0.0.0" | "[::0]", "port": 3260, "iser": false, "offload": false } ],
//                    "luns":      [ { "index": 0, "storage_object": "/backstores/fileio/disk0", "alias", "alua_tg_pt_gp_name" } ],
//                    "node_acls": [ { "node_wwn": "iqn...", "chap_userid", "chap_password", "chap_mutual_userid",
//                                     "chap_mutual_password", "attributes": {...},
//                                     "mapped_luns": [ { "index": 0, "tpg_lun": 0, "write_protect": false } ] } ] } ] } ] }
//
// Spindle's model is simpler: one portal group per target, every allowed
// initiator sees every LUN at its own number, CHAP per ACL. importLio maps
// what fits and lists everything else in `unmapped`, each with its path in
// the file and the reason; it throws ConfigError only for a file it cannot
// read at all (not JSON, wrong types, missing required keys).
//
// Two Spindle facts LIO cannot express — portals shared by every target, and
// a read-only image file (LIO's fileio has no read-only flag) — travel in an
// extra top-level "spindle" object. rtslib's restore reads only the three
// keys above, so targetcli ignores it; a file re-saved by targetcli loses it
// and import falls back to: portals present in every target are shared, and
// read-only comes from write-protected LUN mappings.
import { isIPv6 } from 'node:net';
import { checkChapConfig } from '../../iscsi/chap';
import { checkWireIscsiName, validateIscsiName } from '../../iscsi/names';
import {
  BACKSTORE_NAME_RE,
  ConfigError,
  MAX_CONFIG_LUN,
  validateSpindleConfig,
  type ConfigAcl,
  type ConfigBackstore,
  type ConfigLun,
  type ConfigPortal,
  type ConfigTarget,
  type SpindleConfig,
} from './spindle-config';

export * from './spindle-config';

export interface Unmapped {
  /** Where in saveconfig.json, e.g. "targets[0].tpgs[0].attributes.generate_node_acls". */
  path: string;
  reason: string;
}

export interface LioImportResult {
  config: SpindleConfig;
  unmapped: Unmapped[];
}

// ---- the LIO side's shape (what exportLio writes) ---------------------------

export interface LioStorageObject {
  plugin: 'fileio' | 'block' | 'ramdisk';
  name: string;
  dev?: string;
  size?: number;
  readonly?: boolean;
  write_back?: boolean;
  aio?: boolean;
  wwn?: string;
  attributes?: Record<string, number>;
}

export interface LioPortal {
  ip_address: string;
  port: number;
  iser: boolean;
  offload: boolean;
}

export interface LioMappedLun {
  index: number;
  tpg_lun: number;
  write_protect: boolean;
}

export interface LioNodeAcl {
  node_wwn: string;
  mapped_luns: LioMappedLun[];
  chap_userid?: string;
  chap_password?: string;
  chap_mutual_userid?: string;
  chap_mutual_password?: string;
  attributes?: Record<string, number>;
}

export interface LioTpg {
  tag: number;
  enable: boolean;
  attributes: Record<string, number>;
  parameters: Record<string, string>;
  portals: LioPortal[];
  luns: Array<{ index: number; storage_object: string }>;
  node_acls: LioNodeAcl[];
}

export interface LioTarget {
  wwn: string;
  fabric: 'iscsi';
  tpgs: LioTpg[];
}

export interface SpindleAnnotation {
  version: 1;
  /** Portals every target listens on. */
  shared_portals: Array<{ ip_address: string; port: number }>;
  /** fileio storage objects ("/backstores/fileio/NAME") Spindle opens read-only. */
  read_only: string[];
}

export interface LioSaveConfig {
  fabric_modules: unknown[];
  storage_objects: LioStorageObject[];
  targets: LioTarget[];
  spindle: SpindleAnnotation;
}

// ---- LIO defaults ------------------------------------------------------------

const PLUGIN = { file: 'fileio', block: 'block', memory: 'ramdisk' } as const;
const DEFAULT_TARGET_ALIAS = 'LIO Target';

/** A fresh targetcli TPG's attributes (targetcli sets authentication=0 on create). */
const TPG_ATTRIBUTES: Readonly<Record<string, number>> = {
  authentication: 0,
  cache_dynamic_acls: 0,
  default_cmdsn_depth: 64,
  default_erl: 0,
  demo_mode_discovery: 1,
  demo_mode_write_protect: 1,
  generate_node_acls: 0,
  login_timeout: 15,
  netif_timeout: 2,
  prod_mode_write_protect: 0,
  t10_pi: 0,
  tpg_enabled_sendtargets: 1,
};

/** LIO's iSCSI parameter defaults (iscsi_target_parameters.h). */
const TPG_PARAMETERS: Readonly<Record<string, string>> = {
  AuthMethod: 'CHAP,None',
  DataDigest: 'CRC32C,None',
  DataPDUInOrder: 'Yes',
  DataSequenceInOrder: 'Yes',
  DefaultTime2Retain: '20',
  DefaultTime2Wait: '2',
  ErrorRecoveryLevel: '0',
  FirstBurstLength: '65536',
  HeaderDigest: 'CRC32C,None',
  IFMarkInt: 'Reject',
  IFMarker: 'No',
  ImmediateData: 'Yes',
  InitialR2T: 'Yes',
  MaxBurstLength: '262144',
  MaxConnections: '1',
  MaxOutstandingR2T: '1',
  MaxRecvDataSegmentLength: '8192',
  MaxXmitDataSegmentLength: '262144',
  OFMarkInt: 'Reject',
  OFMarker: 'No',
  TargetAlias: DEFAULT_TARGET_ALIAS,
};

/** Negotiation parameters Spindle chooses itself (larger, faster values); a different value in the file is not worth a report. */
const NEGOTIATED_BY_SPINDLE = new Set([
  'AuthMethod', 'DataPDUInOrder', 'DataSequenceInOrder', 'DefaultTime2Retain', 'DefaultTime2Wait', 'FirstBurstLength',
  'ImmediateData', 'InitialR2T', 'MaxBurstLength', 'MaxOutstandingR2T', 'MaxRecvDataSegmentLength',
  'MaxXmitDataSegmentLength', 'IFMarkInt', 'OFMarkInt',
]);

/** TPG attributes that are engine tunables or only matter in demo mode: silently Spindle's own. */
const TPG_ATTRIBUTES_IGNORED = new Set([
  'cache_dynamic_acls', 'default_cmdsn_depth', 'demo_mode_discovery', 'demo_mode_write_protect', 'login_timeout',
  'netif_timeout', 'login_keys_workaround',
]);

// ---- export --------------------------------------------------------------------

/** SpindleConfig -> saveconfig.json (an object; JSON.stringify it). Throws ConfigError for an invalid config. */
export function exportLio(config: SpindleConfig): LioSaveConfig {
  validateSpindleConfig(config);
  const backstores = new Map(config.backstores.map((b) => [b.name, b]));
  const soPath = (b: ConfigBackstore) => `/backstores/${PLUGIN[b.kind]}/${b.name}`;

  const storage_objects = config.backstores.map((b): LioStorageObject => {
    const tpu = b.thin ? 1 : 0;
    switch (b.kind) {
      case 'file':
        return sortKeys({
          plugin: 'fileio',
          name: b.name,
          dev: b.path as string,
          ...(b.sizeBytes !== undefined ? { size: b.sizeBytes } : {}),
          // Spindle caches writes until SYNCHRONIZE CACHE / FUA, as LIO's write-back does.
          write_back: true,
          aio: false,
          ...(b.wwn !== undefined ? { wwn: b.wwn } : {}),
          attributes: { emulate_tpu: tpu, emulate_tpws: tpu },
        });
      case 'block':
        return sortKeys({
          plugin: 'block',
          name: b.name,
          dev: b.path as string,
          readonly: b.readOnly,
          write_back: false,
          ...(b.wwn !== undefined ? { wwn: b.wwn } : {}),
          attributes: { emulate_tpu: tpu, emulate_tpws: tpu },
        });
      case 'memory':
        return sortKeys({
          plugin: 'ramdisk',
          name: b.name,
          size: b.sizeBytes as number,
          ...(b.wwn !== undefined ? { wwn: b.wwn } : {}),
        });
    }
  });

  const targets = config.targets.map((t): LioTarget => {
    const luns = t.luns.map((l) => {
      const b = backstores.get(l.backstore) as ConfigBackstore;
      return { lun: l.lun, so: soPath(b), writeProtect: l.readOnly || b.readOnly };
    });
    const withChap = t.acls.filter((a) => a.chap !== undefined).length;
    // LIO enforces CHAP per TPG; since Linux 5.19 an ACL can override it
    // (acls/*/attrib/authentication: 0 off, 1 on, -1 inherit). Mixed targets
    // enforce it on the TPG and turn it off for the ACLs without CHAP, so an
    // older kernel fails closed (those initiators need CHAP) rather than open.
    const authentication = withChap > 0 ? 1 : 0;
    const mixed = withChap > 0 && withChap < t.acls.length;
    const tpg: LioTpg = {
      tag: 1,
      enable: t.enabled,
      attributes: sortKeys({ ...TPG_ATTRIBUTES, authentication }),
      parameters: sortKeys({ ...TPG_PARAMETERS, TargetAlias: t.alias ?? DEFAULT_TARGET_ALIAS }),
      portals: [...config.portals, ...t.portals].filter(uniquePortal()).map(lioPortal),
      luns: luns.map((l) => ({ index: l.lun, storage_object: l.so })),
      node_acls: t.acls.map((a) =>
        sortKeys({
          node_wwn: a.initiatorIqn,
          mapped_luns: luns.map((l) => ({ index: l.lun, tpg_lun: l.lun, write_protect: l.writeProtect })),
          ...(a.chap !== undefined ? { chap_userid: a.chap.user, chap_password: a.chap.secret } : {}),
          ...(a.mutualChap !== undefined ? { chap_mutual_userid: a.mutualChap.user, chap_mutual_password: a.mutualChap.secret } : {}),
          ...(mixed && a.chap === undefined ? { attributes: { authentication: 0 } } : {}),
        }),
      ),
    };
    return { fabric: 'iscsi', tpgs: [sortKeys(tpg)], wwn: t.iqn };
  });

  return {
    fabric_modules: [],
    storage_objects,
    targets,
    spindle: {
      version: 1,
      shared_portals: config.portals.map((p) => ({ ip_address: lioHost(p.host), port: p.port })),
      read_only: config.backstores.filter((b) => b.kind === 'file' && b.readOnly).map(soPath),
    },
  };
}

function lioHost(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}

function lioPortal(p: ConfigPortal): LioPortal {
  return { ip_address: lioHost(p.host), iser: false, offload: false, port: p.port };
}

function uniquePortal(): (p: ConfigPortal) => boolean {
  const seen = new Set<string>();
  return (p) => {
    const key = `${p.host}|${p.port}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  };
}

function sortKeys<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as T;
}

// ---- import --------------------------------------------------------------------

type Json = Record<string, unknown>;

/** Reads a saveconfig.json (text or parsed) into a SpindleConfig, listing what it could not map. */
export function importLio(input: unknown): LioImportResult {
  const r = new Reader();
  let doc: unknown = input;
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    const text = input.toString();
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new ConfigError('LIO_CONFIG_INVALID', 'saveconfig.json', `not valid JSON (${(err as Error).message}); give the file targetcli's saveconfig wrote`);
    }
  }
  const root = r.obj(doc, 'saveconfig.json');
  const unmapped: Unmapped[] = [];
  const report = (path: string, reason: string) => unmapped.push({ path, reason });

  for (const key of Object.keys(root)) {
    if (!['storage_objects', 'targets', 'fabric_modules', 'spindle'].includes(key)) report(key, 'unknown top-level key; ignored');
  }
  const note = readAnnotation(root.spindle, report);

  // -- fabric modules: only discovery authentication lives here
  r.optArr(root.fabric_modules, 'fabric_modules').forEach((v, i) => {
    const path = `fabric_modules[${i}]`;
    const fm = r.obj(v, path);
    const name = r.str(fm.name, `${path}.name`);
    const auth = fm.discovery_enable_auth === true || fm.discovery_enable_auth === 1;
    const creds = ['discovery_userid', 'discovery_password', 'discovery_mutual_userid', 'discovery_mutual_password'].some((k) => fm[k] !== undefined && fm[k] !== '');
    if (name === 'iscsi') {
      if (auth || creds) report(path, 'CHAP on discovery (SendTargets) is not supported; Spindle answers discovery without CHAP and requires CHAP per ACL at login');
    } else if (Object.keys(fm).length > 1) {
      report(path, `settings of the ${name} fabric module are not used: Spindle serves iSCSI only`);
    }
  });

  // -- storage objects
  const backstores: ConfigBackstore[] = [];
  /** "/backstores/<plugin>/<name>" -> Spindle backstore name, or null when the object was not imported. */
  const soNames = new Map<string, string | null>();
  const takenNames = new Set<string>();
  r.optArr(root.storage_objects, 'storage_objects').forEach((v, i) => {
    const path = `storage_objects[${i}]`;
    const so = r.obj(v, path);
    const name = r.str(so.name, `${path}.name`);
    const plugin = r.str(so.plugin, `${path}.plugin`);
    const canonicalPlugin = plugin === 'iblock' ? 'block' : plugin === 'rd_mcp' ? 'ramdisk' : plugin;
    const key = `/backstores/${canonicalPlugin}/${name}`;
    const attributes = so.attributes === undefined ? {} : r.obj(so.attributes, `${path}.attributes`);
    const wwn = r.optStr(so.wwn, `${path}.wwn`);
    const spindleName = uniqueName(name, canonicalPlugin, takenNames);
    let b: ConfigBackstore;
    switch (canonicalPlugin) {
      case 'fileio': {
        const dev = r.str(so.dev, `${path}.dev`);
        const size = r.optInt(so.size, `${path}.size`);
        const isDevice = dev.startsWith('/dev/') && !dev.startsWith('/dev/shm/');
        b = { name: spindleName, kind: isDevice ? 'block' : 'file', path: dev, readOnly: note.readOnly.has(key), thin: attributes.emulate_tpu === 1 };
        if (size !== undefined && !isDevice) {
          if (size > 0 && size % 512 === 0) b.sizeBytes = size;
          else report(`${path}.size`, `${size} bytes is not a whole number of 512-byte blocks; the image's own size will be used`);
        }
        if (so.write_back === false || attributes.emulate_write_cache === 0) {
          report(`${path}.write_back`, 'write-through (write_back=false) is not kept: Spindle starts with the write cache on and flushes on SYNCHRONIZE CACHE and FUA; an initiator can turn the cache off (MODE SELECT)');
        }
        break;
      }
      case 'block': {
        const dev = r.str(so.dev, `${path}.dev`);
        const readonly = r.optBool(so.readonly, `${path}.readonly`) ?? false;
        b = { name: spindleName, kind: 'block', path: dev, readOnly: readonly, thin: attributes.emulate_tpu === 1 };
        break;
      }
      case 'ramdisk': {
        let size = r.int(so.size, `${path}.size`);
        if (size % 512 !== 0 || size <= 0) {
          const rounded = Math.max(512, size - (size % 512));
          report(`${path}.size`, `${size} bytes is not a whole number of 512-byte blocks; imported as ${rounded}`);
          size = rounded;
        }
        b = { name: spindleName, kind: 'memory', sizeBytes: size, readOnly: false, thin: false };
        if (so.nullio === true) report(`${path}.nullio`, 'a nullio ramdisk (discards writes) becomes an ordinary memory LUN that keeps what is written, until Spindle stops');
        break;
      }
      default: {
        const what =
          plugin === 'pscsi'
            ? 'pscsi (SCSI pass-through) backstores are not supported'
            : plugin === 'user' || plugin.startsWith('user:')
              ? 'user (TCMU) backstores are not supported'
              : `unknown backstore plugin "${plugin}"`;
        report(path, `${what}; LUNs using ${key} are left out`);
        soNames.set(key, null);
        return;
      }
    }
    if (wwn !== undefined && wwn !== '') b.wwn = wwn;
    checkStorageAttributes(attributes, `${path}.attributes`, report);
    if (soNames.has(key)) {
      report(path, `a second storage object named ${key}; left out`);
      return;
    }
    takenNames.add(spindleName);
    soNames.set(key, spindleName);
    backstores.push(b);
  });
  const backstoreByName = new Map(backstores.map((b) => [b.name, b]));

  // -- targets
  const targets: Array<ConfigTarget & { tpgPortals: ConfigPortal[] }> = [];
  const seenIqns = new Set<string>();
  r.optArr(root.targets, 'targets').forEach((v, i) => {
    const path = `targets[${i}]`;
    const t = r.obj(v, path);
    const wwn = r.str(t.wwn, `${path}.wwn`);
    const fabric = r.str(t.fabric, `${path}.fabric`);
    const tpgsRaw = r.optArr(t.tpgs, `${path}.tpgs`);
    if (fabric !== 'iscsi') {
      report(path, `${fabric} target ${wwn}: only iSCSI targets can be imported (${FABRIC_NAMES[fabric] ?? 'not an iSCSI fabric'})`);
      return;
    }
    const name = validateIscsiName(wwn);
    if (!name.ok) {
      report(`${path}.wwn`, `"${wwn}" is not a valid target name (${name.reason}); target left out`);
      return;
    }
    if (seenIqns.has(name.name)) {
      report(path, `a second target named ${wwn}; left out`);
      return;
    }
    seenIqns.add(name.name);

    const tpgs = tpgsRaw.map((tv, j) => ({ j, tpg: r.obj(tv, `${path}.tpgs[${j}]`) }));
    const chosen = tpgs.find(({ j, tpg }) => (r.optBoolish(tpg.enable, `${path}.tpgs[${j}].enable`) ?? true) === true) ?? tpgs[0];
    const target: ConfigTarget & { tpgPortals: ConfigPortal[] } = { iqn: name.name, enabled: false, luns: [], acls: [], portals: [], tpgPortals: [] };
    targets.push(target);
    if (chosen === undefined) {
      report(`${path}.tpgs`, `target ${wwn} has no TPG, so nothing to serve; imported disabled`);
      return;
    }
    for (const { j, tpg } of tpgs) {
      if (j !== chosen.j) {
        report(`${path}.tpgs[${j}]`, `Spindle has one portal group per target; only tpgs[${chosen.j}] is imported, this TPG's LUNs, ACLs and portals are left out`);
      }
    }
    importTpg(r, chosen.tpg, `${path}.tpgs[${chosen.j}]`, target, soNames, backstoreByName, report);
  });

  // -- shared portals
  let shared: ConfigPortal[];
  if (note.sharedPortals !== null) {
    shared = note.sharedPortals;
  } else if (targets.length > 0) {
    const first = targets[0]!;
    shared = first.tpgPortals.filter((p) => targets.every((t) => t.tpgPortals.some((q) => samePortal(p, q))));
  } else {
    shared = [];
  }
  const config: SpindleConfig = {
    backstores,
    portals: shared,
    targets: targets.map(({ tpgPortals, ...t }) => ({ ...t, portals: tpgPortals.filter((p) => !shared.some((s) => samePortal(p, s))) })),
  };
  return { config, unmapped };
}

const FABRIC_NAMES: Record<string, string> = {
  loopback: 'tcm_loop is a local SCSI loopback',
  vhost: 'vhost-scsi serves virtual machines',
  qla2xxx: 'qla2xxx is Fibre Channel',
  tcm_fc: 'tcm_fc is Fibre Channel over Ethernet',
  srpt: 'srpt is SCSI RDMA (InfiniBand)',
  ib_srpt: 'ib_srpt is SCSI RDMA (InfiniBand)',
  usb_gadget: 'usb_gadget is a USB mass-storage gadget',
  xen_pvscsi: 'xen_pvscsi serves Xen guests',
  sbp: 'sbp is FireWire',
  efct: 'efct is Fibre Channel',
};

function samePortal(a: ConfigPortal, b: ConfigPortal): boolean {
  return a.host === b.host && a.port === b.port;
}

function uniqueName(name: string, plugin: string, taken: Set<string>): string {
  let base = BACKSTORE_NAME_RE.test(name) ? name : name.replace(/[^A-Za-z0-9_.:+-]/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 56) || 'disk';
  if (!taken.has(base)) return base;
  base = `${base.slice(0, 56)}-${plugin}`.slice(0, 64);
  let candidate = base;
  for (let n = 2; taken.has(candidate); n++) candidate = `${base.slice(0, 60)}-${n}`;
  return candidate;
}

/** Storage-object attributes that change what an initiator sees and Spindle cannot do. The rest are LIO tunables. */
function checkStorageAttributes(attrs: Json, path: string, report: (path: string, reason: string) => void): void {
  const num = (k: string) => (typeof attrs[k] === 'number' ? (attrs[k] as number) : undefined);
  if ((num('block_size') ?? 512) !== 512) {
    report(`${path}.block_size`, `block size ${String(attrs.block_size)} is not kept: imported LUNs use 512-byte blocks (block devices their own)`);
  }
  for (const k of ['pi_prot_type', 'pi_prot_format']) {
    if ((num(k) ?? 0) !== 0) report(`${path}.${k}`, 'T10 protection information (DIF/PI) is not supported');
  }
  if (num('emulate_pr') === 0 || num('pgr_support') === 0) {
    report(`${path}.emulate_pr`, 'persistent reservations cannot be switched off: Spindle always supports them');
  }
  if (num('emulate_3pc') === 0 || num('emulate_caw') === 0) {
    report(path, 'EXTENDED COPY / COMPARE AND WRITE cannot be switched off: Spindle always offers them');
  }
}

function importTpg(
  r: Reader,
  tpg: Json,
  path: string,
  target: ConfigTarget & { tpgPortals: ConfigPortal[] },
  soNames: Map<string, string | null>,
  backstores: Map<string, ConfigBackstore>,
  report: (path: string, reason: string) => void,
): void {
  target.enabled = r.optBoolish(tpg.enable, `${path}.enable`) ?? true;
  r.optInt(tpg.tag, `${path}.tag`);

  // attributes
  const attrs = tpg.attributes === undefined ? {} : r.obj(tpg.attributes, `${path}.attributes`);
  const attr = (k: string, fallback: number): number => {
    const v = attrs[k];
    if (v === undefined) return fallback;
    if (typeof v === 'number') return v;
    if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
    throw new ConfigError('LIO_CONFIG_INVALID', `${path}.attributes.${k}`, 'expected a number');
  };
  // LIO's kernel default is 1 (targetcli sets 0 on create).
  const tpgAuth = attr('authentication', 1);
  const demo = attr('generate_node_acls', 0) === 1;
  const prodWriteProtect = attr('prod_mode_write_protect', 0) === 1;
  if (demo) {
    report(`${path}.attributes.generate_node_acls`, 'demo mode (generate_node_acls=1: any initiator may log in) is not supported; only the listed ACLs are imported — allow others from Access requests');
  }
  if (attr('default_erl', 0) !== 0) report(`${path}.attributes.default_erl`, 'Spindle supports ErrorRecoveryLevel 0 only');
  if (attr('t10_pi', 0) !== 0) report(`${path}.attributes.t10_pi`, 'T10 protection information (DIF/PI) is not supported');
  if (attr('fabric_prot_type', 0) !== 0) report(`${path}.attributes.fabric_prot_type`, 'T10 protection information (DIF/PI) is not supported');
  if (attr('tpg_enabled_sendtargets', 1) === 0) {
    report(`${path}.attributes.tpg_enabled_sendtargets`, 'Spindle always lists its targets in SendTargets discovery');
  }
  for (const k of Object.keys(attrs)) {
    if (!(k in TPG_ATTRIBUTES) && !TPG_ATTRIBUTES_IGNORED.has(k) && k !== 'fabric_prot_type' && k !== 'login_keys_workaround') {
      report(`${path}.attributes.${k}`, 'unknown TPG attribute; ignored');
    }
  }
  for (const k of ['chap_userid', 'chap_password', 'chap_mutual_userid', 'chap_mutual_password', 'userid', 'password', 'mutual_userid', 'mutual_password']) {
    if (tpg[k] !== undefined && tpg[k] !== '') {
      report(`${path}.${k}`, 'TPG-wide CHAP (used by demo mode) is not supported; set CHAP per ACL');
      break;
    }
  }

  // parameters
  const params = tpg.parameters === undefined ? {} : r.obj(tpg.parameters, `${path}.parameters`);
  const param = (k: string): string | undefined => {
    const v = params[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return String(v);
    throw new ConfigError('LIO_CONFIG_INVALID', `${path}.parameters.${k}`, 'expected a string');
  };
  for (const k of Object.keys(params)) {
    const v = param(k) as string;
    const at = `${path}.parameters.${k}`;
    if (k === 'TargetAlias') {
      if (v !== '' && v !== DEFAULT_TARGET_ALIAS) target.alias = v;
    } else if (k === 'HeaderDigest' || k === 'DataDigest') {
      if (!v.split(',').map((s) => s.trim()).includes('None')) report(at, `${k}=${v} forces digests; Spindle offers CRC32C but lets the initiator choose`);
    } else if (k === 'ErrorRecoveryLevel') {
      if (v !== '0') report(at, 'Spindle supports ErrorRecoveryLevel 0 only');
    } else if (k === 'MaxConnections') {
      if (v !== '1') report(at, 'Spindle negotiates one connection per session (MaxConnections=1)');
    } else if (k === 'IFMarker' || k === 'OFMarker') {
      if (v !== 'No') report(at, 'markers are not supported (RFC 7143 dropped them)');
    } else if (!NEGOTIATED_BY_SPINDLE.has(k)) {
      report(at, 'unknown iSCSI parameter; ignored');
    }
  }

  // portals
  r.optArr(tpg.portals, `${path}.portals`).forEach((v, i) => {
    const at = `${path}.portals[${i}]`;
    const p = r.obj(v, at);
    const ip = r.str(p.ip_address, `${at}.ip_address`);
    const port = r.int(p.port, `${at}.port`);
    if (port < 1 || port > 65535) {
      report(`${at}.port`, `port ${port} is outside 1..65535; portal left out`);
      return;
    }
    if (p.iser === true) report(`${at}.iser`, 'iSER (RDMA) is not supported; the portal is imported as plain TCP');
    if (p.offload === true) report(`${at}.offload`, 'hardware offload is not supported; the portal is imported as plain TCP');
    const portal = { host: spindleHost(ip), port };
    if (!target.tpgPortals.some((q) => samePortal(q, portal))) target.tpgPortals.push(portal);
  });

  // LUNs
  const tpgLuns = new Map<number, { lun: ConfigLun; path: string }>();
  r.optArr(tpg.luns, `${path}.luns`).forEach((v, i) => {
    const at = `${path}.luns[${i}]`;
    const l = r.obj(v, at);
    const index = r.int(l.index, `${at}.index`);
    const so = r.str(l.storage_object, `${at}.storage_object`);
    const m = /^\/backstores\/([^/]+)\/([^/]+)$/.exec(so);
    if (m === null) throw new ConfigError('LIO_CONFIG_INVALID', `${at}.storage_object`, `expected "/backstores/<plugin>/<name>", got ${JSON.stringify(so)}`);
    const plugin = m[1] === 'iblock' ? 'block' : m[1] === 'rd_mcp' ? 'ramdisk' : (m[1] as string);
    const key = `/backstores/${plugin}/${m[2] as string}`;
    if (index < 0 || index > MAX_CONFIG_LUN) {
      report(at, `LUN ${index} is outside Spindle's range 0..${MAX_CONFIG_LUN}; left out`);
      return;
    }
    if (tpgLuns.has(index)) {
      report(at, `LUN ${index} appears twice; the second is left out`);
      return;
    }
    if (!soNames.has(key)) {
      report(at, `refers to ${so}, which is not in storage_objects; left out`);
      return;
    }
    const name = soNames.get(key);
    if (name === null || name === undefined) {
      report(at, `LUN ${index} uses ${so}, which was not imported; left out`);
      return;
    }
    const b = backstores.get(name) as ConfigBackstore;
    tpgLuns.set(index, { lun: { lun: index, backstore: name, readOnly: b.readOnly || prodWriteProtect }, path: at });
  });

  // ACLs and their LUN mappings
  const writeProtects = new Map<number, boolean[]>();
  const seen = new Set<string>();
  r.optArr(tpg.node_acls, `${path}.node_acls`).forEach((v, i) => {
    const at = `${path}.node_acls[${i}]`;
    const a = r.obj(v, at);
    const wwn = r.str(a.node_wwn, `${at}.node_wwn`);
    const name = checkWireIscsiName(wwn);
    if (!name.ok) {
      report(`${at}.node_wwn`, `"${wwn}" is not an initiator name (${name.reason}); ACL left out`);
      return;
    }
    if (seen.has(name.name)) {
      report(at, `${wwn} is listed twice; the second ACL is left out`);
      return;
    }
    const aclAttrs = a.attributes === undefined ? {} : r.obj(a.attributes, `${at}.attributes`);
    const own = aclAttrs.authentication;
    const authRequired = own === 0 || own === 1 ? own === 1 : tpgAuth === 1;

    const cred = (primary: string, alt: string): string | undefined =>
      r.optStr(a[primary], `${at}.${primary}`) || r.optStr(a[alt], `${at}.${alt}`) || undefined;
    const user = cred('chap_userid', 'userid');
    const secret = cred('chap_password', 'password');
    const mUser = cred('chap_mutual_userid', 'mutual_userid');
    const mSecret = cred('chap_mutual_password', 'mutual_password');

    const acl: ConfigAcl = { initiatorIqn: name.name };
    if (user !== undefined || secret !== undefined) {
      if (user === undefined || secret === undefined) {
        report(at, `CHAP for ${wwn} has ${user === undefined ? 'a password but no user id' : 'a user id but no password'}, so LIO could not use it; ACL left out`);
        return;
      }
      const problem = checkChapConfig({ name: user, secret });
      if (problem !== null) {
        report(`${at}.chap_password`, `CHAP for ${wwn}: ${problem.message}; ACL left out (set CHAP again after importing, then allow it)`);
        return;
      }
      acl.chap = { user, secret };
      if (!authRequired) {
        report(at, `LIO let ${wwn} skip CHAP (authentication=0); Spindle will require its CHAP credentials`);
      }
    } else if (authRequired) {
      report(at, `LIO required CHAP for ${wwn} but it has no CHAP credentials, so it could not log in there; Spindle will let it in without CHAP — set CHAP on it if you want it`);
    }
    if (mUser !== undefined || mSecret !== undefined) {
      if (acl.chap === undefined) {
        report(at, `mutual CHAP for ${wwn} without one-way CHAP cannot be used; mutual CHAP left out`);
      } else if (mUser === undefined || mSecret === undefined) {
        report(at, `mutual CHAP for ${wwn} is missing its ${mUser === undefined ? 'user id' : 'password'}; mutual CHAP left out`);
      } else {
        const problem = checkChapConfig({ name: acl.chap.user, secret: acl.chap.secret }, { name: mUser, secret: mSecret });
        if (problem !== null) report(`${at}.chap_mutual_password`, `mutual CHAP for ${wwn}: ${problem.message}; mutual CHAP left out`);
        else acl.mutualChap = { user: mUser, secret: mSecret };
      }
    }

    // mapped_luns: Spindle shows every allowed initiator every LUN at its own number.
    const mapped = new Set<number>();
    r.optArr(a.mapped_luns, `${at}.mapped_luns`).forEach((mv, k) => {
      const mp = `${at}.mapped_luns[${k}]`;
      const ml = r.obj(mv, mp);
      const index = r.int(ml.index, `${mp}.index`);
      const tpgLun = r.int(ml.tpg_lun, `${mp}.tpg_lun`);
      const wp = r.optBoolish(ml.write_protect, `${mp}.write_protect`) ?? false;
      if (!tpgLuns.has(tpgLun)) {
        report(mp, `maps TPG LUN ${tpgLun}, which was not imported; ignored`);
        return;
      }
      if (index !== tpgLun) {
        report(mp, `${wwn} sees TPG LUN ${tpgLun} as LUN ${index}; Spindle shows every initiator the target's own LUN numbers, so it will be LUN ${tpgLun}`);
      }
      mapped.add(tpgLun);
      const list = writeProtects.get(tpgLun) ?? [];
      list.push(wp);
      writeProtects.set(tpgLun, list);
    });
    const missing = [...tpgLuns.keys()].filter((n) => !mapped.has(n));
    if (missing.length > 0) {
      const what = mapped.size === 0 ? 'is mapped to no LUN' : `is mapped to only some LUNs (not ${missing.join(', ')})`;
      report(`${at}.mapped_luns`, `${wwn} ${what}; Spindle gives every allowed initiator all LUNs of the target`);
    }
    seen.add(name.name);
    target.acls.push(acl);
  });

  for (const { lun, path: lunPath } of tpgLuns.values()) {
    const wps = writeProtects.get(lun.lun) ?? [];
    if (wps.some((w) => w)) lun.readOnly = true;
    if (wps.some((w) => w) && wps.some((w) => !w)) {
      report(lunPath, `LUN ${lun.lun} is write-protected for some initiators only; Spindle has one setting per LUN, so it is imported read-only`);
    }
    if (wps.length === 0 && seen.size > 0) {
      report(lunPath, `LUN ${lun.lun} is mapped to no ACL (hidden in LIO); Spindle shows it to every allowed initiator`);
    }
  }
  target.luns = [...tpgLuns.values()].map((v) => v.lun);
}

function spindleHost(ip: string): string {
  let host = ip.trim();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (isIPv6(host) && !host.includes('%')) return new URL(`http://[${host}]/`).hostname.slice(1, -1);
  return host.toLowerCase();
}

function readAnnotation(
  value: unknown,
  report: (path: string, reason: string) => void,
): { sharedPortals: ConfigPortal[] | null; readOnly: Set<string> } {
  const none = { sharedPortals: null, readOnly: new Set<string>() };
  if (value === undefined) return none;
  const bad = () => {
    report('spindle', 'the "spindle" block is malformed; ignored (shared portals and read-only images are inferred instead)');
    return none;
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad();
  const o = value as Json;
  if (o.version !== 1 || !Array.isArray(o.shared_portals) || !Array.isArray(o.read_only)) return bad();
  const portals: ConfigPortal[] = [];
  for (const p of o.shared_portals) {
    if (typeof p !== 'object' || p === null) return bad();
    const { ip_address: ip, port } = p as Json;
    if (typeof ip !== 'string' || !Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) return bad();
    portals.push({ host: spindleHost(ip), port: port as number });
  }
  if (!o.read_only.every((x) => typeof x === 'string')) return bad();
  return { sharedPortals: portals, readOnly: new Set(o.read_only as string[]) };
}

/** Structural reads that throw ConfigError('LIO_CONFIG_INVALID') with the JSON path. */
class Reader {
  private fail(path: string, msg: string): never {
    throw new ConfigError('LIO_CONFIG_INVALID', path, msg);
  }
  obj(v: unknown, path: string): Json {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Json;
    return this.fail(path, `expected an object, got ${describe(v)}`);
  }
  optArr(v: unknown, path: string): unknown[] {
    if (v === undefined || v === null) return [];
    if (Array.isArray(v)) return v;
    return this.fail(path, `expected a list, got ${describe(v)}`);
  }
  str(v: unknown, path: string): string {
    if (typeof v === 'string' && v !== '') return v;
    return this.fail(path, v === undefined ? 'missing' : `expected a non-empty string, got ${describe(v)}`);
  }
  optStr(v: unknown, path: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    return this.fail(path, `expected a string, got ${describe(v)}`);
  }
  int(v: unknown, path: string): number {
    if (Number.isSafeInteger(v)) return v as number;
    return this.fail(path, v === undefined ? 'missing' : `expected a whole number, got ${describe(v)}`);
  }
  optInt(v: unknown, path: string): number | undefined {
    return v === undefined || v === null ? undefined : this.int(v, path);
  }
  optBool(v: unknown, path: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    return this.fail(path, `expected true or false, got ${describe(v)}`);
  }
  /** true/false or 1/0 (older files). */
  optBoolish(v: unknown, path: string): boolean | undefined {
    if (v === 0 || v === 1) return v === 1;
    return this.optBool(v, path);
  }
}

/** The JSON type of a value — never the value itself, which may be a CHAP secret. */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return v === '' ? 'an empty string' : 'a string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'a number' : 'a fractional number';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}
