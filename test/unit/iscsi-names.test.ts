import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EXAMPLE_IQN,
  MAX_ISCSI_NAME_BYTES,
  buildIqn,
  checkWireIscsiName,
  isValidIscsiName,
  normalizeIscsiName,
  sameIscsiName,
  validateIscsiName,
} from '../../src-main/iscsi/names';

function reason(s: string): string {
  const r = validateIscsiName(s);
  if (r.ok) assert.fail(`expected ${JSON.stringify(s)} to be refused`);
  return r.reason;
}

test('iqn., eui. and naa. names from the RFCs are valid', () => {
  for (const [name, type] of [
    ['iqn.2026-11.net.example:disk1', 'iqn'],
    ['iqn.2001-04.com.example', 'iqn'],
    ['iqn.2001-04.com.example:storage:diskarrays-sn-a8675309', 'iqn'],
    ['iqn.2001-04.com.example:storage.tape1.sys1.xyz', 'iqn'],
    ['iqn.2003-01.org.linux-iscsi.localhost.x8664:sn.037746bdcf2d', 'iqn'],
    ['iqn.1991-05.com.microsoft:win-host01', 'iqn'],
    ['eui.02004567a425678d', 'eui'],
    ['naa.52004567ba64678d', 'naa'],
    ['naa.62004567ba64678d0123456789abcdef', 'naa'],
  ] as const) {
    const r = validateIscsiName(name);
    assert.ok(r.ok, `${name}: ${r.ok ? '' : r.reason}`);
    assert.equal(r.name, name);
    assert.equal(r.type, type);
  }
});

test('names are normalized to lowercase (RFC 3722 case folding)', () => {
  const r = validateIscsiName('IQN.2026-11.Net.Example:Disk1');
  assert.ok(r.ok);
  assert.equal(r.name, 'iqn.2026-11.net.example:disk1');
  const e = validateIscsiName('eui.02004567A425678D');
  assert.ok(e.ok);
  assert.equal(e.name, 'eui.02004567a425678d');
  assert.ok(sameIscsiName('iqn.2026-11.net.example:DISK1', 'IQN.2026-11.NET.EXAMPLE:disk1'));
});

test('Unicode is NFKC-normalized and characters mapped to nothing are dropped', () => {
  assert.equal(normalizeIscsiName('ｉｑｎ.２０２６-１１.net.example:disk1'), 'iqn.2026-11.net.example:disk1');
  assert.equal(normalizeIscsiName('iqn.2026-11.net.exam\u00ADple:disk\u200B1'), 'iqn.2026-11.net.example:disk1');
  const r = validateIscsiName('iqn.2026-11.net.example:bücher');
  assert.ok(r.ok, 'non-ASCII letters are legal');
});

test('iqn. names need a date: the reason shows a correct example', () => {
  const r = reason('iqn.net.example:disk1');
  assert.match(r, /^iqn\. names need a date: iqn\.2026-11\.net\.example:disk1/);
  assert.match(reason('iqn.26-11.net.example:disk1'), /need a date/);
  assert.match(reason('iqn.2026-1.net.example:disk1'), /need a date/);
});

test('the month of an iqn. date must be 01 to 12', () => {
  assert.match(reason('iqn.2026-13.net.example:disk1'), /month .* must be 01 to 12/);
  assert.match(reason('iqn.2026-00.net.example:disk1'), /month/);
});

test('iqn. names need a reversed domain name after the date', () => {
  assert.match(reason('iqn.2026-11'), /reversed domain name/);
  assert.match(reason('iqn.2026-11:disk1'), /reversed domain name/);
  assert.match(reason('iqn.2026-11.:disk1'), /reversed domain name/);
  assert.match(reason('iqn.2026-11.net..example:disk1'), /empty label/);
  assert.match(reason('iqn.2026-11.net.-example:disk1'), /cannot start or end with '-'/);
  assert.match(reason('iqn.2026-11.net.example:'), /nothing follows the ':'/);
});

test('whitespace and characters outside letters, digits, - . : are refused, with the position', () => {
  assert.match(reason('iqn.2026-11.net.example:my disk'), /cannot contain a space \(position 27\)/);
  assert.match(reason('iqn.2026-11.net.example:my\tdisk'), /whitespace/);
  assert.match(reason(' iqn.2026-11.net.example:disk1'), /remove the spaces at the start or end/);
  assert.match(reason('iqn.2026-11.net.example:disk1\n'), /remove the spaces/);
  assert.match(reason('iqn.2026-11.net.example:disk_1'), /cannot contain '_'/);
  assert.match(reason('iqn.2026-11.net.example:disk/1'), /cannot contain '\/'/);
  assert.match(reason('iqn.2026-11.net.example:disk\u00001'), /control character \(U\+0000\)/);
  assert.match(reason('iqn.2026-11.net.example:disk\u30021'), /U\+3002/);
});

test('names longer than 223 bytes are refused', () => {
  const base = 'iqn.2026-11.net.example:';
  assert.ok(isValidIscsiName(base + 'a'.repeat(MAX_ISCSI_NAME_BYTES - base.length)));
  assert.match(reason(base + 'a'.repeat(MAX_ISCSI_NAME_BYTES - base.length + 1)), /224 bytes long; the limit is 223 bytes/);
  assert.match(reason(base + 'é'.repeat(100)), /bytes long/, 'the limit counts UTF-8 bytes');
});

test('eui. needs exactly 16 hex digits; naa. 16 or 32', () => {
  assert.match(reason('eui.02004567a425678'), /exactly 16 hex digits/);
  assert.match(reason('eui.02004567a425678g'), /exactly 16 hex digits/);
  assert.match(reason('naa.52004567ba64678d0123'), /16 or 32 hex digits/);
  assert.match(reason('naa.'), /16 or 32 hex digits/);
});

test('a name without a known prefix says which prefixes exist, and spots a missing "iqn."', () => {
  assert.match(reason('disk1'), new RegExp(`start with iqn\\., eui\\. or naa\\., for example ${EXAMPLE_IQN.replace(/\./g, '\\.')}`));
  assert.match(reason('2026-11.net.example:disk1'), /did you mean iqn\.2026-11\.net\.example:disk1\?/);
  assert.match(reason(''), /is required/);
});

test('the wire check accepts odd names real initiators send, flagging them, but never whitespace', () => {
  const odd = checkWireIscsiName('iqn.1991-05.com.microsoft:DESK_TOP');
  assert.ok(odd.ok);
  assert.equal(odd.name, 'iqn.1991-05.com.microsoft:desk_top');
  assert.equal(odd.wellFormed, false);
  const good = checkWireIscsiName('iqn.2026-11.net.example:disk1');
  assert.ok(good.ok && good.wellFormed);
  assert.equal(checkWireIscsiName('iqn.2026-11.net.example:my disk').ok, false);
  assert.equal(checkWireIscsiName('').ok, false);
  assert.equal(checkWireIscsiName('x'.repeat(224)).ok, false);
});

test('buildIqn reverses the domain and validates the result', () => {
  const r = buildIqn(2026, 11, 'example.net', 'disk1');
  assert.ok(r.ok);
  assert.equal(r.name, 'iqn.2026-11.net.example:disk1');
  const plain = buildIqn(2026, 3, 'lab.example.org');
  assert.ok(plain.ok);
  assert.equal(plain.name, 'iqn.2026-03.org.example.lab');
  assert.equal(buildIqn(2026, 13, 'example.net').ok, false);
  assert.equal(buildIqn(2026, 11, 'example.net', 'my disk').ok, false);
});
