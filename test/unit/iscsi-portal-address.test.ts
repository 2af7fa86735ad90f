// A portal as people type it (the Connect view's address field, `spindle discover`): host and port,
// or a sentence that says what to fix.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIscsiUrl, parsePortalInput } from '../../src-main/iscsi/portal-address';

test('addresses people type split into host and port', () => {
  const ok: Array<[string, string, number | undefined]> = [
    ['192.168.1.10', '192.168.1.10', undefined],
    ['  nas.local:3261 ', 'nas.local', 3261],
    ['[fd00::5]:3260', 'fd00::5', 3260],
    ['[fd00::5]', 'fd00::5', undefined],
    ['fd00::5', 'fd00::5', undefined],
    ['iscsi://10.0.0.2:3262/iqn.2026-11.lan.home:disk1/0', '10.0.0.2', 3262],
    ['my_nas', 'my_nas', undefined],
  ];
  for (const [text, host, port] of ok) assert.deepEqual(parsePortalInput(text), { ok: true, host, port }, text);
});

test('an iscsi:// URL with USER%SECRET@ carries its CHAP credentials; a user without a secret is an error', () => {
  assert.deepEqual(parsePortalInput('iscsi://alice%AliceSecret-0042@nas/iqn.x/1'), {
    ok: true,
    host: 'nas',
    port: undefined,
    credentials: { user: 'alice', secret: 'AliceSecret-0042' },
  });
  const r = parsePortalInput('iscsi://alice@nas:3260');
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.message, /CHAP user without a secret/);
});

test('bad addresses get a message that says what to fix', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /Type the address/],
    ['   ', /Type the address/],
    [':3260', /missing before the port/],
    ['nas:0', /1 to 65535/],
    ['nas:99999', /1 to 65535/],
    ['nas:http', /1 to 65535/],
    ['nas local', /no spaces/],
    ['nas/disk', /not a host name/],
    ['x'.repeat(254), /too long/],
  ];
  for (const [text, message] of bad) {
    const r = parsePortalInput(text);
    assert.equal(r.ok, false, text);
    if (!r.ok) assert.match(r.message, message, text);
  }
});

test('iscsi:// URLs (libiscsi\'s form) give portal, target, LUN and CHAP; bad ones say what the form is', () => {
  assert.deepEqual(parseIscsiUrl('iscsi://10.0.0.2:3262/iqn.2026-11.lan.home:disk1/3'), {
    ok: true,
    host: '10.0.0.2',
    port: 3262,
    targetName: 'iqn.2026-11.lan.home:disk1',
    lun: 3,
  });
  assert.deepEqual(parseIscsiUrl('iscsi://alice%AliceSecret-0042@[fd00::5]/iqn.x:y/0'), {
    ok: true,
    host: 'fd00::5',
    port: undefined,
    targetName: 'iqn.x:y',
    lun: 0,
    credentials: { user: 'alice', secret: 'AliceSecret-0042' },
  });
  for (const [bad, message] of [
    ['iscsi://nas/iqn.x:y', /not an iSCSI URL/],
    ['http://nas/iqn.x:y/0', /not an iSCSI URL/],
    ['iscsi://nas/iqn.x:y/lun0', /LUN at the end/],
    ['iscsi://nas/iqn.x:y/99999', /LUN at the end/],
    ['iscsi://nas:0/iqn.x:y/0', /1 to 65535/],
    ['iscsi://nas/iqn.x%00y/0', /target name in the URL is not usable/],
  ] as const) {
    const r = parseIscsiUrl(bad);
    assert.equal(r.ok, false, bad);
    if (!r.ok) assert.match(r.message, message, bad);
  }
});
