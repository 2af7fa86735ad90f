// Spindle <-> LIO saveconfig.json (targetcli / rtslib-fb format).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  ConfigError,
  exportLio,
  importLio,
  type SpindleConfig,
} from '../../src-main/service/config/lio';
import { applyConfig, readConfig } from '../../src-main/service/config/store-config';
import { openStore } from '../../src-main/store/index';

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

const T1 = 'iqn.2003-01.org.linux-iscsi.nas.x8664:sn.8a5b2c1d9e0f';
const T2 = 'iqn.2003-01.org.linux-iscsi.nas.x8664:sn.22aa33bb44cc';
const WIN = 'iqn.1991-05.com.microsoft:gaming-pc';
const LINUX = 'iqn.2004-10.com.ubuntu:01:1234abcd';
const SECRETS = ['WinChapSecret1', 'TargetMutual99', 'LinuxChapPass7', 'DemoModePass12', 'DiscoverySecr3t'];

/** TPG attributes as targetcli-fb 2.1 saves them (authentication switched on for CHAP). */
const tpgAttributes = (over: Record<string, number> = {}) => ({
  authentication: 1,
  cache_dynamic_acls: 0,
  default_cmdsn_depth: 64,
  default_erl: 0,
  demo_mode_discovery: 1,
  demo_mode_write_protect: 1,
  fabric_prot_type: 0,
  generate_node_acls: 0,
  login_keys_workaround: 1,
  login_timeout: 15,
  netif_timeout: 2,
  prod_mode_write_protect: 0,
  t10_pi: 0,
  tpg_enabled_sendtargets: 1,
  ...over,
});

const tpgParameters = (over: Record<string, string> = {}) => ({
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
  TargetAlias: 'LIO Target',
  ...over,
});

const soAttributes = (over: Record<string, number> = {}) => ({
  alua_support: 1,
  block_size: 512,
  emulate_3pc: 1,
  emulate_caw: 1,
  emulate_dpo: 1,
  emulate_fua_read: 1,
  emulate_fua_write: 1,
  emulate_model_alias: 1,
  emulate_pr: 1,
  emulate_rest_reord: 0,
  emulate_tas: 1,
  emulate_tpu: 0,
  emulate_tpws: 0,
  emulate_ua_intlck_ctrl: 0,
  emulate_write_cache: 1,
  enforce_pr_isids: 1,
  force_pr_aptpl: 0,
  is_nonrot: 0,
  max_unmap_block_desc_count: 1,
  max_unmap_lba_count: 8192,
  max_write_same_len: 4096,
  optimal_sectors: 16384,
  pgr_support: 1,
  pi_prot_format: 0,
  pi_prot_type: 0,
  pi_prot_verify: 0,
  queue_depth: 128,
  unmap_granularity: 1,
  unmap_granularity_alignment: 0,
  unmap_zeroes_data: 0,
  ...over,
});

const aluaTpgs = [{ alua_access_state: 0, alua_access_type: 3, name: 'default_tg_pt_gp', tg_pt_gp_id: 0 }];

/**
 * A home lab's /etc/target/saveconfig.json, in the layout rtslib-fb's
 * RTSRoot.dump() writes (targetcli saveconfig): a fileio image and a whole
 * disk on one target with CHAP (one-way and mutual) ACLs, a ramdisk and a
 * pass-through disk on a second one in demo mode, plus the things Spindle
 * cannot take over.
 */
interface Doc {
  fabric_modules: Array<Record<string, unknown>>;
  storage_objects: Array<Record<string, unknown>>;
  targets: Array<{
    wwn: string;
    fabric: string;
    tpgs: Array<{
      attributes: Record<string, number>;
      luns: Array<Record<string, unknown>>;
      node_acls?: Array<{ mapped_luns: Array<Record<string, unknown>>; [k: string]: unknown }>;
      [k: string]: unknown;
    }>;
  }>;
}

function homeLabSaveconfig(): Doc {
  return {
    fabric_modules: [
      { discovery_enable_auth: true, discovery_userid: 'discover', discovery_password: 'DiscoverySecr3t', name: 'iscsi' },
    ],
    storage_objects: [
      {
        aio: false,
        alua_tpgs: aluaTpgs,
        attributes: soAttributes({ emulate_tpu: 1, emulate_tpws: 1 }),
        dev: '/var/lib/iscsi/games.img',
        name: 'games',
        plugin: 'fileio',
        size: 107374182400,
        write_back: true,
        wwn: 'a53bd5cc-85d7-47dc-a4d2-9682e9a7b82a',
      },
      {
        alua_tpgs: aluaTpgs,
        attributes: soAttributes({ emulate_write_cache: 0 }),
        dev: '/dev/disk/by-id/ata-WDC_WD40EFRX-68N32N0_WD-WCC7K1234567',
        exclusive: true,
        name: 'archive',
        plugin: 'block',
        readonly: true,
        write_back: false,
        wwn: '253f2cc0-209c-4a93-b110-9dc45e52229e',
      },
      { alua_tpgs: aluaTpgs, attributes: soAttributes(), name: 'scratch', plugin: 'ramdisk', size: 1073741824, wwn: 'da09b66d-5b23-4540-ab4a-f00b03af294f' },
      { alua_tpgs: [], attributes: {}, dev: '/dev/sg3', name: 'tape', plugin: 'pscsi' },
      { alua_tpgs: [], attributes: {}, config: 'rbd/pool/image', name: 'ceph', plugin: 'user', size: 1073741824, wwn: 'x' },
    ],
    targets: [
      {
        fabric: 'iscsi',
        tpgs: [
          {
            attributes: tpgAttributes(),
            enable: true,
            luns: [
              { alias: '0cc1743f36', alua_tg_pt_gp_name: 'default_tg_pt_gp', index: 0, storage_object: '/backstores/fileio/games' },
              { alias: '3d56464288', alua_tg_pt_gp_name: 'default_tg_pt_gp', index: 1, storage_object: '/backstores/block/archive' },
            ],
            node_acls: [
              {
                attributes: { dataout_timeout: 3, dataout_timeout_retries: 5, default_erl: 0, nopin_response_timeout: 30, nopin_timeout: 15 },
                chap_mutual_password: 'TargetMutual99',
                chap_mutual_userid: 'nas',
                chap_password: 'WinChapSecret1',
                chap_userid: 'gaming-pc',
                mapped_luns: [
                  { alias: 'a2cce5a7e4', index: 0, tpg_lun: 0, write_protect: false },
                  { alias: '5e0c5884fa', index: 1, tpg_lun: 1, write_protect: true },
                ],
                node_wwn: WIN,
              },
              {
                attributes: { dataout_timeout: 3 },
                chap_password: 'LinuxChapPass7',
                chap_userid: 'ubuntu',
                mapped_luns: [{ alias: 'ff50cee375', index: 0, tpg_lun: 0, write_protect: false }],
                node_wwn: LINUX,
              },
            ],
            parameters: tpgParameters({ TargetAlias: 'nas games' }),
            portals: [{ ip_address: '[::0]', iser: false, offload: false, port: 3260 }],
            tag: 1,
          },
        ],
        wwn: T1,
      },
      {
        fabric: 'iscsi',
        tpgs: [
          {
            attributes: tpgAttributes({ authentication: 0, generate_node_acls: 1, cache_dynamic_acls: 1, demo_mode_write_protect: 0, default_erl: 1 }),
            chap_password: 'DemoModePass12',
            chap_userid: 'demo',
            enable: true,
            luns: [
              { index: 0, storage_object: '/backstores/ramdisk/scratch' },
              { index: 1, storage_object: '/backstores/pscsi/tape' },
              { index: 2, storage_object: '/backstores/user/ceph' },
            ],
            node_acls: [
              { mapped_luns: [{ index: 5, tpg_lun: 0, write_protect: false }], node_wwn: 'iqn.2005-03.org.open-iscsi:backup' },
            ],
            parameters: tpgParameters({ HeaderDigest: 'CRC32C', MaxConnections: '4' }),
            portals: [
              { ip_address: '0.0.0.0', iser: false, offload: false, port: 3260 },
              { ip_address: '[::0]', iser: false, offload: false, port: 3260 },
              { ip_address: '192.168.1.10', iser: true, offload: false, port: 3260 },
            ],
            tag: 1,
          },
          { attributes: tpgAttributes(), enable: false, luns: [], node_acls: [], parameters: tpgParameters(), portals: [], tag: 2 },
        ],
        wwn: T2,
      },
      {
        fabric: 'loopback',
        tpgs: [{ attributes: {}, enable: true, luns: [{ index: 0, storage_object: '/backstores/fileio/games' }], nexus_wwn: 'naa.5001405aabbccdd1', tag: 1 }],
        wwn: 'naa.5001405a1b2c3d4e',
      },
    ],
  };
}

describe('importLio: a targetcli saveconfig.json', () => {
  const { config, unmapped } = importLio(JSON.stringify(homeLabSaveconfig(), null, 2));

  test('maps the backstores Spindle supports', () => {
    assert.deepEqual(config.backstores, [
      { name: 'games', kind: 'file', path: '/var/lib/iscsi/games.img', sizeBytes: 107374182400, readOnly: false, thin: true, wwn: 'a53bd5cc-85d7-47dc-a4d2-9682e9a7b82a' },
      { name: 'archive', kind: 'block', path: '/dev/disk/by-id/ata-WDC_WD40EFRX-68N32N0_WD-WCC7K1234567', readOnly: true, thin: false, wwn: '253f2cc0-209c-4a93-b110-9dc45e52229e' },
      { name: 'scratch', kind: 'memory', sizeBytes: 1073741824, readOnly: false, thin: false, wwn: 'da09b66d-5b23-4540-ab4a-f00b03af294f' },
    ]);
  });

  test('maps both iSCSI targets with their LUNs, CHAP ACLs (one-way and mutual) and portals', () => {
    assert.deepEqual(config.portals, [{ host: '::', port: 3260 }], 'the portal every target has is shared');
    assert.deepEqual(config.targets, [
      {
        iqn: T1,
        alias: 'nas games',
        enabled: true,
        luns: [
          { lun: 0, backstore: 'games', readOnly: false },
          { lun: 1, backstore: 'archive', readOnly: true },
        ],
        acls: [
          { initiatorIqn: WIN, chap: { user: 'gaming-pc', secret: 'WinChapSecret1' }, mutualChap: { user: 'nas', secret: 'TargetMutual99' } },
          { initiatorIqn: LINUX, chap: { user: 'ubuntu', secret: 'LinuxChapPass7' } },
        ],
        portals: [],
      },
      {
        iqn: T2,
        enabled: true,
        luns: [{ lun: 0, backstore: 'scratch', readOnly: false }],
        acls: [{ initiatorIqn: 'iqn.2005-03.org.open-iscsi:backup' }],
        portals: [
          { host: '0.0.0.0', port: 3260 },
          { host: '192.168.1.10', port: 3260 },
        ],
      },
    ]);
  });

  test('reports everything else, each with its path and a reason', () => {
    const byPath = new Map(unmapped.map((u) => [u.path, u.reason]));
    const expected: Array<[string, RegExp]> = [
      ['fabric_modules[0]', /CHAP on discovery/],
      ['storage_objects[3]', /pscsi.*not supported.*\/backstores\/pscsi\/tape/],
      ['storage_objects[4]', /user \(TCMU\)/],
      ['targets[0].tpgs[0].node_acls[1].mapped_luns', /only some LUNs \(not 1\)/],
      ['targets[1].tpgs[0].attributes.generate_node_acls', /demo mode/],
      ['targets[1].tpgs[0].attributes.default_erl', /ErrorRecoveryLevel 0/],
      ['targets[1].tpgs[0].chap_userid', /TPG-wide CHAP/],
      ['targets[1].tpgs[0].parameters.HeaderDigest', /forces digests/],
      ['targets[1].tpgs[0].parameters.MaxConnections', /one connection/],
      ['targets[1].tpgs[0].portals[2].iser', /iSER/],
      ['targets[1].tpgs[0].luns[1]', /pscsi\/tape, which was not imported/],
      ['targets[1].tpgs[0].luns[2]', /user\/ceph, which was not imported/],
      ['targets[1].tpgs[0].node_acls[0].mapped_luns[0]', /sees TPG LUN 0 as LUN 5/],
      ['targets[1].tpgs[1]', /one portal group per target/],
      ['targets[2]', /loopback target naa\.5001405a1b2c3d4e: only iSCSI targets.*tcm_loop/],
    ];
    for (const [path, reason] of expected) {
      assert.ok(byPath.has(path), `expected a report for ${path}; got ${[...byPath.keys()].join(', ')}`);
      assert.match(byPath.get(path) as string, reason, path);
    }
    assert.equal(unmapped.length, expected.length, JSON.stringify(unmapped, null, 2));
  });

  test('the report never repeats a secret', () => {
    const text = JSON.stringify(unmapped);
    for (const s of SECRETS) assert.ok(!text.includes(s), s);
  });
});

describe('importLio: more mappings', () => {
  const base = () => homeLabSaveconfig();

  test('CHAP that LIO would not enforce, or that Spindle refuses, is reported', () => {
    const doc = base();
    const acls = doc.targets[0]!.tpgs[0]!.node_acls as Array<Record<string, unknown>>;
    (doc.targets[0]!.tpgs[0]!.attributes as Record<string, number>).authentication = 0;
    acls.push({ chap_password: 'tiny9', chap_userid: 'x', mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }, { index: 1, tpg_lun: 1, write_protect: false }], node_wwn: 'iqn.x:weak' });
    acls.push({ chap_userid: 'nopass', mapped_luns: [], node_wwn: 'iqn.x:half' });
    const { config, unmapped } = importLio(doc);
    const reasons = unmapped.map((u) => `${u.path}: ${u.reason}`).join('\n');
    assert.match(reasons, /node_acls\[0\]: LIO let iqn\.1991-05\.com\.microsoft:gaming-pc skip CHAP \(authentication=0\); Spindle will require/);
    assert.match(reasons, /node_acls\[2\]\.chap_password: CHAP for iqn\.x:weak: the CHAP secret is shorter than 12 bytes.*ACL left out/);
    assert.match(reasons, /node_acls\[3\]: CHAP for iqn\.x:half has a user id but no password/);
    assert.deepEqual(config.targets[0]!.acls.map((a) => a.initiatorIqn), [WIN, LINUX]);
    assert.ok(!reasons.includes('tiny9'), 'not even a weak secret is repeated');
  });

  test('an ACL without CHAP on a TPG that enforces it, and a per-ACL override (Linux 5.19+)', () => {
    const doc = base();
    const tpg = doc.targets[0]!.tpgs[0]!;
    const acls = tpg.node_acls as Array<Record<string, unknown>>;
    acls.push({ mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }, { index: 1, tpg_lun: 1, write_protect: true }], node_wwn: 'iqn.x:nochap' });
    acls.push({ attributes: { authentication: 0 }, mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }, { index: 1, tpg_lun: 1, write_protect: true }], node_wwn: 'iqn.x:exempt' });
    const { config, unmapped } = importLio(doc);
    assert.deepEqual(config.targets[0]!.acls.slice(2), [{ initiatorIqn: 'iqn.x:nochap' }, { initiatorIqn: 'iqn.x:exempt' }]);
    const paths = unmapped.filter((u) => u.path.startsWith('targets[0].tpgs[0].node_acls[')).map((u) => u.path);
    assert.ok(paths.includes('targets[0].tpgs[0].node_acls[2]'), 'no CHAP where LIO required it is reported');
    assert.ok(!paths.includes('targets[0].tpgs[0].node_acls[3]'), 'authentication=0 on the ACL is what Spindle does');
  });

  test('write-protect for some initiators only, a LUN no ACL maps, prod_mode_write_protect', () => {
    const doc = base();
    const tpg = doc.targets[0]!.tpgs[0]!;
    (tpg.luns as Array<Record<string, unknown>>).push({ index: 7, storage_object: '/backstores/ramdisk/scratch' });
    const win = (tpg.node_acls as Array<{ mapped_luns: Array<Record<string, unknown>> }>)[0]!;
    win.mapped_luns[0]!.write_protect = true; // LUN 0: WIN read-only, LINUX read-write
    const { config, unmapped } = importLio(doc);
    assert.deepEqual(config.targets[0]!.luns.map((l) => [l.lun, l.readOnly]), [[0, true], [1, true], [7, false]]);
    assert.match(unmapped.find((u) => u.path === 'targets[0].tpgs[0].luns[0]')!.reason, /write-protected for some initiators only.*read-only/);
    assert.match(unmapped.find((u) => u.path === 'targets[0].tpgs[0].luns[2]')!.reason, /mapped to no ACL/);

    const doc2 = base();
    (doc2.targets[0]!.tpgs[0]!.attributes as Record<string, number>).prod_mode_write_protect = 1;
    assert.ok(importLio(doc2).config.targets[0]!.luns.every((l) => l.readOnly));
  });

  test('a storage object name used by two plugins gets a unique Spindle name; fileio on a device is a block backstore', () => {
    const doc = base();
    doc.storage_objects.push({ aio: false, alua_tpgs: [], attributes: soAttributes(), dev: '/dev/sdc', name: 'games', plugin: 'fileio', size: 0, write_back: true, wwn: 'w' } as never);
    (doc.storage_objects[0] as Record<string, unknown>).plugin = 'block';
    (doc.storage_objects[0] as Record<string, unknown>).dev = '/dev/sdb';
    (doc.targets[0]!.tpgs[0]!.luns as Array<Record<string, unknown>>)[0]!.storage_object = '/backstores/fileio/games';
    const { config } = importLio(doc);
    const names = config.backstores.map((b) => `${b.name}:${b.kind}:${b.path ?? ''}`);
    assert.deepEqual(names.filter((n) => n.startsWith('games')), ['games:block:/dev/sdb', 'games-fileio:block:/dev/sdc']);
    assert.equal(config.targets[0]!.luns[0]!.backstore, 'games-fileio');
  });

  test('write-through fileio and nullio ramdisks are reported', () => {
    const doc = base();
    (doc.storage_objects[0] as Record<string, unknown>).write_back = false;
    (doc.storage_objects[2] as Record<string, unknown>).nullio = true;
    const { config, unmapped } = importLio(doc);
    assert.match(unmapped.find((u) => u.path === 'storage_objects[0].write_back')!.reason, /write-through/);
    assert.match(unmapped.find((u) => u.path === 'storage_objects[2].nullio')!.reason, /memory LUN/);
    assert.equal(config.backstores.length, 3);
  });

  test('an empty or minimal file imports as nothing', () => {
    assert.deepEqual(importLio({}), { config: { backstores: [], portals: [], targets: [] }, unmapped: [] });
    assert.deepEqual(importLio('{"storage_objects": [], "targets": [], "fabric_modules": []}').unmapped, []);
  });
});

describe('importLio: input it cannot read', () => {
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['not JSON', '{"targets": [', 'saveconfig.json', /not valid JSON/],
    ['not an object', 42, 'saveconfig.json', /expected an object/],
    ['targets is not a list', { targets: {} }, 'targets', /expected a list/],
    ['a storage object without a name', { storage_objects: [{ plugin: 'fileio', dev: '/x' }] }, 'storage_objects[0].name', /missing/],
    ['a fileio object without dev', { storage_objects: [{ plugin: 'fileio', name: 'x' }] }, 'storage_objects[0].dev', /missing/],
    ['a target without wwn', { targets: [{ fabric: 'iscsi', tpgs: [] }] }, 'targets[0].wwn', /missing/],
    [
      'a LUN index that is a string',
      { targets: [{ wwn: T1, fabric: 'iscsi', tpgs: [{ luns: [{ index: '0', storage_object: '/backstores/fileio/x' }] }] }] },
      'targets[0].tpgs[0].luns[0].index',
      /expected a whole number, got a string/,
    ],
    [
      'a garbled storage_object reference',
      { targets: [{ wwn: T1, fabric: 'iscsi', tpgs: [{ luns: [{ index: 0, storage_object: 'fileio:x' }] }] }] },
      'targets[0].tpgs[0].luns[0].storage_object',
      /\/backstores\/<plugin>\/<name>/,
    ],
    [
      'a CHAP password that is a number',
      { targets: [{ wwn: T1, fabric: 'iscsi', tpgs: [{ node_acls: [{ node_wwn: WIN, chap_userid: 'u', chap_password: 123456789012345 }] }] }] },
      'targets[0].tpgs[0].node_acls[0].chap_password',
      /expected a string, got a number$/,
    ],
    ['an enable flag that is a string', { targets: [{ wwn: T1, fabric: 'iscsi', tpgs: [{ enable: 'yes' }] }] }, 'targets[0].tpgs[0].enable', /true or false/],
  ];
  for (const [label, input, path, message] of cases) {
    test(label, () => {
      assert.throws(
        () => importLio(input),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.equal(err.code, 'LIO_CONFIG_INVALID');
          assert.equal(err.path, path);
          assert.match(err.message, message);
          assert.ok(!err.message.includes('123456789012345'));
          return true;
        },
      );
    });
  }
});

/** A Spindle config in the canonical form import returns (and the store lists): targets by IQN, LUNs by number. */
function spindleConfig(): SpindleConfig {
  return {
    backstores: [
      { name: 'games', kind: 'file', path: '/srv/spindle/games.img', sizeBytes: 21474836480, readOnly: false, thin: true, wwn: '6f1c3a52-0b8e-4b4e-9d7e-6c1e2a9f0a11' },
      { name: 'debian-iso', kind: 'file', path: '/srv/iso/debian-13.iso', sizeBytes: 700448768, readOnly: true, thin: false, wwn: '0d3b9a1e-2f44-4c5a-8b6d-1e2f3a4b5c6d' },
      { name: 'sdb', kind: 'block', path: '/dev/sdb', readOnly: false, thin: true, wwn: '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d' },
      { name: 'tmp', kind: 'memory', sizeBytes: 268435456, readOnly: false, thin: false, wwn: '11111111-2222-4333-8444-555555555555' },
    ],
    portals: [
      { host: '0.0.0.0', port: 3260 },
      { host: '::', port: 3260 },
    ],
    targets: [
      {
        iqn: 'iqn.2026-01.lan.home:empty',
        enabled: true,
        luns: [],
        acls: [],
        portals: [],
      },
      {
        iqn: 'iqn.2026-01.lan.home:games',
        alias: 'Games library',
        enabled: true,
        luns: [
          { lun: 0, backstore: 'games', readOnly: false },
          { lun: 1, backstore: 'debian-iso', readOnly: true },
          { lun: 5, backstore: 'tmp', readOnly: false },
        ],
        acls: [
          { initiatorIqn: WIN, chap: { user: 'gaming-pc', secret: 'WinChapSecret1' }, mutualChap: { user: 'spindle', secret: 'TargetMutual99' } },
          { initiatorIqn: LINUX },
        ],
        portals: [{ host: '192.168.1.10', port: 3261 }],
      },
      {
        iqn: 'iqn.2026-01.lan.home:vault',
        enabled: false,
        luns: [
          { lun: 0, backstore: 'sdb', readOnly: false },
          { lun: 1, backstore: 'debian-iso', readOnly: true },
        ],
        acls: [{ initiatorIqn: LINUX, chap: { user: 'ubuntu', secret: 'LinuxChapPass7' } }],
        portals: [{ host: 'fe80::1', port: 3260 }],
      },
    ],
  };
}

describe('exportLio', () => {
  const doc = exportLio(spindleConfig());

  test("writes targetcli's layout", () => {
    assert.deepEqual(doc.storage_objects.map((s) => [s.plugin, s.name, s.dev, s.size]), [
      ['fileio', 'games', '/srv/spindle/games.img', 21474836480],
      ['fileio', 'debian-iso', '/srv/iso/debian-13.iso', 700448768],
      ['block', 'sdb', '/dev/sdb', undefined],
      ['ramdisk', 'tmp', undefined, 268435456],
    ]);
    assert.deepEqual(doc.storage_objects[0]!.attributes, { emulate_tpu: 1, emulate_tpws: 1 });
    assert.equal(doc.storage_objects[2]!.readonly, false);
    const games = doc.targets[1]!;
    assert.equal(games.fabric, 'iscsi');
    assert.equal(games.wwn, 'iqn.2026-01.lan.home:games');
    const tpg = games.tpgs[0]!;
    assert.equal(tpg.tag, 1);
    assert.equal(tpg.enable, true);
    assert.equal(tpg.parameters.TargetAlias, 'Games library');
    assert.equal(tpg.attributes.authentication, 1);
    assert.equal(tpg.attributes.generate_node_acls, 0);
    assert.deepEqual(tpg.luns, [
      { index: 0, storage_object: '/backstores/fileio/games' },
      { index: 1, storage_object: '/backstores/fileio/debian-iso' },
      { index: 5, storage_object: '/backstores/ramdisk/tmp' },
    ]);
    assert.deepEqual(tpg.portals.map((p) => `${p.ip_address}:${p.port}`), ['0.0.0.0:3260', '[::]:3260', '192.168.1.10:3261']);
    assert.deepEqual(tpg.node_acls[0], {
      chap_mutual_password: 'TargetMutual99',
      chap_mutual_userid: 'spindle',
      chap_password: 'WinChapSecret1',
      chap_userid: 'gaming-pc',
      mapped_luns: [
        { index: 0, tpg_lun: 0, write_protect: false },
        { index: 1, tpg_lun: 1, write_protect: true },
        { index: 5, tpg_lun: 5, write_protect: false },
      ],
      node_wwn: WIN,
    });
    // CHAP is enforced on the TPG, and switched off for the one ACL without it
    assert.deepEqual(tpg.node_acls[1]!.attributes, { authentication: 0 });
    assert.equal(doc.targets[2]!.tpgs[0]!.enable, false);
    assert.equal(doc.targets[2]!.tpgs[0]!.attributes.authentication, 1);
    assert.equal(doc.targets[0]!.tpgs[0]!.attributes.authentication, 0);
    assert.equal(doc.targets[0]!.tpgs[0]!.parameters.TargetAlias, 'LIO Target');
    assert.deepEqual(doc.spindle.read_only, ['/backstores/fileio/debian-iso']);
    assert.deepEqual(doc.fabric_modules, []);
  });

  test('refuses an invalid config, naming the field', () => {
    const bad = spindleConfig();
    bad.targets[1]!.luns[0]!.backstore = 'missing';
    assert.throws(
      () => exportLio(bad),
      (err: unknown) => err instanceof ConfigError && err.code === 'CONFIG_INVALID' && err.path === 'targets[1].luns[0].backstore',
    );
    const dup = spindleConfig();
    dup.targets[1]!.luns.push({ lun: 0, backstore: 'tmp', readOnly: false });
    assert.throws(() => exportLio(dup), /targets\[1\]\.luns\[3\]\.lun: LUN 0 appears twice/);
  });
});

describe('round trips', () => {
  test('export -> import yields the same config, with nothing unmapped', () => {
    const config = spindleConfig();
    const text = JSON.stringify(exportLio(config), null, 2);
    const back = importLio(text);
    assert.deepEqual(back.unmapped, []);
    assert.deepEqual(back.config, config);
  });

  test('a file re-saved by targetcli (no "spindle" block) still maps shared portals and read-only images sensibly', () => {
    const config = spindleConfig();
    const { spindle: _dropped, ...plain } = exportLio(config);
    const back = importLio(plain);
    assert.deepEqual(back.unmapped, []);
    assert.deepEqual(back.config.portals, config.portals, 'portals every target has are shared');
    const iso = back.config.backstores.find((b) => b.name === 'debian-iso')!;
    assert.equal(iso.readOnly, false, 'LIO has no read-only image; its LUNs stay write-protected');
    assert.ok(back.config.targets.every((t) => t.luns.filter((l) => l.backstore === 'debian-iso').every((l) => l.readOnly)));
  });

  test('import -> export -> import of the targetcli file is stable', () => {
    const first = importLio(homeLabSaveconfig()).config;
    const second = importLio(exportLio(first));
    assert.deepEqual(second.unmapped, []);
    assert.deepEqual(second.config, first);
  });

  test('through the store: applyConfig then readConfig gives the config back, and an export of it round-trips', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spindle-lio-test-'));
    roots.push(dir);
    const store = openStore({ dataDir: dir });
    const config = spindleConfig();
    const result = applyConfig(store, config);
    assert.deepEqual(result, {
      created: ['iqn.2026-01.lan.home:empty', 'iqn.2026-01.lan.home:games', 'iqn.2026-01.lan.home:vault'],
      skipped: [],
    });
    assert.deepEqual(readConfig(store), config);
    assert.ok(!JSON.stringify(store.targets.list()).includes('WinChapSecret1'));
    // importing again merges: existing targets are left alone and reported
    const again = applyConfig(store, config);
    assert.deepEqual(again.created, []);
    assert.equal(again.skipped.length, 3);
    // replace wipes and re-creates
    const replaced = applyConfig(store, importLio(exportLio(config)).config, { replace: true });
    assert.equal(replaced.created.length, 3);
    assert.deepEqual(readConfig(store), config);
    store.close();
  });
});
